"""The ``tfstyle`` command: absl flags in, a stylized image file out.

    tfstyle --content=photo.jpg --style=painting.jpg --output=out.png
    tfstyle --flagfile=configs/paper.cfg --content=... --style=... --output=...
    tfstyle --content=photos/ --style=painting.jpg --output=stylized/ [--resume]

Every input is checked before the (slow) model build and optimisation; a bad input
exits with status 1 and one line on stderr, and writes nothing. With a folder or a
glob of photos (``run_many``) the flags, the style and the outputs' paths are checked
first; each photo is then read and checked just before its run, and one that fails is
reported and skipped.
"""

from __future__ import annotations

import os
import pathlib
import sys

from absl import app, flags, logging

from tfstyle.cli import common, photos as photos_cli, video as video_cli
from tfstyle.cli import model_flags  # noqa: F401  (defines --weights --backbone --pooling, layers)
from tfstyle.cli import remote  # the --server flags and path
from tfstyle.errors import ConfigError, Interrupted, NumericalError, TfstyleError
from tfstyle.local import checkpoint
from tfstyle.options import PRESERVE_COLORS, STYLE_LOSSES, RunOptions

_DEFAULTS = RunOptions()

flags.DEFINE_string("content", None,
                    "Content image (the photo); or a folder of photos, or a quoted glob "
                    "('photos/*.jpg'): each is stylized on its own and written to "
                    "<--output folder>/<name>.<--output_ext>.")
flags.DEFINE_string("style", None, "Style image (the painting), or several separated by "
                    "commas: blended (--style_blend_weights) or placed by --style_masks.")
flags.DEFINE_list("style_blend_weights", None,
                  "One weight per style image, e.g. 3,7 (normalised to sum 1); default equal.")
flags.DEFINE_enum("preserve_colors", _DEFAULTS.preserve_colors, list(PRESERVE_COLORS),
                  "Keep the content's colours: luminance (style only the luminance, then put "
                  "the photo's colours back) or histogram (match the style's colours to the "
                  "photo's first).")
flags.DEFINE_enum("style_loss", _DEFAULTS.style_loss, list(STYLE_LOSSES),
                  "gram (the paper's) or mean_cov (feature means and covariances: cleaner "
                  "textures).")
flags.DEFINE_string("content_mask", None,
                    "Image over the content: the style applies where it is white, the photo "
                    "stays where it is black.")
flags.DEFINE_list("style_masks", None,
                  "One mask image per style (comma-separated): style k applies where mask k "
                  "is white, e.g. two styles on two regions.")
flags.DEFINE_integer("stage_size", _DEFAULTS.stage_size,
                     "Coarse-to-fine: longest side of the first stage; stages grow by "
                     "--stage_factor up to --size. 0 optimises at --size only.")
flags.DEFINE_float("stage_factor", _DEFAULTS.stage_factor, "Size ratio between stages (> 1).")
flags.DEFINE_float("stage_detail", _DEFAULTS.stage_detail,
                   "Coarse-to-fine: how much of the photo's detail between two stages' sizes "
                   "each finer stage starts with (0 to 1; 0: the last result upsampled "
                   "alone).")
flags.DEFINE_string("memory_limit", "0",
                    "Memory a step may use (6G, 512M; 0 = 0.7 of the free RAM, or of the "
                    "GPU's memory): larger stages run tiled, in tiles that fit, and "
                    "the run then takes TensorFlow's tensors from malloc, which keeps "
                    "the bound, rather than its faster pool.")
flags.DEFINE_integer("tile_size", 0,
                     "Tile every stage larger than this many px in tiles of this side "
                     "(0: only stages over --memory_limit, in the largest tiles that fit).")
flags.DEFINE_integer("tile_halo", -1,
                     "Pixels of context around each tile (-1: the default, half the deepest "
                     "layer's receptive field; that field, 70 px for VGG19 and 58 for VGG16, "
                     "is exact to rounding; smaller is faster and approximate).")
flags.DEFINE_list("stage_steps", None,
                  "Steps per stage, coarsest first (replaces --steps); default: --steps "
                  "split with each stage getting half the steps of the one before.")
