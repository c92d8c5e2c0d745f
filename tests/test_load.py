"""A short run of bench/load_test.py: concurrent gRPC and REST clients, good and bad
requests mixed, against the loopback server in its own process.

The full run (32 clients, 3 rounds of 20 s) is ``python bench/load_test.py``; its
figures are in BENCHMARKS.md.
"""

import importlib.util
import sys

import pytest

from conftest import REPO

pytest.importorskip("tensorflow_serving", reason="needs tensorflow-serving-api")
pytest.importorskip("grpc", reason="needs grpcio")


def load_module():
    spec = importlib.util.spec_from_file_location("bench_load_test",
                                                  REPO / "bench" / "load_test.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def report():
    import serving_server
    load_test = load_module()
    return load_test.run_load(clients=8, seconds=3, rounds=2, rest_every=4,
                              model_base=serving_server.tiny_export(), settle=0.5,
                              log=lambda line: None)


def test_every_good_request_gets_the_reference_image(report):
    for r in report.rounds:
        good = [o for o in r.outcomes if o.kind == "good"]
        assert good, f"round {r.number}: no good request completed"
        wrong = [o.detail for o in good if o.verdict != "ok"]
        assert not wrong, f"round {r.number}: {len(wrong)} of {len(good)} good requests " \
                          f"failed or got a wrong image, e.g. {wrong[0]}"
        assert {o.protocol for o in good} == {"grpc", "rest"}, "a protocol went unused"


def test_every_bad_request_is_a_clean_invalid_argument(report):
    for r in report.rounds:
        bad = [o for o in r.outcomes if o.kind != "good"]
        assert bad, f"round {r.number}: no bad request was sent"
        unclean = [o.detail for o in bad if o.verdict != "invalid argument"]
        assert not unclean, f"round {r.number}: {len(unclean)} of {len(bad)} bad requests " \
                            f"were not refused with the server's message, e.g. {unclean[0]}"


def test_no_unexpected_errors_and_nothing_grows(report):
    assert report.problems == [], report.problems
    assert sum(len(r.outcomes) for r in report.rounds) >= 20, "too few requests to judge"
