"""``import tfstyle`` gives TensorFlow its pooling (BFC) CPU allocator, unless told not to.

Checked by what the allocator is for: a step's large tensors, freed and allocated again
on the next step, fault no fresh pages in. Each case runs in a new process, since
TensorFlow fixes its allocator at its first op.
"""

import os
import subprocess
import sys

import pytest

# 64 MiB feature maps, freed after each call: over glibc's largest mmap threshold, so
# malloc maps and unmaps them on every call and each call faults ~16 000 fresh pages in.
_PROBE = """
import resource
import tfstyle  # before TensorFlow's first op, as a user's script would
import tensorflow as tf
x = tf.random.normal([1, 512, 512, 64])
step = tf.function(lambda x: tf.reduce_sum(tf.nn.relu(x * 2.0 + 1.0) * x))
step(x)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step(x)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) // 5)
"""


# TensorFlow's own variable (not tfstyle's): 1 sends the tensors of oneDNN's allocator to
# malloc. Where TensorFlow's oneDNN ops are on (by default on CPUs with AVX512 VNNI or BF16,
# or AMX, as the AMD EPYCs the tests mostly run on) that allocator is TensorFlow's CPU
# allocator unless TF_CPU_ALLOCATOR_USE_BFC asks for BFC, and it keeps a BFC pool of its
# own for large tensors; other builds ignore the variable.
ONEDNN_ENV = "TF_ONEDNN_USE_SYSTEM_ALLOCATOR"


def faults_per_call(env_value, onednn=None):
    """Page faults per call of the probe, in a new process whose environment sets
    TF_CPU_ALLOCATOR_USE_BFC to ``env_value`` and ONEDNN_ENV to ``onednn`` (None: unset)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPU_ALLOCATOR_USE_BFC", ONEDNN_ENV)}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    for name, value in (("TF_CPU_ALLOCATOR_USE_BFC", env_value), (ONEDNN_ENV, onednn)):
        if value is not None:
            env[name] = value
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True,
                         text=True, check=True, timeout=300)
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc, Linux's "
                    "fault counts")
def test_import_pools_large_tensors_unless_the_environment_says_otherwise():
    # Both cases with oneDNN's pool turned off, so that on every CPU the pooling seen is
    # the BFC that ``import tfstyle`` asks for and nothing else: with oneDNN's pool on,
    # the opted-out process faulted no pages either (0 per call on an AVX512 EPYC), and
    # the pooled one would pass whatever tfstyle asked for. What TF_CPU_ALLOCATOR_USE_BFC=0
    # alone does there depends on whether tfstyle.allocator asks oneDNN for malloc too,
    # not on the environment, so it is not compared here.
    pooled, opted_out = faults_per_call(None, onednn="1"), faults_per_call("0", onednn="1")
    assert pooled < 1_000, pooled
    # Each call maps at least one 64 MiB intermediate afresh (16 384 pages; measured 16 385
    # per call on the EPYC), besides small ones.
    assert opted_out > 16_000, opted_out


def test_prefer_bfc_keeps_the_users_choice(monkeypatch):
    from tfstyle import allocator
    monkeypatch.delenv(allocator.ENV, raising=False)
    assert allocator.prefer_bfc() and os.environ[allocator.ENV] == "1"
    monkeypatch.setenv(allocator.ENV, "false")
    assert not allocator.prefer_bfc() and os.environ[allocator.ENV] == "false"


def test_keep_malloc_takes_back_only_tfstyles_request():
    """``keep_malloc`` turns the variable to 0 where ``import tfstyle`` set it, and
    leaves it where the environment had set it first (each in a new process, since
    the first ``prefer_bfc`` records whose choice it is)."""
    code = ("import os, tfstyle\nfrom tfstyle import allocator\n"
            "print(allocator.keep_malloc(), os.environ[allocator.ENV])")
    for user, expected in ((None, "True 0"), ("1", "False 1"), ("0", "True 0")):
        env = {k: v for k, v in os.environ.items() if k != "TF_CPU_ALLOCATOR_USE_BFC"}
        if user is not None:
            env["TF_CPU_ALLOCATOR_USE_BFC"] = user
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True, timeout=300)
        assert out.stdout.split()[-2:] == expected.split(), (user, out.stdout)
