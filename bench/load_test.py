"""Load test: many concurrent clients against the exported model on a loopback TF Serving.

    python bench/load_test.py                        # 32 clients, 3 rounds of 20 s
    python bench/load_test.py --clients=8 --seconds=3 --rounds=2
    python bench/load_test.py --write                # and puts the table into BENCHMARKS.md

What runs:

* the tiny random-weight export of tests/serving_server.py (VGG16 to conv2_1,
  max_side 32, max_steps 3), served by that file's loopback stand-in for TF Serving
  (gRPC Predict and REST, one session-based ``tf.compat.v1.Session`` shared by every
  request, as TF Serving does) in a subprocess of its own, so that its memory can be
  read from /proc/<pid>/status (VmRSS);
* ``--clients`` threads, each with its own ``TFServingClient`` (every
  ``--rest_every``-th over REST, the others over gRPC), sending for ``--seconds`` per
  round a mix of good requests (tiny images, 1-3 steps, init=noise with one of 8 seeds;
  every answer compared pixel for pixel with the image computed beforehand for that
  seed, by a session of this process) and bad ones (a truncated PNG, steps over
  max_steps, a size over max_side), which must be refused with INVALID_ARGUMENT and the
  server's message;
* after each round the server's RSS, thread count and open file descriptors.

It fails (exit status 1, and a line saying what) on any unexpected error, any wrong
image, or when the server's RSS after the last round exceeds that after the first by
more than ``--rss_margin_mib`` (threads and descriptors likewise): a leak grows every
round, while allocator warm-up happens in the first. Everything listens on 127.0.0.1
only; the run is bounded by ``--rounds`` x ``--seconds`` (plus a drain of at most
``--timeout`` s per round), and the server exits by itself if this process goes away.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import pathlib
import platform
import queue
import random
import re
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
for path in (str(REPO), str(REPO / "tests")):
    if path not in sys.path:
        sys.path.insert(0, path)

from tfstyle.options import RunOptions  # noqa: E402 (after the path set-up)

# What the client sends for every option the load test leaves at its default.
DEFAULTS = RunOptions()
MARK_BEGIN, MARK_END = "<!-- load:begin -->", "<!-- load:end -->"
SEEDS = tuple(range(8))
SIZE = 16
# Bad requests and the words their INVALID_ARGUMENT must carry (set in make_workload).
BAD_KINDS = ("corrupt", "steps", "size")


# ----------------------------------------------------------------------------- the server


def serve(base_path: str, workers: int, max_lifetime: float):
    """The server subprocess: start, print the addresses as one JSON line, serve until
    stdin closes (the parent finished or died) or ``max_lifetime`` s have passed."""
    from serving_server import LoopbackServing

    server = LoopbackServing(base_path, workers=workers)
    server.start()
    print(json.dumps({"grpc": server.grpc_target, "rest": server.rest_target,
                      "pid": os.getpid()}), flush=True)
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    done.wait(max_lifetime)
    server.stop()


class ServerProcess:
    """The server subprocess, started on enter and stopped (then killed, if it must
    be) on exit. ``stderr`` goes to a file, shown when the start fails."""

    def __init__(self, base_path, workers, max_lifetime):
        self.args = [sys.executable, os.path.abspath(__file__), "--serve", base_path,
                     "--workers", str(workers), "--max_lifetime", str(int(max_lifetime))]
        self.process = None
        self.log = None

    def __enter__(self):
        self.log = tempfile.TemporaryFile(mode="w+")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        self.process = subprocess.Popen(self.args, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self.log, text=True,
                                        env=env, cwd=REPO)
        lines = queue.Queue()
        threading.Thread(target=lambda: lines.put(self.process.stdout.readline()),
                         daemon=True).start()
        try:
            info = json.loads(lines.get(timeout=300))
        except (queue.Empty, ValueError):
            self.log.seek(0)
            output = self.log.read()[-3000:]
            self.__exit__()
            raise RuntimeError(f"the loopback server did not start: {output}") from None
        self.grpc, self.rest, self.pid = info["grpc"], info["rest"], info["pid"]
        for target in (self.grpc, self.rest):
            if not target.startswith("127.0.0.1:"):
                self.__exit__()
                raise RuntimeError(f"the server listens on {target}, not on loopback")
        return self

    def __exit__(self, *exc):
        if self.process is None:
            return
        try:
            self.process.stdin.close()
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
        self.process = None
        self.log.close()


def proc_status(pid):
    """{"rss_mib", "threads", "fds"} of a process, from /proc."""
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            fields[key] = value.split()
    return {"rss_mib": int(fields["VmRSS"][0]) / 1024, "threads": int(fields["Threads"][0]),
            "fds": len(os.listdir(f"/proc/{pid}/fd"))}


# ----------------------------------------------------------------------------- the workload


def smooth(seed, height, width):
    """A smooth uint8 image (sinusoids): photo-like, and a few hundred bytes as PNG."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    channels = [0.5 + 0.4 * np.sin(2 * np.pi * (rng.uniform(1, 4) * y + rng.uniform(1, 4) * x)
                                   + rng.uniform(0, 6.3)) for _ in range(3)]
    return (np.stack(channels, -1) * 255).round().astype(np.uint8)


