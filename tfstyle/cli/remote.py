"""``tfstyle --server=host:port``: the run happens on a TensorFlow Serving, not here.

    tfstyle --server=localhost:8500 --content=photo.jpg --style=painting.jpg --output=out.png
    tfstyle --server=localhost:8501 --protocol=rest --content='photos/*.jpg' \\
        --style=painting.jpg --output=stylized/ --concurrency=4

The run options come from the same flags as a local run, one per option a request
carries (``tfstyle.serving.served_options``: ``--size``, ``--steps``, the weights, ``--seed``,
``--init``, ...; ``--init=<file>`` is sent as the photo's start image, the
``init_image`` input); the feature model, layers, weights and optimiser were fixed when
the model was exported, so their flags are ignored (with a warning) here. Where the server
fails a request, the error says which flags to change (``FLAG_HINTS``).

``--content`` may name one file, a folder, or a glob (quote it, so the shell does not
expand it): then ``--output`` is a folder (created if missing), every image is sent
with up to ``--concurrency`` requests in flight, and each result is written to
``<output>/<stem>.<output_ext>`` as soon as it arrives. A file that fails is reported
and the others go on; the exit status is 1 if any failed. If the server cannot be
reached or has no such model, nothing more is sent. With one image, ``--output`` may
also be a folder (an existing one, or a path ending in ``/``).

TensorFlow is not imported on this path: the client needs numpy, Pillow and, for gRPC,
grpcio and protobuf.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

from absl import flags, logging

from tfstyle.cli.photo_paths import content_files, plan_outputs
from tfstyle.errors import ConfigError, TfstyleError
from tfstyle.options import INITS, RunOptions
from tfstyle.serving.served_options import request_values

flags.DEFINE_string("server", None,
                    "host:port of a TensorFlow Serving running the exported tfstyle model: the "
                    "run happens there instead of here (gRPC port 8500, REST 8501).")
flags.DEFINE_enum("protocol", "grpc", ["grpc", "rest"],
                  "With --server: gRPC (needs pip install 'tfstyle[serving]') or REST.")
flags.DEFINE_string("model_name", "tfstyle", "With --server: the server's --model_name.")
flags.DEFINE_integer("model_version", None,
                     "With --server: the model version to use; default the server's latest.")
flags.DEFINE_integer("concurrency", 4,
                     "With --server and several --content images: requests in flight at once.")
flags.DEFINE_float("timeout", 600.0, "With --server: seconds to wait for each image.")
flags.DEFINE_enum("output_ext", "png", ["png", "jpg", "jpeg"],
                  "With several --content images (a folder or a glob), locally or with "
                  "--server: the format of the files written into the --output folder.")

FLAGS = flags.FLAGS

# Flags of a local run that an exported model has fixed.
LOCAL_ONLY_FLAGS = ("optimizer", "learning_rate", "backbone", "pooling", "weights",
                    "content_layers", "style_layers", "style_layer_weights",
                    "content_edge_powers", "save_every",
                    "logdir", "precision", "jit_compile")
# Errors that every further request would meet too: stop sending.
FATAL_CODES = ("UNAVAILABLE", "NOT_FOUND", "UNIMPLEMENTED", "UNAUTHENTICATED",
               "PERMISSION_DENIED", "FAILED_PRECONDITION")
# What to change on the command line, by the code of a ServingError (whose message, the
# library's, names no flags).
FLAG_HINTS = {
    "DEADLINE_EXCEEDED": "raise --timeout or lower --steps / --size (or --concurrency, if "
                         "the server is busy)",
    "NOT_FOUND": "check --model_name / --model_version",
    "RESOURCE_EXHAUSTED": "lower --size or --concurrency",
    "UNIMPLEMENTED": "check --protocol (grpc on port 8500, rest on 8501)",
}


# The named starts a server takes, for the messages: from INITS, so they cannot drift.
_NAMED_INITS = "--init=" + ", ".join(f"{name} (the default)" if name == RunOptions.init
                                     else name for name in INITS)


def run_remote(options) -> None:
    """Runs the ``--server`` path of the CLI with the validated ``RunOptions``.

    Returns normally when every image was written; raises ``TfstyleError`` (the CLI
    prints it and exits 1) for a bad flag, a failed single image, or, in folder mode,
    with the summary ``"4 written, 1 failed: bad.jpg (INVALID_ARGUMENT: ...)"``.
    """
    from tfstyle.serving import client as serving

    check_flags(options)
    contents, folder_mode = content_files(FLAGS.content)
    jobs = plan_outputs(contents, folder_mode, FLAGS.output, FLAGS.output_ext,
                        [FLAGS.style] + ([] if options.init in INITS else [options.init]))
    client = make_client()

    # Read and checked once, before any request: every job sends the same bytes.
    style = serving.encode_image(FLAGS.style)
    start = None
    if options.init not in INITS:  # a start image file: sent as the init_image input
        if folder_mode:
            raise ConfigError(f"--init={options.init}: a start image is one photo's; use "
                              f"{_NAMED_INITS} with a folder")
        start = serving.encode_image(options.init)
        options = dataclasses.replace(options, init="content")
    seed = options.seed if options.seed is not None else serving.draw_seed()
    run_options = request_values(options, seed)
    logging.info("sending %d image%s to %s (%s, model %s): %d px, %d steps, seed %d (pass "
                 "--seed=%d to repeat)", len(jobs), "" if len(jobs) == 1 else "s",
                 client.target, client.protocol, client.model_name, options.size,
                 options.steps, seed, seed)
    with client:
        with hinted_errors():
            if not folder_mode:
                (content, output), = jobs
                started = time.perf_counter()
                result = client.stylize_result(content, style, init_image=start,
                                               **run_options)
                _save(result.image, output)
                logging.info("wrote %s (loss %.4g, %.1f s)", output, result.loss,
                             time.perf_counter() - started)
                return
            _check_server(client)
        _run_batch(client, jobs, style, run_options, FLAGS.concurrency)


def check_flags(options, clip: bool = False) -> None:
    """Raises ConfigError for flags a request cannot carry (for a ``clip``, the frames'
    requests); warns of the local-only ones that are ignored."""
    for name in ("content", "style", "output"):
        if not getattr(FLAGS, name):
            raise ConfigError(f"--{name} is required")
    if FLAGS.concurrency < 1:
        raise ConfigError(f"--concurrency must be ≥ 1, got {FLAGS.concurrency}")
    local_only = [flag for flag, used in (
        ("several --style images", "," in FLAGS.style),
        ("--style_blend_weights", options.style_blend_weights is not None),
        ("one --style_scale per style", isinstance(options.style_scale, tuple)),
        ("--content_mask", bool(FLAGS.content_mask)),
        ("--style_masks", bool(FLAGS.style_masks)),
        ("--stage_steps", options.stage_steps is not None)) if used]
    if local_only:
        raise ConfigError(f"{', '.join(local_only)}: not available with --server (a request "
                          f"carries one style image, no masks, no per-stage steps); run "
                          f"locally without --server")
    if clip and options.init not in INITS:
        raise ConfigError(f"--init={options.init}: a clip's frames on --server start from "
                          f"their own; use {_NAMED_INITS}")
    ignored = [f"--{name}" for name in LOCAL_ONLY_FLAGS
               if name in FLAGS and FLAGS[name].present]
    if ignored:
        logging.warning("ignored with --server (the exported model fixes them): %s",
                        ", ".join(ignored))


def make_client():
    """The flags' ``TFServingClient`` (not yet connected)."""
    from tfstyle.serving import client as serving

    return serving.TFServingClient(FLAGS.server, model_name=FLAGS.model_name,
                                   protocol=FLAGS.protocol, timeout=FLAGS.timeout,
                                   version=FLAGS.model_version)


