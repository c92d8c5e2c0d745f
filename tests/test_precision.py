"""``precision="auto"``: the rule, on probed devices faked by replacing only the probe."""

import logging

import pytest

from tfstyle import precision
from tfstyle.errors import ConfigError
from tfstyle.precision import resolve_precision

AVX2 = frozenset({"fpu", "sse4_2", "avx", "avx2", "fma"})


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


def test_the_real_probe_returns_the_documented_structure():
    found = precision._device_features()
    assert set(found) == {"gpu", "gpu_compute_capability", "cpu_flags"}
    assert found["gpu"] is None or isinstance(found["gpu"], str)
    capability = found["gpu_compute_capability"]
    assert capability is None or (isinstance(capability, tuple) and len(capability) == 2
                                  and all(isinstance(n, int) for n in capability))
    if found["gpu"] is None:
        assert capability is None
    flags = found["cpu_flags"]
    assert flags is None or (isinstance(flags, frozenset)
                             and all(isinstance(f, str) and f for f in flags))
    assert resolve_precision("auto") in ("mixed_bfloat16", "float32")


def test_stylizer_builds_in_the_resolved_precision():
    from tfstyle import Stylizer

    stylizer = Stylizer(weights=None, content_layers=["conv1_1"], style_layers=["conv1_1"],
                        precision="auto")
    expected = resolve_precision("auto")
    assert stylizer.precision == expected
    compute = "bfloat16" if expected == "mixed_bfloat16" else "float32"
    assert stylizer.model.get_layer("block1_conv1").compute_dtype == compute


def test_stylizer_defaults_to_auto(probe):
    from tfstyle import Stylizer

    probe(cpu_flags=AVX2)  # whatever this machine has: the default follows the probe
    stylizer = Stylizer(weights=None, content_layers=["conv1_1"], style_layers=["conv1_1"])
    assert stylizer.precision == "float32"
    assert stylizer.model.get_layer("block1_conv1").compute_dtype == "float32"