flags.DEFINE_string("output", None,
                    "Output image; .png or .jpg/.jpeg. Written atomically. With a folder or "
                    "glob of --content photos: the results' folder (created if missing).")
flags.DEFINE_integer("size", _DEFAULTS.size, "Longest side of the output, in pixels.")
flags.DEFINE_integer("steps", _DEFAULTS.steps, "Optimisation steps.")
flags.DEFINE_enum("optimizer", _DEFAULTS.optimizer, ["lbfgs", "adam"], "Optimiser.")
flags.DEFINE_float("learning_rate", None,
                   "Adam: step in pixels (0..255), default 10. L-BFGS: multiplier of the "
                   "quasi-Newton step, default 1.")
flags.DEFINE_float("content_weight", _DEFAULTS.content_weight, "alpha: content loss weight.")
flags.DEFINE_float("style_weight", _DEFAULTS.style_weight,
                   "beta: style loss weight, at the default --style_strength.")
flags.DEFINE_float("style_strength", _DEFAULTS.style_strength,
                   "How much style, 0 (the photo) to 1 (the most of the painting): moves alpha "
                   "and beta along the trade-off; at the default they are --content_weight "
                   "and --style_weight as given. Above the default only the full-size "
                   "stage follows it (the coarse stages keep the layout of the default).")
flags.DEFINE_float("tv_weight", _DEFAULTS.tv_weight, "gamma: total variation weight.")
flags.DEFINE_string("init", _DEFAULTS.init,
                    "Start image: texture (the photo with the painting's texture over it, "
                    "its layout scrambled by a random phase: the painting's colours and "
                    "strokes, none of its composition), content (the photo), noise, style "
                    "(the painting), blend (the painting's composition laid over the "
                    "photo: its shapes can show in the picture), or the path of an image.")
flags.DEFINE_float("init_blend", _DEFAULTS.init_blend,
                   "The painting's share of --init=texture or --init=blend, 0 (the photo) "
                   "to 1 (the painting's texture, or the painting itself). Falls with "
                   "--style_strength below its default.")
flags.DEFINE_integer("seed", None, "Random seed; the run is reproducible with the same seed. "
                     "Default: drawn at random and logged.")
flags.DEFINE_enum("precision", "auto", ["auto", "float32", "mixed_bfloat16"],
                  "Network precision: mixed_bfloat16 computes the VGG in bfloat16 (losses stay "
                  "float32). auto picks mixed_bfloat16 on a GPU of compute capability ≥ 8.0 "
                  "or, without a GPU, on a CPU with amx_bf16 or avx512_bf16 (/proc/cpuinfo), "
                  "else float32; the choice is logged.")
flags.DEFINE_bool("jit_compile", False, "Compile the optimisation loop with XLA.")
flags.DEFINE_list("style_scale", [str(_DEFAULTS.style_scale)],
                  "Style image's longest side relative to the output's: one number, or one "
                  "per style image.")
flags.DEFINE_integer("log_every", 50, "Log progress every N steps.")
flags.DEFINE_integer("save_every", 0,
                     "Write the intermediate image every N steps as <output>_<step>.<ext>; "
                     "0 disables.")
flags.DEFINE_string("logdir", None, "Write TensorBoard scalars and images here.")
flags.DEFINE_bool("resume", False,
                  "Continue an interrupted run from its checkpoint (run the same command "
                  "again with --resume). With a folder or glob of photos: skip every photo "
                  "whose output file exists, whatever its age (delete it to redo it).")
flags.DEFINE_string("checkpoint", None,
                    "Checkpoint file written on Ctrl-C / SIGTERM and read by --resume; "
                    "default <output>.ckpt.npz.")

FLAGS = flags.FLAGS


