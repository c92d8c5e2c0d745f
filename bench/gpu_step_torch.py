"""Time one tfstyle optimisation step on a GPU, in PyTorch.

A PyTorch stand-in for tfstyle's step, written because TensorFlow is not installable on
the lent GPU machine (an NVIDIA H100 with PyTorch + CUDA only). It computes the same
thing as ``tfstyle``'s Adam step, so that its time can be reported as a GPU reference
next to the package's own CPU figures:

* forward of the image (1, 3, S, S) through VGG16 truncated after block5_conv1
  (3x3 convolutions + ReLU, 2x2 max-pool stride 2; widths 64, 64 | 128, 128 |
  256 x3 | 512 x3 | 512), with random He-initialised weights (time does not depend
  on their values) that have requires_grad=False;
* the loss: content loss at block4_conv2, 0.5 * mean over positions of the sum over
  channels of (F - P)^2; style loss at block1..5_conv1, per layer
  sum((G - A)^2) / (4 N^2) with G = F^T F / M (features cast to float32 first), each
  layer weighted 0.2; targets P and A are fixed (from random images);
* the gradient with respect to the input image only (no weight gradients);
* an Adam update of the image.

Precision modes: ``fp32`` (TF32 off for cuDNN and cuBLAS), ``tf32`` (TF32 on),
``bf16`` (network under torch.autocast(bfloat16); Gram matrices and losses in float32).
Tensors are channels_last and torch.backends.cudnn.benchmark is on.

Each configuration runs ``--warmup`` steps, then ``--repeats`` loops of
``--steps-timed`` steps, timed with CUDA events around the whole loop (no
synchronisation inside it); the table gives the median ms/step, the TFLOP/s achieved
on the paper's count (335 GFLOP per step at 512^2, forward + input gradient, scaled by
(size/512)^2), the peak allocated memory over the timed steps (after cudnn.benchmark's
algorithm search, whose workspace is not counted), and the relative error of the first
step's image gradient against fp32 (same image, same weights). Variants: ``eager``
(always, unless --no-eager), ``compile`` (--compile: torch.compile of forward + loss),
``graph`` (--cuda-graph: the whole eager step captured in one CUDA graph and replayed,
which removes host/launch overhead). --profile adds the summed GPU kernel time per step
(torch.profiler): when it is well under ms/step, the step is host-bound. Above 512 px the number of
timed steps is scaled down by (512/size)^2 (at least 5) to keep the run short.

    python3 bench/gpu_step_torch.py                        # 512 px, fp32,tf32,bf16
    python3 bench/gpu_step_torch.py --size 512,1024,2048 --compile --cuda-graph --profile

Without CUDA it runs on the CPU (timed with a host clock), for smoke tests only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F

# (name, in_channels, out_channels) for convolutions; "pool" for a 2x2 max-pool.
VGG16_TO_CONV5_1 = [
    ("block1_conv1", 3, 64), ("block1_conv2", 64, 64), "pool",
    ("block2_conv1", 64, 128), ("block2_conv2", 128, 128), "pool",
    ("block3_conv1", 128, 256), ("block3_conv2", 256, 256), ("block3_conv3", 256, 256), "pool",
    ("block4_conv1", 256, 512), ("block4_conv2", 512, 512), ("block4_conv3", 512, 512), "pool",
    ("block5_conv1", 512, 512),
]
CONTENT_LAYER = "block4_conv2"
STYLE_LAYERS = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"]
STYLE_LAYER_WEIGHT = 0.2
PAPER_FLOP_512 = 335e9


def paper_flop(size: int) -> float:
    return PAPER_FLOP_512 * (size / 512) ** 2


def counted_flop(size: int) -> float:
    """Our own count: conv forward + conv input-gradient + Gram forward/backward."""
    h = size
    conv = 0.0
    gram = 0.0
    for layer in VGG16_TO_CONV5_1:
        if layer == "pool":
            h //= 2
            continue
        name, cin, cout = layer
        conv += 2.0 * h * h * cin * cout * 9
        if name in STYLE_LAYERS:
            gram += 2.0 * h * h * cout * cout
    # backward: input gradient of each conv costs as much as its forward; the Gram's
    # backward (dL/dF = F (dL/dG + dL/dG^T) / M) costs about twice its forward.
    return 2 * conv + 3 * gram


class VGGTrunk:
    def __init__(self, device, generator):
        self.params = []
        for layer in VGG16_TO_CONV5_1:
            if layer == "pool":
                continue
            name, cin, cout = layer
            std = (2.0 / (cin * 9)) ** 0.5  # He init
            w = torch.randn(cout, cin, 3, 3, generator=generator) * std
            w = w.to(device).contiguous(memory_format=torch.channels_last)
            b = torch.zeros(cout, device=device)
            w.requires_grad_(False)
            b.requires_grad_(False)
            self.params.append((name, w, b))

    def __call__(self, x):
        feats = {}
        it = iter(self.params)
        for layer in VGG16_TO_CONV5_1:
            if layer == "pool":
                x = F.max_pool2d(x, 2, 2)
                continue
            name, w, b = next(it)
            x = F.relu(F.conv2d(x, w, b, padding=1))
            if name == CONTENT_LAYER or name in STYLE_LAYERS:
                feats[name] = x
        return feats


def gram(f):
    """G = F^T F / M in float32, F as (M positions, N channels)."""
    f = f.float()
    n = f.shape[1]
    m = f.shape[0] * f.shape[2] * f.shape[3]
    flat = f.permute(0, 2, 3, 1).reshape(m, n)
    return flat.t() @ flat / m


def make_loss_fn(model, content_target, style_targets, autocast_bf16: bool):
    device_type = content_target.device.type

    def loss_fn(img):
        with torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=autocast_bf16):
            feats = model(img)
        fc = feats[CONTENT_LAYER].float()
        content = 0.5 * (fc - content_target).square().sum(dim=1).mean()
        style = 0.0
        for name in STYLE_LAYERS:
            g = gram(feats[name])
            n = g.shape[0]
            style = style + STYLE_LAYER_WEIGHT * (g - style_targets[name]).square().sum() / (4.0 * n * n)
        return content + style

    return loss_fn


def set_precision(mode: str):
    tf32 = mode == "tf32"
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32


def make_targets(model, size, device, generator):
    """Fixed content features and style Grams (float32) from random images, in fp32."""
    set_precision("fp32")
    with torch.no_grad():
        c = torch.rand(1, 3, size, size, generator=generator).to(device)
        s = torch.rand(1, 3, size, size, generator=generator).to(device)
        c = c.contiguous(memory_format=torch.channels_last)
        s = s.contiguous(memory_format=torch.channels_last)
        content_target = model(c)[CONTENT_LAYER].float()
        fs = model(s)
        style_targets = {name: gram(fs[name]) for name in STYLE_LAYERS}
    return content_target, style_targets


class Timer:
    def __init__(self, device):
        self.cuda = device.type == "cuda"

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def time_ms(self, fn):
        if self.cuda:
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end)
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e3


def run_config(size, mode, variant, args, device, model, targets, init_image, ref_grad):
    """Time one (size, precision, variant) configuration; variant is eager, compile or graph."""
    content_target, style_targets = targets
    set_precision(mode)
    loss_fn = make_loss_fn(model, content_target, style_targets, autocast_bf16=(mode == "bf16"))
    if variant == "compile":
        torch._dynamo.reset()
        loss_fn = torch.compile(loss_fn)
    graph = variant == "graph"

    img = init_image.clone().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    kw = {"capturable": True} if graph else {}
    try:
        opt = torch.optim.Adam([img], lr=args.lr, fused=(device.type == "cuda"), **kw)
    except (RuntimeError, TypeError):
        opt = torch.optim.Adam([img], lr=args.lr, **kw)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(img)
        loss.backward()
        opt.step()
        return loss

    timer = Timer(device)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.empty_cache()

    # first step: gradient check against fp32 (before the image moves)
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    loss0 = loss_fn(img)
    loss0.backward()
    grad0 = img.grad.detach().clone()
    timer.sync()
    first_s = time.perf_counter() - t0
    if not torch.isfinite(loss0).item() or not torch.isfinite(grad0).all().item():
        raise RuntimeError(f"non-finite loss or gradient ({mode}, {size})")
    rel_err = None
    if ref_grad is not None:
        rel_err = ((grad0 - ref_grad).norm() / ref_grad.norm()).item()
    loss0 = loss0.item()
    del grad0  # drop the first step's autograd graph before any CUDA-graph capture
    opt.step()

    if graph:
        # Whole-step CUDA graph (forward, backward, Adam), as in PyTorch's
        # "whole network capture" recipe: warm up on a side stream, then capture.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(args.warmup):
                step()
        torch.cuda.current_stream().wait_stream(side)
        torch.cuda.synchronize()
        torch.cuda.empty_cache()  # return cudnn.benchmark's search workspace first
        g = torch.cuda.CUDAGraph()
        opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(g):
            static_loss = loss_fn(img)
            static_loss.backward()
            opt.step()

        def step():  # noqa: F811
            g.replay()
            return static_loss

    for _ in range(args.warmup):
        step()
    timer.sync()
    # Peak over the timed steps only: cudnn.benchmark's algorithm search in the first
    # steps can allocate tens of GiB of workspace, which is not the step's need.
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    mem_before = torch.cuda.memory_allocated() / 2**30 if cuda else float("nan")

    n = args.steps_timed
    if size > 512:
        n = max(5, round(n * (512 / size) ** 2))

    def loop():
        for _ in range(n):
            step()

    times = [timer.time_ms(loop) / n for _ in range(args.repeats)]
    last_loss = step().item()
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    ms = statistics.median(times)

    gpu_ms = float("nan")
    if args.profile and cuda:
        try:
            gpu_ms, table = profile_steps(step, 5)
            print(f"  -- {size} {mode} {variant}: top kernels over 5 steps\n{table}", flush=True)
        except Exception as e:  # the timing stands without it
            print(f"  -- profile failed: {type(e).__name__}: {e}", flush=True)

    return {
        "size": size, "mode": mode, "variant": variant, "ms": ms,
        "min_ms": min(times), "max_ms": max(times), "steps": n,
        "tflops": paper_flop(size) / (ms * 1e-3) / 1e12, "peak_gib": peak, "base_gib": mem_before,
        "rel_err": rel_err, "first_s": first_s, "loss0": loss0, "loss_end": last_loss,
        "gpu_ms": gpu_ms,
    }


def profile_steps(step, n):
    """Sum of GPU kernel time per step (ms) over n steps, and a top-kernels table."""
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(n):
            step()
        torch.cuda.synchronize()
    total_us = 0.0
    for e in prof.events():
        if e.device_type == torch.autograd.DeviceType.CUDA:
            total_us += e.device_time_total
    if total_us == 0:
        total_us = float("nan")
    try:
        table = prof.key_averages().table(sort_by="self_device_time_total", row_limit=8)
    except Exception:  # older spelling
        table = prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=8)
    return total_us / 1e3 / n, table


def reference_grad(model, targets, init_image):
    """Image gradient of the loss in plain fp32 (TF32 off), eager: the error reference."""
    set_precision("fp32")
    img = init_image.clone().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    make_loss_fn(model, *targets, autocast_bf16=False)(img).backward()
    return img.grad.detach()


def matmul_ceiling(device, mode, n=8192, reps=10):
    """Achieved TFLOP/s of an n^3 matrix product on random data in the given mode."""
    set_precision(mode)
    dtype = torch.bfloat16 if mode == "bf16" else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    timer = Timer(device)
    timer.sync()
    ms = statistics.median(timer.time_ms(lambda: a @ b) for _ in range(reps))
    return 2 * n**3 / (ms * 1e-3) / 1e12


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="512", help="Image side(s), comma-separated (e.g. 512,1024,2048).")
    p.add_argument("--steps-timed", type=int, default=50, help="Steps per timed loop (at 512 px).")
    p.add_argument("--warmup", type=int, default=10, help="Untimed steps before timing.")
    p.add_argument("--repeats", type=int, default=5, help="Timed loops; the median is reported.")
    p.add_argument("--precisions", default="fp32,tf32,bf16", help="Comma-separated: fp32, tf32, bf16.")
    p.add_argument("--compile", action="store_true", help="Also time each mode with torch.compile.")
    p.add_argument("--cuda-graph", action="store_true",
                   help="Also time each mode with the whole eager step captured in a CUDA graph.")
    p.add_argument("--no-eager", action="store_true", help="Skip the plain eager variant.")
    p.add_argument("--profile", action="store_true",
                   help="Also sum GPU kernel time per step with torch.profiler (5 steps).")
    p.add_argument("--ceiling", action="store_true", help="Also measure 8192^3 matmul TFLOP/s per mode.")
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    sizes = [int(s) for s in args.size.split(",") if s]
    modes = [m.strip() for m in args.precisions.split(",") if m.strip()]
    for m in modes:
        if m not in ("fp32", "tf32", "bf16"):
            p.error(f"unknown precision {m!r}")
    variants = (([] if args.no_eager else ["eager"]) + (["compile"] if args.compile else [])
                + (["graph"] if args.cuda_graph else []))

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = True
    if device.type == "cuda":
        name = torch.cuda.get_device_name(0)
        props = torch.cuda.get_device_properties(0)
        dev_str = f"{name} ({props.multi_processor_count} SMs, {props.total_memory / 2**30:.0f} GiB)"
    else:
        dev_str = "CPU (smoke test only: no CUDA)"
    print(f"device: {dev_str}")
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
    print(f"args: {vars(args)}", flush=True)

    gen = torch.Generator().manual_seed(args.seed)
    model = VGGTrunk(device, gen)
    rows = []
    for size in sizes:
        targets = make_targets(model, size, device, gen)
        init = torch.rand(1, 3, size, size, generator=gen).to(device)
        print(f"size {size}: paper {paper_flop(size) / 1e9:.0f} GFLOP/step, "
              f"own count {counted_flop(size) / 1e9:.0f} GFLOP/step", flush=True)
        ref_grad = reference_grad(model, targets, init)
        for variant in variants:
            if variant == "graph" and device.type != "cuda":
                continue
            for mode in modes:
                try:
                    r = run_config(size, mode, variant, args, device, model, targets, init, ref_grad)
                except Exception as e:  # report and go on (e.g. out of memory, compile failure)
                    print(f"  {size} {mode} {variant}: FAILED {type(e).__name__}: {e}", flush=True)
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
                    continue
                rows.append(r)
                print(f"  {r['size']} {r['mode']} {r['variant']}: {r['ms']:.3f} ms/step (min {r['min_ms']:.3f}, "
                      f"max {r['max_ms']:.3f}, {r['steps']} steps x {args.repeats}), "
                      f"{r['tflops']:.1f} TFLOP/s, peak {r['peak_gib']:.2f} GiB (resident {r['base_gib']:.2f}), "
                      f"GPU kernel time {r['gpu_ms']:.3f} ms/step, "
                      f"first step {r['first_s']:.1f} s, loss {r['loss0']:.4g} -> {r['loss_end']:.4g}",
                      flush=True)

    print()
    prof = any(r["gpu_ms"] == r["gpu_ms"] for r in rows)  # any not NaN
    print("| size | precision | variant | ms/step (median) | min-max ms | TFLOP/s (335 GFLOP @512) "
          "| peak mem GiB | grad rel. err vs fp32 |" + (" GPU kernel ms/step |" if prof else ""))
    print("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |" + (" ---: |" if prof else ""))
    for r in rows:
        err = f"{r['rel_err']:.1e}"
        print(f"| {r['size']} | {r['mode']} | {r['variant']} | {r['ms']:.2f} | {r['min_ms']:.2f}-{r['max_ms']:.2f} | "
              f"{r['tflops']:.1f} | {r['peak_gib']:.2f} | {err} |" + (f" {r['gpu_ms']:.2f} |" if prof else ""))

    if args.ceiling and device.type == "cuda":
        print()
        print("| 8192^3 matmul | TFLOP/s |")
        print("| --- | ---: |")
        for mode in modes:
            print(f"| {mode} | {matmul_ceiling(device, mode):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
