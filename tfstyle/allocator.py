"""TensorFlow's CPU allocator for this process: its best-fit pool (BFC) by default.

Why: TensorFlow's default CPU allocator hands each tensor to the C library's malloc and
frees it when the op is done. glibc maps every block over its mmap threshold (at most
32 MiB, and 1 MiB under the CLI's ``memory.return_freed_memory``) on its own and
unmaps it when freed, so the next step's feature maps of the same sizes are mapped
again and the kernel zeroes every page on first touch: every step faults its large
feature maps in anew, page by page, and spends much of its time in the kernel, the
more so the larger the image. TensorFlow's BFC allocator, the one it uses for GPU memory,
keeps the freed chunks and hands them out again: next to no faults, and the same
results bit for bit (the allocator changes where a tensor lives, not any arithmetic).
It keeps more memory resident, which the memory planner budgets for
(``memory.POOLED_FACTOR``). The figures (faults, system time, time per step at 256,
512 and 2048 px, whole runs, TF Serving's path): BENCHMARKS.md, "Allocator".

That budget is an estimate, not a bound: the pool never gives memory back, grows in
doubling regions and hands a request a chunk up to twice its size, so a run through
stages of different sizes keeps what each needed: a 4096 px print under
``--memory_limit=5G`` went over that limit under BFC and stayed under it with malloc.
Capping the pool (``TF_CPU_BFC_MEM_LIMIT_IN_MB``) turns that into out-of-memory errors
well below the cap, since the cap counts the regions' reserved bytes, not the bytes in
use. So where a run can keep its memory budget only by tiling, the CLI goes back to
malloc (``keep_malloc``), whose peaks the planner's estimate bounds. The peaks, and
the refused tensor under a cap: BENCHMARKS.md, "Allocator", its last two notes.

Where TensorFlow's oneDNN ops are on (by default on CPUs with AVX512 VNNI or BF16, or
AMX), its CPU allocator is oneDNN's, which keeps a BFC pool of its own whatever
``TF_CPU_ALLOCATOR_USE_BFC`` says: the 4096 px print above peaked at 6.8 GiB there
under "malloc". So asking for malloc also sets ``TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1``,
which sends that allocator's tensors to malloc as well (BENCHMARKS.md, "Print").

TensorFlow reads the choice once, when it creates its CPU allocator at the first op.
So ``import tfstyle`` makes it before TensorFlow runs anything, and only where the user
has not chosen: ``TF_CPU_ALLOCATOR_USE_BFC=0`` in the environment keeps malloc. A
process that ran TensorFlow ops before importing tfstyle keeps the allocator it has.
"""

from __future__ import annotations

import os

ENV = "TF_CPU_ALLOCATOR_USE_BFC"
# oneDNN's allocator: 1 sends its tensors to malloc (module docstring).
ONEDNN_ENV = "TF_ONEDNN_USE_SYSTEM_ALLOCATOR"

# Whether the environment set ENV before tfstyle did: that choice is the user's to keep.
_user_chose = None


def prefer_bfc() -> bool:
    """Asks TensorFlow for its BFC CPU allocator unless ``TF_CPU_ALLOCATOR_USE_BFC`` is
    already set. Returns ``bfc_requested()``; the request takes effect only if
    TensorFlow has not yet run an op in this process."""
    global _user_chose
    if _user_chose is None:
        _user_chose = ENV in os.environ
    os.environ.setdefault(ENV, "1")
    _malloc_for_onednn()
    return bfc_requested()


def keep_malloc() -> bool:
    """Takes back ``prefer_bfc``'s request, so that TensorFlow serves tensors from
    malloc, unless the user set ``TF_CPU_ALLOCATOR_USE_BFC`` themselves. Returns whether
    malloc is now requested. Like ``prefer_bfc``, it acts only before TensorFlow's
    first op."""
    if not _user_chose:
        os.environ[ENV] = "0"
    _malloc_for_onednn()
    return not bfc_requested()


def _malloc_for_onednn():
    """Where malloc is asked for, oneDNN's allocator too uses it, unless the user set
    ``ONEDNN_ENV``."""
    if not bfc_requested():
        os.environ.setdefault(ONEDNN_ENV, "1")


def bfc_requested() -> bool:
    """Whether the environment asks TensorFlow for BFC (as TensorFlow reads it: ``1`` or
    ``true``, in any case)."""
    return os.environ.get(ENV, "").strip().lower() in ("1", "true")


def in_effect() -> str:
    """The allocator TensorFlow serves CPU tensors from in this process: ``"bfc"`` or
    ``"malloc"``, read back from TensorFlow: it runs TensorFlow, so call it after the
    choice is made.

    BFC keeps statistics and rounds every chunk up to a multiple of 256 bytes. Malloc
    keeps none on most builds, or counts nothing in them. oneDNN's allocator, where it
    pools, is a BFC too for tensors of 400 kB (it leaves 16 kB ones to malloc,
    uncounted). So a tensor of 400 004 bytes tells them apart: ``"bfc"`` for either
    pool."""
    import tensorflow as tf

    def in_use():
        return tf.config.experimental.get_memory_info("CPU:0")["current"]

    try:
        before = in_use()
    except ValueError:  # "Allocator stats not available"
        return "malloc"
    probe = tf.random.uniform([100001])  # not a multiple of 256 bytes
    grown = in_use() - before
    del probe
    return "bfc" if grown > 0 and grown % 256 == 0 else "malloc"