def png(pixels):
    from PIL import Image
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclasses.dataclass
class Workload:
    content: bytes
    style: bytes
    good: dict      # seed -> options
    expected: dict  # seed -> uint8 (H, W, 3)
    bad: dict       # kind -> (content, options, words)


def make_workload(base_path) -> Workload:
    """The requests, and the image each good one must get, computed once here by a
    session of this process on the same export: the reference is not the server."""
    import tensorflow as tf
    from PIL import Image
    from serving_server import MAX_STEPS

    content, style = png(smooth(1, 20, 30)), png(smooth(2, 24, 24))
    good = {seed: dict(steps=1 + seed % 3, size=SIZE, seed=seed, init="noise")
            for seed in SEEDS}
    session = tf.compat.v1.Session(graph=tf.Graph())
    try:
        meta = tf.compat.v1.saved_model.loader.load(session, ["serve"],
                                                    os.path.join(base_path, "1"))
        sig = meta.signature_def["serving_default"]
        expected = {}
        for seed, options in good.items():
            values = {"content": content, "style": style, "steps": np.int32(options["steps"]),
                      "size": np.int32(SIZE), "seed": np.int64(seed), "init": b"noise",
                      "content_weight": np.float32(DEFAULTS.content_weight),
                      "style_weight": np.float32(DEFAULTS.style_weight),
                      "tv_weight": np.float32(DEFAULTS.tv_weight),
                      "style_scale": np.float32(DEFAULTS.style_scale)}
            out = session.run(sig.outputs["image_bytes"].name,
                              {sig.inputs[k].name: v for k, v in values.items()})
            expected[seed] = np.asarray(Image.open(io.BytesIO(out)))
    finally:
        session.close()
    bad = {"corrupt": (content[:len(content) // 2], dict(steps=1, size=SIZE, seed=0),
                       "Invalid PNG data"),
           "steps": (content, dict(steps=MAX_STEPS + 1, size=SIZE, seed=0),
                     f"steps={MAX_STEPS + 1} is outside the limit"),
           # Over the export's max_side (32): a size the client lets through (it checks
           # only the bounds every export has), and this server refuses.
           "size": (content, dict(steps=1, size=33, seed=0), "size=33 is outside the limit")}
    return Workload(content, style, good, expected, bad)


@dataclasses.dataclass
class Outcome:
    kind: str          # "good" or a BAD_KINDS entry
    protocol: str
    seconds: float
    verdict: str       # "ok", "wrong image", "invalid argument", "unexpected"
    detail: str = ""


def request_once(client, protocol, workload, kind, seed=0) -> Outcome:
    """One request of ``kind`` ("good" with ``seed``, or a BAD_KINDS entry), judged."""
    from tfstyle.serving.client import ServingError

    if kind == "good":
        content, options, words = workload.content, workload.good[seed], None
    else:
        content, options, words = workload.bad[kind]
    started = time.perf_counter()
    try:
        result = client.stylize_result(content, workload.style, **options)
    except ServingError as e:
        elapsed = time.perf_counter() - started
        if words is not None and e.code == "INVALID_ARGUMENT" and words in str(e):
            return Outcome(kind, protocol, elapsed, "invalid argument")
        return Outcome(kind, protocol, elapsed, "unexpected",
                       f"{kind} over {protocol}: {e.code}: {str(e)[:300]}")
    except Exception as e:  # any other failure is what this test is looking for
        return Outcome(kind, protocol, time.perf_counter() - started, "unexpected",
                       f"{kind} over {protocol}: {type(e).__name__}: {str(e)[:300]}")
    elapsed = time.perf_counter() - started
    if words is not None:
        return Outcome(kind, protocol, elapsed, "unexpected",
                       f"{kind} over {protocol}: answered with an image, not refused")
    if np.array_equal(result.image, workload.expected[seed]):
        return Outcome(kind, protocol, elapsed, "ok")
    return Outcome(kind, protocol, elapsed, "wrong image",
                   f"seed {seed} over {protocol}: the {result.image.shape} image differs "
                   f"from the reference")


def client_loop(target, protocol, workload, deadline, rng, outcomes, bad_fraction, timeout):
    """One client: requests back to back until ``deadline``; appends an Outcome each."""
    from tfstyle.serving.client import TFServingClient

    with TFServingClient(target, protocol=protocol, timeout=timeout) as client:
        while time.monotonic() < deadline:
            if rng.random() < bad_fraction:
                outcomes.append(request_once(client, protocol, workload,
                                             rng.choice(BAD_KINDS)))
            else:
                outcomes.append(request_once(client, protocol, workload, "good",
                                             rng.choice(SEEDS)))


def percentile(values, q):
    if not values:
        return float("nan")
    return float(np.percentile(np.asarray(values) * 1000.0, q))


@dataclasses.dataclass
class Round:
    number: int
    seconds: float
    outcomes: list
    server: dict

    def count(self, verdict=None, kind=None, protocol=None):
        return sum(1 for o in self.outcomes
                   if (verdict is None or o.verdict == verdict)
                   and (kind is None or (o.kind == "good") == (kind == "good"))
                   and (protocol is None or o.protocol == protocol))

    def latencies(self, kind):
        return [o.seconds for o in self.outcomes if (o.kind == "good") == (kind == "good")
                and o.verdict in ("ok", "invalid argument", "wrong image")]


@dataclasses.dataclass
class Report:
    clients: int
    rest_clients: int
    seconds: float
    bad_fraction: float
    workers: int
    before: dict
    rounds: list
    problems: list
    margins: dict

    def table(self, command):
        import tensorflow as tf
        lines = [
            f"Machine: {platform.machine()} ({_cpu_model()}), {os.cpu_count()} CPU cores, "
            f"{platform.python_implementation()} {platform.python_version()}, "
            f"TensorFlow {tf.__version__}. Server: tests/serving_server.py (TF Serving's "
            f"gRPC and REST APIs, one session-based Session for all requests, "
            f"{self.workers} gRPC worker threads) in its own process, on 127.0.0.1, "
            f"serving the tiny random-weight export (VGG16 to conv2_1, max_side 32, "
            f"max_steps 3).", "",
            f"Command: `{command}`", "",
            f"Workload: {self.clients} concurrent clients ({self.clients - self.rest_clients} "
            f"gRPC, {self.rest_clients} REST), each its own TFServingClient, requests back "
            f"to back for {self.seconds:g} s per round; {100 * (1 - self.bad_fraction):.0f} % "
            f"good (20x30 content, 24x24 style, size {SIZE}, 1-3 L-BFGS steps, init=noise, "
            f"{len(SEEDS)} seeds; each answer compared pixel for pixel with the reference "
            f"image computed beforehand), {100 * self.bad_fraction:.0f} % bad (truncated "
            f"PNG, steps over max_steps, size over max_side: INVALID_ARGUMENT expected).", "",
            "| round | requests | req/s | good | wrong images | bad | INVALID_ARGUMENT "
            "(expected) | unexpected errors | good p50 / p95 ms | bad p50 ms | server RSS MiB "
            "| threads | fds |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
            f"| before | | | | | | | | | | {self.before['rss_mib']:.0f} | "
            f"{self.before['threads']} | {self.before['fds']} |"]
        for r in self.rounds:
            good = r.latencies("good")
            lines.append(
                f"| {r.number} | {len(r.outcomes)} | {len(r.outcomes) / r.seconds:.1f} | "
                f"{r.count(kind='good')} | {r.count('wrong image')} | {r.count(kind='bad')} | "
                f"{r.count('invalid argument')} | {r.count('unexpected')} | "
                f"{percentile(good, 50):.0f} / {percentile(good, 95):.0f} | "
                f"{percentile(r.latencies('bad'), 50):.0f} | {r.server['rss_mib']:.0f} | "
                f"{r.server['threads']} | {r.server['fds']} |")
        first, last = self.rounds[0].server, self.rounds[-1].server
        lines += ["", f"Server growth from the first round to the last: RSS "
                      f"{last['rss_mib'] - first['rss_mib']:+.1f} MiB (limit "
                      f"+{self.margins['rss_mib']:g}), threads "
                      f"{last['threads'] - first['threads']:+d} (limit "
                      f"+{self.margins['threads']}), fds {last['fds'] - first['fds']:+d} (limit "
                      f"+{self.margins['fds']}). "
                      + ("Result: passed." if not self.problems else
                         "Result: FAILED: " + "; ".join(self.problems))]
        return "\n".join(lines)


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def run_load(clients=32, seconds=20.0, rounds=3, rest_every=4, bad_fraction=0.25,
             workers=16, timeout=120.0, rss_margin_mib=64.0, thread_margin=8, fd_margin=16,
             model_base=None, settle=1.0, log=print) -> Report:
    """Runs the load test; returns the Report (its ``problems`` empty when it passed)."""
    if not 1 <= clients <= 256 or not 0 < seconds <= 600 or not 1 <= rounds <= 20:
        raise ValueError("keep it bounded: 1..256 clients, 0..600 s, 1..20 rounds")
    import serving_server

    base_path = model_base or serving_server.tiny_export()
    log(f"model {base_path}; computing the reference images")
    workload = make_workload(base_path)
    lifetime = 600 + rounds * (seconds + timeout + 30)
    with ServerProcess(base_path, workers, lifetime) as server:
        log(f"server pid {server.pid}: gRPC {server.grpc}, REST {server.rest}")
        protocols = ["rest" if (i + 1) % rest_every == 0 else "grpc" for i in range(clients)]
        from tfstyle.serving.client import TFServingClient

        # One request of each kind on each protocol first, so that first-use
        # allocations are in the baseline, not counted as growth.
        warm = []
        for protocol in ("grpc", "rest"):
            target = server.grpc if protocol == "grpc" else server.rest
            with TFServingClient(target, protocol=protocol, timeout=timeout) as client:
                warm += [request_once(client, protocol, workload, kind)
                         for kind in ("good",) + BAD_KINDS]
        problems = [o.detail for o in warm if o.verdict in ("unexpected", "wrong image")]
        before = _settled(server.pid, settle)
        log(f"before: {before}")
        done = []
        for number in range(1, rounds + 1):
            outcomes = []
            deadline = time.monotonic() + seconds
            started = time.monotonic()
            threads = [threading.Thread(
                target=client_loop,
                args=(server.grpc if p == "grpc" else server.rest, p, workload, deadline,
                      random.Random(f"{number}-{i}"), outcomes, bad_fraction, timeout),
                name=f"client-{i}", daemon=True) for i, p in enumerate(protocols)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(max(0.0, deadline + timeout - time.monotonic()))
            hung = [t.name for t in threads if t.is_alive()]
            if hung:
                problems.append(f"round {number}: {len(hung)} clients still waiting "
                                f"{timeout:g} s after the round ended")
            elapsed = time.monotonic() - started
            result = Round(number, elapsed, list(outcomes), _settled(server.pid, settle))
            done.append(result)
            log(f"round {number}: {len(result.outcomes)} requests in {elapsed:.1f} s, "
                f"{result.count('unexpected')} unexpected, {result.count('wrong image')} "
                f"wrong, server {result.server}")
    for r in done:
        if not r.count(kind="good") or not r.count(kind="bad"):
            problems.append(f"round {r.number}: no good or no bad request completed")
        for protocol in set(protocols):
            if not r.count(kind="good", protocol=protocol):
                problems.append(f"round {r.number}: no good {protocol} request completed")
        details = [o.detail for o in r.outcomes if o.verdict in ("unexpected", "wrong image")]
        if details:
            problems.append(f"round {r.number}: {len(details)} unexpected errors or wrong "
                            f"images, e.g. {details[0]}")
    first, last = done[0].server, done[-1].server
    margins = {"rss_mib": rss_margin_mib, "threads": thread_margin, "fds": fd_margin}
    if last["rss_mib"] > first["rss_mib"] + rss_margin_mib:
        problems.append(f"server RSS grew from {first['rss_mib']:.0f} MiB after round 1 to "
                        f"{last['rss_mib']:.0f} MiB after round {len(done)}, more than "
                        f"+{rss_margin_mib:g} MiB")
    if last["threads"] > first["threads"] + thread_margin:
        problems.append(f"server threads grew from {first['threads']} to {last['threads']}")
    if last["fds"] > first["fds"] + fd_margin:
        problems.append(f"server file descriptors grew from {first['fds']} to {last['fds']}")
    return Report(clients, protocols.count("rest"), seconds, bad_fraction, workers, before,
                  done, problems, margins)


def _settled(pid, seconds):
    # REST handler threads and their sockets end a moment after the last answer.
    time.sleep(seconds)
    return proc_status(pid)


def write_benchmarks(table):
    path = REPO / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else ""
    block = f"{MARK_BEGIN}\n{table}\n{MARK_END}"
    if MARK_BEGIN in text and MARK_END in text:
        text = re.sub(re.escape(MARK_BEGIN) + ".*?" + re.escape(MARK_END), lambda m: block,
                      text, count=1, flags=re.S)
    else:
        text += ("\n" if text and not text.endswith("\n") else "") + \
            ("\n" if text else "") + block + "\n"
    path.write_text(text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=20, help="length of a round")
    parser.add_argument("--rounds", type=int, default=3, help="number of rounds")
    parser.add_argument("--rest_every", type=int, default=4,
                        help="every n-th client uses REST, the others gRPC")
    parser.add_argument("--bad_fraction", type=float, default=0.25,
                        help="share of requests that must be refused")
    parser.add_argument("--workers", type=int, default=16, help="the server's gRPC threads")
    parser.add_argument("--timeout", type=float, default=120, help="client timeout, s")
    parser.add_argument("--rss_margin_mib", type=float, default=64,
                        help="allowed RSS growth from the first round to the last")
    parser.add_argument("--write", action="store_true",
                        help="put the table into BENCHMARKS.md between the load markers")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--max_lifetime", type=float, default=3600, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.workers, args.max_lifetime)
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    report = run_load(args.clients, args.seconds, args.rounds, args.rest_every,
                      args.bad_fraction, args.workers, args.timeout, args.rss_margin_mib,
                      log=lambda line: print(line, file=sys.stderr, flush=True))
    command = "python bench/load_test.py " + " ".join(argv if argv is not None else sys.argv[1:])
    table = report.table(command.strip())
    print(table)
    if args.write:
        write_benchmarks(table)
        print(f"\nwritten to {REPO / 'BENCHMARKS.md'}")
    if report.problems:
        print("load test FAILED: " + "; ".join(report.problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
