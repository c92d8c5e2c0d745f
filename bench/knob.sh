#!/bin/bash
# The --style_strength knob on compare.sh's pairs: one compare.sh row per (pair, strength), in
# strength order within each pair, so that the rise and fall of the four scores read down a
# column.
#
# Usage: bash bench/knob.sh [SIZE] [EXTRA TFSTYLE FLAGS...]
#   STRENGTHS="0 0.25 0.5 0.75 1" (default) sets the strengths; PAIRS limits the pairs
#   (compare.sh's names); OUT=dir keeps the images (OUT/PAIR/STRENGTH.png ...). Needs
#   compare.sh's scorer packages in the active environment.
set -u
HERE=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$(mktemp -d)}
printf "%-9s %-8s %5s %6s  %-27s  %-27s  %s\n" pair strength secs MiB \
  "ours  style/content/fine/detail" "reference (same order)" dominates
for k in ${PAIRS:-starry scream matisse tubingen shipwreck kandinsky}; do
  for s in ${STRENGTHS:-0 0.25 0.5 0.75 1}; do
    PAIRS=$k OUT=$OUT/$s bash "$HERE/../shared/quality/compare.sh" "$@" --style_strength="$s" 2>/dev/null \
      | grep -v "^pair\|^images" | awk -v s="$s" '{ $1 = sprintf("%-9s %-8s", $1, s); print }'
  done
done
echo "images and logs in $OUT"
