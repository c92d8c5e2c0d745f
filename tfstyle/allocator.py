"""TensorFlow's CPU allocator for this process: its best-fit pool (BFC) by default.

Why: TensorFlow's default CPU allocator hands each tensor to the C library's malloc and
frees it when the op is done. glibc maps every block over its mmap threshold (at most
32 MiB, and 1 MiB under the CLI's ``memory.return_freed_memory``) on its own and
unmaps it when freed, so the next step's feature maps of the same sizes are mapped
again and the kernel zeroes every page on first touch. A 512 px VGG16 step allocates
about 1.5 GB that way: 390 000 page faults and 1.0 s of system time per step, which
took 2.6 s against 2.0 s under BFC on this project's AVX2 CPU (an untiled 2048 px step:
69 s against 31 s; BENCHMARKS.md, "Allocator"). TensorFlow's BFC allocator, the one it
uses for GPU memory, keeps the freed chunks and hands them out again: a few hundred
faults per step, and the same results bit for bit (the allocator changes where a tensor
lives, not any arithmetic). It keeps more memory resident, which the memory planner
budgets for (``memory.POOLED_FACTOR``).

TensorFlow reads the choice once, when it creates its CPU allocator at the first op.
So ``import tfstyle`` makes it before TensorFlow runs anything, and only where the user
has not chosen: ``TF_CPU_ALLOCATOR_USE_BFC=0`` in the environment keeps malloc. A
process that ran TensorFlow ops before importing tfstyle keeps the allocator it has.
"""

from __future__ import annotations

import os

ENV = "TF_CPU_ALLOCATOR_USE_BFC"


def prefer_bfc() -> bool:
    """Asks TensorFlow for its BFC CPU allocator unless ``TF_CPU_ALLOCATOR_USE_BFC`` is
    already set. Returns ``bfc_requested()``; the request takes effect only if
    TensorFlow has not yet run an op in this process."""
    os.environ.setdefault(ENV, "1")
    return bfc_requested()


def bfc_requested() -> bool:
    """Whether the environment asks TensorFlow for BFC (as TensorFlow reads it: ``1`` or
    ``true``, in any case)."""
    return os.environ.get(ENV, "").strip().lower() in ("1", "true")