@contextlib.contextmanager
def hinted_errors():
    """Re-raises a ``ServingError`` with the flags to change, where its code has some."""
    from tfstyle.serving.client import ServingError

    try:
        yield
    except ServingError as e:
        raise ServingError(_hinted(e), e.code, e.details) from None


def _hinted(error) -> str:
    """A ServingError's message, with the flags to change where its code has some."""
    hint = FLAG_HINTS.get(getattr(error, "code", None))
    return f"{error}; {hint}" if hint else str(error)


def _check_server(client):
    """One cheap status call before a batch, so that a server that is down or lacks the
    model gives one clear error instead of one per image."""
    from tfstyle.serving.client import ServingError

    try:
        versions = client.model_status()
    except ServingError as e:
        if e.code == "UNIMPLEMENTED":  # a proxy that only forwards Predict: just go on
            return
        raise
    if versions and not any(v["state"] == "AVAILABLE" for v in versions):
        states = ", ".join(f"version {v['version']} {v['state']}" for v in versions)
        raise ServingError(f"model {client.model_name!r} at {client.target} has no version "
                           f"ready to serve ({states}): wait for it to load, or check the "
                           f"server's log", "UNAVAILABLE")


def _save(image, path):
    from tfstyle import image_io

    image_io.save_image(image, path)


def _describe(error):
    code = getattr(error, "code", None)
    return f"{code}: {_hinted(error)}" if code else f"{type(error).__name__}: {error}"


class _NotSent(Exception):
    pass


def _run_batch(client, jobs, style, run_options, concurrency):
    stop = threading.Event()

    def work(content, output):
        if stop.is_set():
            raise _NotSent()
        started = time.perf_counter()
        result = client.stylize_result(content, style, **run_options)
        # Written here, in the worker, so a slow disk does not hold up the others.
        _save(result.image, output)
        return result, time.perf_counter() - started

    written, failed, not_sent = [], [], []
    fatal = None
    pool = ThreadPoolExecutor(max_workers=min(concurrency, len(jobs)),
                              thread_name_prefix="tfstyle-remote")
    try:
        pending = {pool.submit(work, content, output): (content, output)
                   for content, output in jobs}
        for future in as_completed(pending):
            content, output = pending[future]
            try:
                result, seconds = future.result()
            except _NotSent:
                not_sent.append(content)
                continue
            except Exception as e:  # one bad file must not stop the others
                if getattr(e, "code", None) in FATAL_CODES:
                    # Requests already in flight meet the same error: report it once.
                    if fatal is None:
                        fatal = _describe(e)
                        stop.set()
                        logging.error("%s: %s; not sending the remaining images", content,
                                      fatal)
                    not_sent.append(content)
                    continue
                failed.append((content, _describe(e)))
                logging.error("%s: %s", content, _describe(e))
                continue
            written.append(output)
            logging.info("[%d/%d] wrote %s (loss %.4g, %.1f s)",
                         len(written) + len(failed), len(jobs), output, result.loss, seconds)
    finally:
        # On Ctrl-C: drop what has not started; closing the client cancels gRPC calls.
        pool.shutdown(wait=False, cancel_futures=True)

    summary = f"{len(written)} written, {len(failed)} failed"
    reasons = [f"{os.path.basename(c)} ({why})" for c, why in failed]
    if not_sent:
        summary += f", {len(not_sent)} not done"
        reasons.append(f"stopped after {fatal}")
    if failed or not_sent:
        raise TfstyleError(summary + ": " + "; ".join(reasons))
    logging.info("%s", summary)
