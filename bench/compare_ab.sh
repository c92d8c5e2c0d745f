#!/bin/bash
# Before/after quality and time on the same machine, in one run: ../shared/quality/compare.sh
# pair by pair, alternating two checkouts of tfstyle (each imported through PYTHONPATH), so
# that the machine's drift between minutes hits both alike.
#
# Usage: bash bench/compare_ab.sh BEFORE_DIR AFTER_DIR [SIZE] [EXTRA TFSTYLE FLAGS...]
#   e.g. git worktree add ../before HEAD~3 && bash bench/compare_ab.sh ../before . 512
#   PAIRS="scream shipwreck" limits the pairs (compare.sh's names); OUT=dir keeps the images
#   (OUT/before, OUT/after). Needs compare.sh's scorer packages in the active environment.
set -u
HERE=$(cd "$(dirname "$0")/.." && pwd)
BEFORE=$(cd "$1" && pwd); AFTER=$(cd "$2" && pwd); shift 2
OUT=${OUT:-$(mktemp -d)}
for k in ${PAIRS:-starry scream matisse tubingen shipwreck kandinsky}; do
  for side in before after; do
    dir=$BEFORE; [ "$side" = after ] && dir=$AFTER
    PYTHONPATH=$dir PAIRS=$k OUT=$OUT/$side bash "$HERE/../shared/quality/compare.sh" "$@" \
      | grep -v "^pair\|^images" | sed "s/^/$side  /"
  done
done
echo "images and logs in $OUT"
