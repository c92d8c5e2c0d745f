#!/bin/bash
# Probes of levers that no flag reaches (issue 22): bench/probes/levers.patch adds
# environment hooks to a scratch worktree of the commit it was written against, and
# compare.sh runs that tree. Without any PROBE_ variable the patched tree runs the
# default, bit for bit.
#
# Usage: [PAIRS=...] [OUT=dir] bash bench/probe_patch.sh "VAR=value ..." [SIZE [FLAGS...]]
#   PROBE_MIX=r             --init=noise starts from r·noise + (1 − r)·photo
#   PROBE_CLW=a,b           the content layers' weights (default 1 each)
#   PROBE_RECOLOR=start     the start image in the painting's colour mean and covariance
#   PROBE_RECOLOR=content   the photo the content term holds to, likewise (so also a
#                           content start, and each stage's detail)
#   PROBE_RECOLOR=both      the two: the recoloured photo's start matched once more
#   PROBE_RECOLOR_MIX=r     r of the way to those colours
#   PROBE_S0K=k PROBE_S0N=n β times k on the first n coarse-to-fine stages
#   PROBE_HIST=n            L-BFGS keeps n curvature pairs instead of 10
#   PROBE_LOCAL=m           the style term: (1 − m) × the global one + m × the mean, over a
#                           grid of regions, of each region's distance to the painting's
#                           statistics (untiled, unmasked runs only)
#   PROBE_CELL=px           regions of about px image pixels a side (at least one a side);
#                           else PROBE_GRID=g regions a side (default 2)
#   PROBE_LOCAL_NOMEAN=1    the regions match the covariance only, not the mean
#   PROBE_LOCAL_FROM=px     the local term only at stages whose longest side is ≥ px
#   PROBE_REGION=1          (with PROBE_CELL) each region against the nearest of the
#                           painting's own regions of that size (at half-cell strides),
#                           not against the whole painting's statistics
#   PROBE_CW_EDGE=g         the content term weighted per position by (E / mean E)^g, E
#                           the photo's edge energy in that content layer's features:
#                           its flat regions hold the painting less
#   PROBE_CW_LAYERS=i,j     only those content layers (0 = the first; default all)
#                           (in the library since: --content_edge_powers)
#   PROBE_MIX_FLAT=k        (with --init=noise) the noise share PROBE_MIX only where the
#                           photo is flat: r·(1 − min(1, E / (k·mean E))), E its luminance
#                           gradient magnitude (3 × 3 mean) at the first stage's size
# The scratch tree is $PROBE_TREE (default /tmp/tfstyle-probe-BASE); delete it with
# `git worktree remove --force DIR`. Needs compare.sh's scorer packages.
set -eu
BASE=4aec67d
HERE=$(cd "$(dirname "$0")/.." && pwd)
TREE=${PROBE_TREE:-/tmp/tfstyle-probe-$BASE}
if [ ! -d "$TREE" ]; then
  git -C "$HERE" worktree add --detach "$TREE" "$BASE" >/dev/null
  git -C "$TREE" apply "$HERE/bench/probes/levers.patch"
fi
VARS=${1:-}
shift || true
# shellcheck disable=SC2086  # VARS is a list of assignments, split on purpose
env $VARS PYTHONPATH="$TREE" bash "$HERE/../shared/quality/compare.sh" "${@:-512}"
