"""``precision="auto"``: the rule, on probed devices faked by replacing only the probe;
the probe itself, on this machine and on a faked TensorFlow device list."""

import logging
import os

import pytest
import tensorflow as tf

from tfstyle.core import precision
from tfstyle.errors import ConfigError
from tfstyle.core.precision import resolve_precision

AVX2 = frozenset({"fpu", "sse4_2", "avx", "avx2", "fma"})
HAS_GPU = bool(tf.config.list_physical_devices("GPU"))
NEEDS_CPUINFO = pytest.mark.skipif(not os.path.exists("/proc/cpuinfo"),
                                   reason="no /proc/cpuinfo (not Linux)")


def device(gpu=None, capability=None, cpu_flags=AVX2):
    return {"gpu": gpu, "gpu_compute_capability": capability, "cpu_flags": cpu_flags}


@pytest.fixture
def probe(monkeypatch):
    """Call with a probe result: ``resolve_precision("auto")`` then sees that device."""
    def fake(**kwargs):
        monkeypatch.setattr(precision, "_device_features", lambda: device(**kwargs))
    return fake


@pytest.mark.parametrize("flags, expected", [
    (AVX2 | {"amx_bf16", "amx_tile"}, "mixed_bfloat16"),
    (AVX2 | {"avx512f", "avx512_bf16"}, "mixed_bfloat16"),
    (AVX2, "float32"),
    (AVX2 | {"avx512f", "avx512_vnni"}, "float32"),  # AVX-512 without its BF16 extension
    (None, "float32"),  # no /proc/cpuinfo (not Linux)
])
def test_cpu_rule(probe, flags, expected):
    probe(cpu_flags=flags)
    assert resolve_precision("auto") == expected


@pytest.mark.parametrize("capability, expected", [
    ((8, 0), "mixed_bfloat16"), ((8, 6), "mixed_bfloat16"), ((9, 0), "mixed_bfloat16"),
    ((7, 5), "float32"), ((6, 1), "float32"), (None, "float32"),
])
def test_gpu_rule_ignores_the_cpu(probe, capability, expected):
    # The model runs on the GPU: a CPU with bfloat16 units does not count.
    probe(gpu="NVIDIA Test", capability=capability, cpu_flags=AVX2 | {"avx512_bf16"})
    assert resolve_precision("auto") == expected


@pytest.mark.parametrize("found, expected, reason", [
    (device("NVIDIA A100", (8, 0)), "mixed_bfloat16",
     "GPU NVIDIA A100 has compute capability 8.0"),
    (device("NVIDIA T4", (7, 5), AVX2 | {"amx_bf16"}), "float32",
     "GPU NVIDIA T4 has compute capability 7.5, below 8.0: no bfloat16 tensor cores"),
    (device("NVIDIA ?", None), "float32", "GPU NVIDIA ? reports no compute capability"),
    (device(cpu_flags=AVX2 | {"amx_bf16", "amx_tile"}), "mixed_bfloat16", "CPU has amx_bf16"),
    (device(cpu_flags=AVX2 | {"avx512f", "avx512_bf16"}), "mixed_bfloat16",
     "CPU has avx512_bf16"),
    (device(cpu_flags=AVX2 | {"amx_bf16", "avx512_bf16"}), "mixed_bfloat16",
     "CPU has amx_bf16, avx512_bf16"),
    (device(cpu_flags=AVX2), "float32",
     "no GPU, and the CPU has neither amx_bf16 nor avx512_bf16"),
    (device(cpu_flags=frozenset()), "float32",
     "no GPU, and the CPU has neither amx_bf16 nor avx512_bf16"),
    (device(cpu_flags=None), "float32",
     "no GPU, and the CPU's flags are unknown (no /proc/cpuinfo)"),
])
def test_auto_rule_on_fabricated_devices(found, expected, reason):
    assert precision._auto_rule(found) == (expected, reason)


@pytest.mark.parametrize("value", ["float32", "mixed_bfloat16", "bfloat16", "float64"])
def test_explicit_values_pass_through_without_probing(monkeypatch, value):
    def unused():
        raise AssertionError("probed the device for an explicit precision")
    monkeypatch.setattr(precision, "_device_features", unused)
    assert resolve_precision(value) == value


@pytest.mark.parametrize("value", ["bf16", "float16", "Auto", ""])
def test_unknown_value_says_what_to_use(value):
    with pytest.raises(ConfigError, match=r"unknown precision .*use auto .*float32"):
        resolve_precision(value)


