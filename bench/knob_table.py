"""Reads bench/knob.sh's rows and says whether the knob moves each measure one way.

    OUT=/tmp/knob bash bench/knob.sh 512 > /tmp/knob.txt
    python bench/knob_table.py /tmp/knob.txt [more row files...] [--tsv docs/quality/knob.tsv]

Prints, per pair, whether style_gain and fine_style rise and content_keep and
detail_keep fall along the strengths above 0 (issue 22's test: each step within
``--tolerance`` of the direction, 0.005), the worst step of each, and s = 1 against
s = 0.5 (the default) on the two style measures, and whether ghost stays within
compare.sh's line (at most 0.25 above the reference's, or above 0 where the reference's
is below 0) at every strength, with the worst margin. s = 0 is left out of the steps: it
is the photo itself (style 0, content 1), which every other strength passes. With --tsv,
also writes the rows (and the references, once per pair) as the TSV that
``docs/make_quality_figures.py plot`` draws. Several files may be given (a rerun of one
strength, say): a later row for the same (pair, strength) replaces an earlier one.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "docs"))
from make_quality_figures import PAIRS  # noqa: E402  the pair -> reference table, kept once

MEASURES = ("style_gain", "content_keep", "fine_style", "detail_keep")
RISES = {"style_gain": True, "fine_style": True, "content_keep": False, "detail_keep": False}


GHOST_LINE = 0.25  # compare.sh's: ours <= max(reference's, 0) + 0.25


def parse(paths):
    """({pair: {strength: scores}}, {pair: reference scores}, {pair: {strength: ghost
    margin}}) from knob.sh's rows; a margin >= 0 is within compare.sh's ghost line."""
    rows, refs, ghosts = {}, {}, {}
    for path in paths:
        for line in open(path):
            fields = line.split()
            if len(fields) < 8 or fields[0] == "pair" or "/" not in fields[4]:
                continue
            pair, strength = fields[0], float(fields[1])
            rows.setdefault(pair, {})[strength] = [float(v) for v in fields[4].split("/")]
            refs[pair] = [float(v) for v in fields[5].split("/")]
            ours, ref = (float(v) for v in fields[6].split("/"))
            ghosts.setdefault(pair, {})[strength] = max(ref, 0.0) + GHOST_LINE - ours
    return rows, refs, ghosts


def monotonic(values, rises, tolerance):
    """(one way within tolerance, the worst step signed so that > 0 is the right way)."""
    steps = [(b - a) if rises else (a - b) for a, b in zip(values, values[1:])]
    worst = min(steps) if steps else 0.0
    return worst >= -tolerance, worst


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("rows", nargs="+")
    parser.add_argument("--tsv", default=None)
    parser.add_argument("--tolerance", type=float, default=0.005)
    args = parser.parse_args(argv)
    rows, refs, ghosts = parse(args.rows)
    print("| pair | " + " | ".join(f"{m} {'rises' if RISES[m] else 'falls'}"
                                   for m in MEASURES)
          + " | at 1 vs 0.5 (style, fine) | ghost within the line |")
    print("|---" * (len(MEASURES) + 3) + "|")
    for pair, by_strength in rows.items():
        strengths = sorted(s for s in by_strength if s > 0)
        cells = []
        for i, measure in enumerate(MEASURES):
            ok, worst = monotonic([by_strength[s][i] for s in strengths], RISES[measure],
                                  args.tolerance)
            cells.append(f"{'yes' if ok else '**no**'} (worst step {worst:+.3f})")
        if 0.5 in by_strength and 1.0 in by_strength:
            top, mid = by_strength[1.0], by_strength[0.5]
            cells.append(f"{top[0] - mid[0]:+.3f}, {top[2] - mid[2]:+.3f}")
        else:
            cells.append("n/a")
        margin = min(m for s, m in ghosts[pair].items() if s > 0)
        cells.append(f"{'yes' if margin >= 0 else '**no**'} (least margin {margin:+.2f})")
        print(f"| {pair} | " + " | ".join(cells) + " |")
    if args.tsv:
        with open(args.tsv, "w") as out:
            out.write("label\tpair\tstrength\t" + "\t".join(MEASURES) + "\n")
            for pair, by_strength in rows.items():
                for s in sorted(x for x in by_strength if x > 0):
                    out.write(f"knob\t{pair}\t{s:g}\t"
                              + "\t".join(f"{v:.3f}" for v in by_strength[s]) + "\n")
            for pair, ref in refs.items():
                out.write(f"{PAIRS[pair].author}\t{pair}\t\t"
                          + "\t".join(f"{v:.3f}" for v in ref) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