def options_from_flags() -> RunOptions:
    """The ``RunOptions`` the flags ask for, validated."""
    scales = _numbers("style_scale", float)
    return RunOptions(
        size=FLAGS.size, steps=FLAGS.steps, optimizer=FLAGS.optimizer,
        learning_rate=FLAGS.learning_rate, content_weight=FLAGS.content_weight,
        style_weight=FLAGS.style_weight, style_strength=FLAGS.style_strength,
        tv_weight=FLAGS.tv_weight, init=FLAGS.init, init_blend=FLAGS.init_blend,
        seed=FLAGS.seed, style_scale=scales[0] if len(scales) == 1 else scales,
        style_blend_weights=_numbers("style_blend_weights", float),
        preserve_colors=FLAGS.preserve_colors, style_loss=FLAGS.style_loss,
        stage_size=FLAGS.stage_size, stage_factor=FLAGS.stage_factor,
        stage_detail=FLAGS.stage_detail,
        stage_steps=_numbers("stage_steps", int), memory_limit=FLAGS.memory_limit,
        tile_size=FLAGS.tile_size, tile_halo=FLAGS.tile_halo,
        temporal_weight=FLAGS.temporal_weight).validate()


def _numbers(name, kind):
    """A comma-separated list flag as a tuple of numbers (None if unset)."""
    values = getattr(FLAGS, name)
    if values is None:
        return None
    try:
        return tuple(kind(v) for v in values)
    except ValueError:
        raise ConfigError(f"--{name} must be a comma-separated list of "
                          f"{'integers' if kind is int else 'numbers'}, got "
                          f"{','.join(values)!r}") from None


def _check_paths():
    from tfstyle import image_io

    for name in ("content", "style", "output"):
        if not getattr(FLAGS, name):
            raise ConfigError(f"--{name} is required")
    output = image_io.check_output_path(FLAGS.output)
    masks = ([FLAGS.content_mask] if FLAGS.content_mask else []) + (FLAGS.style_masks or [])
    inputs = ([FLAGS.content] + common.style_paths() + masks
              + ([FLAGS.init] if os.path.isfile(FLAGS.init) else []))
    for path in inputs:
        if os.path.realpath(path) == str(output):
            raise ConfigError(f"--output {FLAGS.output} is also an input: choose another path, "
                              f"the input would be overwritten")
    common.check_every()
    return output


def _decode_inputs():
    """Every input image decoded once, with Pillow alone, so that a missing or bad file
    fails before TensorFlow is imported (seconds) and the run uses these rather than
    reading the files again. ``_load_inputs`` checks how they fit the options.

    Returns a dict of ``Stylizer.stylize``'s image arguments: content, style (a list),
    content_mask and style_masks (decoded RGB PIL images, or None)."""
    from tfstyle import image_io

    images = dict(
        content=image_io.open_image(FLAGS.content), style=_decode_styles(),
        content_mask=image_io.open_image(FLAGS.content_mask) if FLAGS.content_mask else None,
        style_masks=([image_io.open_image(path) for path in FLAGS.style_masks]
                     if FLAGS.style_masks else None))
    return images


def _decode_styles() -> list:
    """--style's images, decoded (RGB PIL images): a bad one fails before TensorFlow."""
    from tfstyle import image_io

    styles = [image_io.open_image(path) for path in common.style_paths()]
    if not styles:
        raise ConfigError("--style names no image")
    return styles


def _load_inputs(options, images):
    """The job's ``inputs.Inputs``, checked against the options (counts of styles,
    weights, scales and masks, and the masks' shapes): before the model is built."""
    from tfstyle.local.inputs import load_inputs

    return load_inputs(options=options, **images)


