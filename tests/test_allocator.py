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
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) // 5,
      tfstyle.allocator.in_effect())
"""


def probe(env_value, onednn=None):
    """(page faults per call, ``allocator.in_effect()``) in a new process whose
    environment sets TF_CPU_ALLOCATOR_USE_BFC to ``env_value`` and
    TF_ONEDNN_USE_SYSTEM_ALLOCATOR to ``onednn`` (None: unset)."""
    from tfstyle import allocator
    env = {k: v for k, v in os.environ.items()
           if k not in (allocator.ENV, allocator.ONEDNN_ENV)}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    for name, value in ((allocator.ENV, env_value), (allocator.ONEDNN_ENV, onednn)):
        if value is not None:
            env[name] = value
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True,
                         text=True, check=True, timeout=300)
    faults, name = out.stdout.split()[-2:]
    return int(faults), name


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc, Linux's "
                    "fault counts")
def test_import_pools_large_tensors_unless_the_environment_says_otherwise():
    # Both cases with oneDNN's pool turned off, so that on every CPU the pooling seen is
    # the BFC that ``import tfstyle`` asks for and nothing else: with oneDNN's pool on,
    # the opted-out process faulted no pages either (0 per call on an AVX512 EPYC), and
    # the pooled one would pass whatever tfstyle asked for.
    pooled, opted_out = probe(None, onednn="1")[0], probe("0", onednn="1")[0]
    assert pooled < 1_000, pooled
    # Each call maps at least one 64 MiB intermediate afresh (16 384 pages; measured 16 385
    # per call on the EPYC), besides small ones.
    assert opted_out > 16_000, opted_out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc, Linux's "
                    "fault counts")
def test_in_effect_names_a_pool_where_tensors_are_pooled():
    """With TF_ONEDNN_USE_SYSTEM_ALLOCATOR=0 the TensorFlow builds whose oneDNN ops are
    on (AVX512 VNNI or BF16 CPUs) pool large tensors in oneDNN's allocator whatever
    TF_CPU_ALLOCATOR_USE_BFC says, and other builds take them from malloc: either way
    ``in_effect`` must name what served them, told apart by the page faults."""
    faults, name = probe("0", onednn="0")
    assert name == ("bfc" if faults < 1_000 else "malloc"), (faults, name)
    assert faults < 1_000 or faults > 16_000, faults


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


def test_malloc_is_asked_of_onednns_allocator_too():
    """Where malloc is asked for, by ``keep_malloc`` or by the user's
    TF_CPU_ALLOCATOR_USE_BFC=0, TF_ONEDNN_USE_SYSTEM_ALLOCATOR is set to 1 as well (oneDNN's
    allocator pools without it), unless the user set it; under BFC it is left alone."""
    code = ("import os, sys, tfstyle\nfrom tfstyle import allocator\n"
            "sys.argv[1:] == ['keep'] and allocator.keep_malloc()\n"
            "print(os.environ.get(allocator.ONEDNN_ENV, '-'))")
    cases = (([], None, None, "-"), (["keep"], None, None, "1"), ([], "0", None, "1"),
             (["keep"], None, "0", "0"), (["keep"], "1", None, "-"))
    for args, user, onednn, expected in cases:
        env = {k: v for k, v in os.environ.items()
               if k not in ("TF_CPU_ALLOCATOR_USE_BFC", "TF_ONEDNN_USE_SYSTEM_ALLOCATOR")}
        env.update({k: v for k, v in (("TF_CPU_ALLOCATOR_USE_BFC", user),
                                      ("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", onednn)) if v})
        out = subprocess.run([sys.executable, "-c", code, *args], env=env,
                             capture_output=True, text=True, check=True, timeout=300)
        assert out.stdout.split()[-1] == expected, (args, user, onednn, out.stdout)
