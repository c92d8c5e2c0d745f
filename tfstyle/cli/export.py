"""The ``tfstyle-export`` command: write a tfstyle model for TensorFlow Serving.

    tfstyle-export --model_dir=models/tfstyle --version=1 --weights=imagenet \
        --max_side=1024 --max_steps=2000 --optimizer=lbfgs

writes ``models/tfstyle/1/{saved_model.pb, variables/, assets.extra/}``. Without
--version the next free version number is used, so that a running server picks the new
model up and unloads the old one. Bad flags exit with status 1 and one line on stderr.
"""

from __future__ import annotations

import os
import re

from absl import app, flags, logging

from tfstyle.cli import common
from tfstyle.cli.model_flags import model_options  # --weights --backbone --pooling, layers
from tfstyle.errors import ConfigError, TfstyleError

flags.DEFINE_string("model_dir", "models/tfstyle",
                    "The model's base path: versions are written to <model_dir>/<version>.")
flags.DEFINE_integer("version", None, "Version directory to write (an integer ≥ 1); default: "
                     "one more than the highest existing version.")
flags.DEFINE_integer("max_side", 1024, "Largest output side a request may ask for, pixels.")
flags.DEFINE_integer("max_steps", 2000, "Most optimisation steps a request may ask for.")
flags.DEFINE_integer("max_input_side", None,
                     "Largest side of an input image, pixels; default 4 × max_side.")
flags.DEFINE_enum("optimizer", "lbfgs", ["lbfgs", "adam"],
                  "Optimiser, fixed in the exported model.")
flags.DEFINE_float("learning_rate", None, "Optimiser learning rate; default the optimiser's.")
flags.DEFINE_string("model_name", "tfstyle", "Model name used in the warm-up request.")
flags.DEFINE_bool("warmup", True, "Write assets.extra/tf_serving_warmup_requests "
                  "(needs the tensorflow-serving-api package).")
flags.DEFINE_bool("overwrite", False, "Replace an existing version directory.")
flags.DEFINE_enum("precision", "float32", ["auto", "float32", "mixed_bfloat16"],
                  "Network precision, fixed in the exported graph: auto picks mixed_bfloat16 "
                  "if the machine exporting (not the server) has a GPU of compute capability "
                  "≥ 8.0 or, without a GPU, a CPU with amx_bf16/avx512_bf16; else float32. "
                  "Export on, or choose for, the serving hardware.")

flags.DEFINE_integer("tile_size", 0,
                     "0, or evaluate every stage longer than this many px in tiles of "
                     "this side: a request's memory stops growing with its activations, so "
                     "a larger --max_side fits the same server (SERVING.md).")
flags.DEFINE_integer("tile_halo", -1,
                     "Pixels of context around each tile (-1: the default, half the deepest "
                     "layer's receptive field; that field, 70 px for VGG19, is exact to "
                     "rounding).")

FLAGS = flags.FLAGS


def next_version(model_dir: str) -> int:
    """One more than the highest integer-named directory in ``model_dir`` (1 if none)."""
    try:
        names = os.listdir(model_dir)
    except FileNotFoundError:
        return 1
    versions = [int(n) for n in names
                if re.fullmatch(r"\d+", n) and os.path.isdir(os.path.join(model_dir, n))]
    return max(versions, default=0) + 1


def main(argv):
    if len(argv) > 1:
        common.fail("tfstyle-export", f"unexpected arguments {' '.join(argv[1:])}: all "
                                              "options are --flags")
    try:
        version = FLAGS.version if FLAGS.version is not None else next_version(FLAGS.model_dir)
        if version < 1:
            # TF Serving only loads positive integer versions.
            raise ConfigError(f"--version must be ≥ 1, got {version}")
        model = model_options()

        # TensorFlow loads here, after the flag checks.
        from tfstyle.core.precision import resolve_precision
        from tfstyle.serving.export import export_model

        # Before the verbosity drops: the line saying what auto fixed in the model shows.
        precision = resolve_precision(FLAGS.precision)

        if not FLAGS["verbosity"].present:
            # TensorFlow's SavedModel writer logs INFO lines that say nothing to a user.
            logging.set_verbosity(logging.WARNING)

        path = export_model(
            os.path.join(FLAGS.model_dir, str(version)), **model,
            max_side=FLAGS.max_side, max_steps=FLAGS.max_steps,
            max_input_side=FLAGS.max_input_side, optimizer=FLAGS.optimizer,
            learning_rate=FLAGS.learning_rate, warmup=FLAGS.warmup,
            model_name=FLAGS.model_name, overwrite=FLAGS.overwrite,
            precision=precision, tile_size=FLAGS.tile_size,
            tile_halo=FLAGS.tile_halo)
    except TfstyleError as e:
        common.fail("tfstyle-export", str(e))
    print(path)


def run():
    """Console-script entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