@pytest.mark.parametrize("kwargs, line", [
    (dict(cpu_flags=AVX2 | {"avx512_bf16"}),
     "precision auto -> mixed_bfloat16 (CPU has avx512_bf16)"),
    (dict(gpu="NVIDIA T4", capability=(7, 5)),
     "precision auto -> float32 (GPU NVIDIA T4 has compute capability 7.5, below 8.0"),
    (dict(gpu="NVIDIA H200", capability=(9, 0)),
     "precision auto -> mixed_bfloat16 (GPU NVIDIA H200 has compute capability 9.0)"),
    (dict(), "precision auto -> float32 (no GPU, and the CPU has neither amx_bf16 nor "
             "avx512_bf16)"),
])
def test_the_choice_is_logged_with_its_reason(probe, caplog, kwargs, line):
    probe(**kwargs)
    with caplog.at_level(logging.INFO, logger="tfstyle"):
        choice = resolve_precision("auto")
    records = [r for r in caplog.records if r.name == "tfstyle" and r.levelno == logging.INFO]
    assert len(records) == 1
    assert records[0].getMessage().startswith(line)
    assert choice in records[0].getMessage()


def cpuinfo_flags():
    """The ``flags`` of /proc/cpuinfo's first processor, read independently of the probe."""
    with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    return frozenset()


@NEEDS_CPUINFO
def test_the_real_probe_reads_the_cpu_flags():
    found = precision._device_features()
    assert set(found) == {"gpu", "gpu_compute_capability", "cpu_flags"}
    assert isinstance(found["cpu_flags"], frozenset)
    assert found["cpu_flags"] == cpuinfo_flags()


def test_the_real_probe_without_proc_cpuinfo_reports_unknown_flags(monkeypatch):
    def no_such_file(path, *args, **kwargs):
        raise FileNotFoundError(2, "No such file or directory", path)
    monkeypatch.setattr(precision, "open", no_such_file, raising=False)
    assert precision._device_features()["cpu_flags"] is None


@pytest.mark.skipif(HAS_GPU, reason="this machine has a GPU")
@NEEDS_CPUINFO
def test_auto_without_a_gpu_follows_the_cpu_flags():
    found = precision._device_features()
    assert found["gpu"] is None and found["gpu_compute_capability"] is None
    bf16 = {"amx_bf16", "avx512_bf16"} & cpuinfo_flags()
    assert resolve_precision("auto") == ("mixed_bfloat16" if bf16 else "float32")


@pytest.mark.skipif(not HAS_GPU, reason="no GPU")
def test_auto_with_a_gpu_follows_its_compute_capability():
    found = precision._device_features()
    first = tf.config.list_physical_devices("GPU")[0]
    details = tf.config.experimental.get_device_details(first)
    major, minor = details["compute_capability"]
    assert isinstance(found["gpu"], str) and found["gpu"]
    assert found["gpu_compute_capability"] == (major, minor)
    assert all(isinstance(n, int) for n in found["gpu_compute_capability"])
    assert resolve_precision("auto") == ("mixed_bfloat16" if (major, minor) >= (8, 0)
                                         else "float32")


@pytest.mark.parametrize("details, name, capability", [
    ({"device_name": "NVIDIA H200", "compute_capability": (9, 0)}, "NVIDIA H200", (9, 0)),
    ({"device_name": "NVIDIA T4", "compute_capability": [7, 5]}, "NVIDIA T4", (7, 5)),
    ({}, "/physical_device:GPU:0", None),  # TF reports no details: the device's own name
])
def test_the_probe_reads_the_first_gpu_tensorflow_lists(monkeypatch, details, name,
                                                         capability):
    gpus = [tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU"),
            tf.config.PhysicalDevice("/physical_device:GPU:1", "GPU")]
    asked = []

    def get_device_details(gpu):
        asked.append(gpu)
        return dict(details)
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind=None: gpus if kind == "GPU" else [])
    monkeypatch.setattr(tf.config.experimental, "get_device_details", get_device_details)
    found = precision._device_features()
    assert asked == [gpus[0]]
    assert found["gpu"] == name
    assert found["gpu_compute_capability"] == capability


@pytest.mark.parametrize("flags, compute", [(AVX2 | {"avx512_bf16"}, "bfloat16"),
                                            (AVX2, "float32")])
def test_stylizer_builds_in_the_resolved_precision(probe, flags, compute):
    from tfstyle import Stylizer

    probe(cpu_flags=flags)
    stylizer = Stylizer(weights=None, content_layers=["conv1_1"], style_layers=["conv1_1"],
                        precision="auto")
    assert stylizer.precision == ("mixed_bfloat16" if compute == "bfloat16" else "float32")
    assert stylizer.model.get_layer("block1_conv1").compute_dtype == compute


def test_stylizer_defaults_to_auto(probe):
    from tfstyle import Stylizer

    probe(cpu_flags=AVX2)  # whatever this machine has: the default follows the probe
    stylizer = Stylizer(weights=None, content_layers=["conv1_1"], style_layers=["conv1_1"])
    assert stylizer.precision == "float32"
    assert stylizer.model.get_layer("block1_conv1").compute_dtype == "float32"