def run_local(output, options, inputs):
    """Builds the model, runs the optimisation with progress, writes the image.

    ``inputs``: the job's decoded and checked images (``_load_inputs``)."""
    import tensorflow as tf

    from tfstyle import image_io

    stylizer = common.stylizer()
    writer = tf.summary.create_file_writer(FLAGS.logdir) if FLAGS.logdir else None
    callback_every = common.callback_every(options)
    checkpoint_path = pathlib.Path(FLAGS.checkpoint) if FLAGS.checkpoint else \
        checkpoint.default_path(output)
    resume = checkpoint.load_checkpoint(checkpoint_path) if FLAGS.resume else None
    plan = options.stages()
    logging.info("stylizing %s with %s: %s px, %s %s steps%s", FLAGS.content, FLAGS.style,
                 " -> ".join(str(size) for size, _ in plan),
                 "+".join(str(n) for _, n in plan), options.optimizer,
                 f", resuming at step {resume['step']}" if resume else "")
    stop = common.StopOnSignal()
    try:
        with stop:
            result = stylizer.stylize(options=options,
                                      callback=common.progress_callback(output, writer),
                                      callback_every=callback_every, should_stop=stop,
                                      resume=resume, inputs=inputs)
    except NumericalError as e:
        image_io.save_image(e.image, output)
        raise NumericalError(f"{e} (wrote the last finite image, step {e.step}, to "
                             f"{output})") from e
    except Interrupted as e:
        image_io.save_image(e.image, output)
        checkpoint.save_checkpoint(checkpoint_path, **e.checkpoint)
        print(f"tfstyle: interrupted by {stop.signal_name} at step {e.step}/"
              f"{sum(n for _, n in plan)}: "
              f"wrote the image so far to {output} and a checkpoint to {checkpoint_path}; "
              f"to continue, run the same command with --resume", file=sys.stderr)
        sys.exit(128 + stop.signal_number)
    finally:
        if writer is not None:
            writer.flush()
    image_io.save_image(result.image, output)
    if resume is not None or checkpoint_path.exists():
        checkpoint_path.unlink(missing_ok=True)  # consumed: the job is done
    logging.info("wrote %s (seed %d; pass --seed=%d to repeat this run)", output, result.seed,
                 result.seed)


def main(argv):
    if len(argv) > 1:
        common.fail("tfstyle", f"unexpected arguments {' '.join(argv[1:])}: all options "
                               "are --flags")
    try:
        jobs = styles = None
        video = video_cli.plan() if video_cli.is_video() else None
        if not FLAGS.server:  # a remote run does its own path checks (folder mode)
            jobs = None if video else photos_cli.many_photos()
            if video:
                styles = _decode_styles()
            elif jobs is None:
                output = _check_paths()
                images = _decode_inputs()
            else:
                styles = _decode_styles()
        _choose_allocator()  # before options_from_flags, whose checks run TensorFlow ops
        options = options_from_flags()
        if video:  # here, or with --server the frames' optimisation there
            video_cli.run_video(video, options, styles)
        elif FLAGS.server:
            remote.run_remote(options)
        elif jobs is not None:
            photos_cli.run_many(jobs, options, styles)
        else:
            run_local(output, options, _load_inputs(options, images))
    except TfstyleError as e:
        common.fail("tfstyle", str(e))


def _choose_allocator():
    """Keeps TensorFlow's tensors in malloc where the run's memory budget (--memory_limit,
    or by default 0.7 of the free RAM) can be kept only by tiling
    (``memory.bound_needs_malloc``); BFC's pool, which ``import tfstyle`` asked for,
    everywhere else. A user's TF_CPU_ALLOCATOR_USE_BFC wins. Flags that do not parse are
    left for ``options_from_flags`` to report."""
    from tfstyle import allocator
    from tfstyle.core.features import feature_layers, resolve_layers
    from tfstyle.core.optimizers import LBFGS
    from tfstyle.local import memory

    if FLAGS.server or not 0 < FLAGS.size <= 65536:
        return
    try:
        budget = memory.run_budget(FLAGS.memory_limit)
        content = resolve_layers(FLAGS.content_layers, FLAGS.backbone)
        layers = feature_layers(content, FLAGS.style_layers, FLAGS.backbone)
    except (TfstyleError, ValueError):
        return
    history = LBFGS().history if FLAGS.optimizer == "lbfgs" else 0
    if (budget > 0 and
            memory.bound_needs_malloc(budget, FLAGS.size, layers, FLAGS.backbone,
                                      "float32",  # the larger estimate where auto picks bf16
                                      history, content) and allocator.keep_malloc()):
        logging.info("a %d px run keeps its memory budget (%.1f GiB) only by tiling: "
                     "TensorFlow's tensors come from malloc, which keeps the bound "
                     "(TF_CPU_ALLOCATOR_USE_BFC=1 overrides: faster, not bounded)",
                     FLAGS.size, budget / 2**30)


def run():
    """Console-script entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
