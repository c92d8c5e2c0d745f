"""Property-based fuzzing of the three ways in (hypothesis).

(a) ``image_io.open_image`` on random bytes and on mutated or truncated PNG, JPEG, GIF
    and BMP files: an RGB image or ``ImageError``, nothing else.
(b) ``Stylizer.stylize`` on random small images in every colour mode with random
    options: a uint8 (H, W, 3) image of the requested size or a ``TfstyleError``, and
    the error only when the input really is unusable.
(c) the exported ``serving_default`` signature, through the session-based loader TF
    Serving uses, on random bytes and random encoded images with random (often hostile)
    option values: a PNG or INVALID_ARGUMENT, and the session keeps serving.

Reproducible: derandomized, no example database. ``TFSTYLE_FUZZ_SCALE=20`` runs twenty
times the examples (minutes), for a deeper search before a release.
"""

import io
import os
import types
import warnings

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, event, find, given, settings
from hypothesis import strategies as st
from PIL import Image

from served_values import edges
from tfstyle import image_io
from tfstyle.errors import ConfigError, ImageError, TfstyleError
from tfstyle.local.stylizer import Stylizer
from tfstyle.options import INITS, RunOptions
from tfstyle.serving.served_options import NAMES, SERVED_OPTIONS

SCALE = max(1, int(os.environ.get("TFSTYLE_FUZZ_SCALE", "1")))


def fuzz_settings(examples):
    return settings(max_examples=examples * SCALE, deadline=None, derandomize=True,
                    database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


# ----------------------------------------------------------------------------- images


MODES = ("L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16")


@st.composite
def pil_images(draw, max_side=48, modes=MODES):
    """A random small PIL image: any side 1..max_side, any of ``modes``, random pixels
    (and a random palette for P)."""
    width = draw(st.integers(1, max_side))
    height = draw(st.integers(1, max_side))
    mode = draw(st.sampled_from(modes))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (height, width), dtype=np.uint16))
    bands = len(Image.new(mode, (1, 1)).getbands())
    image = Image.frombytes(mode, (width, height),
                            rng.integers(0, 256, width * height * bands, np.uint8).tobytes())
    if mode == "P":
        image.putpalette(rng.integers(0, 256, 768, np.uint8).tobytes())
    return image


def encode(image, fmt):
    buffer = io.BytesIO()
    try:
        image.save(buffer, fmt)
    except (OSError, ValueError, KeyError):  # this mode has no such file: say RGB
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, fmt)
    return buffer.getvalue()


def _seed_files():
    """Valid files to mutate: every format the export accepts, in several modes, plus
    an animation and an EXIF-rotated JPEG (the decoder's less travelled paths)."""
    rng = np.random.default_rng(0)
    base = Image.fromarray(rng.integers(0, 256, (12, 16, 3), np.uint8))
    seeds = []
    for fmt in ("PNG", "JPEG", "GIF", "BMP"):
        for mode in ("RGB", "L", "P", "RGBA", "CMYK", "I;16", "1"):
            seeds.append(encode(base.convert(mode), fmt))
    frames = io.BytesIO()
    base.save(frames, "GIF", save_all=True, append_images=[base.rotate(90)])
    seeds.append(frames.getvalue())
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = io.BytesIO()
    base.save(rotated, "JPEG", exif=exif.tobytes())
    seeds.append(rotated.getvalue())
    return seeds


SEED_FILES = _seed_files()


@st.composite
def mutated_files(draw):
    """A valid file, then truncated, bytes overwritten (often in the header, where
    sizes and chunk lengths live), bytes inserted, or several of these."""
    data = bytearray(draw(st.sampled_from(SEED_FILES)))
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["truncate", "overwrite", "header", "insert"]))
        if how == "truncate":
            data = data[:draw(st.integers(0, len(data)))]
        elif how == "insert":
            at = draw(st.integers(0, len(data)))
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif data:
            last = min(len(data), 64) if how == "header" else len(data)
            for _ in range(draw(st.integers(1, 8))):
                data[draw(st.integers(0, last - 1))] = draw(st.integers(0, 255))
    return bytes(data)


MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"GIF87a", b"BM", b"")
random_bytes = st.builds(lambda magic, rest: magic + rest, st.sampled_from(MAGIC),
                         st.binary(max_size=300))


# ----------------------------------------------------------------------------- (a) open_image


def open_or_refuse(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns about corrupt EXIF; not our concern
        try:
            image = image_io.open_image(data)
        except ImageError as e:
            assert str(e) and "\n" not in str(e), repr(str(e))
            return None
    assert isinstance(image, Image.Image) and image.mode == "RGB", image
    assert image.width >= 1 and image.height >= 1
    np.asarray(image)  # fully loaded: converting must not touch the source again
    return image


@pytest.fixture()
def small_pixel_limit(monkeypatch):
    # A mutated header can declare up to MAX_PIXELS (64 Mi) pixels, which Pillow then
    # allocates before finding the data short: 200 MB and a second per example. The
    # check itself is the same at any limit (test_image_io tests the real one).
    monkeypatch.setattr(image_io, "MAX_PIXELS", 2**20)


@fuzz_settings(1000)
@given(data=st.one_of(st.binary(max_size=300), random_bytes))
def test_open_image_random_bytes_is_rgb_or_image_error(small_pixel_limit, data):
    event("ImageError" if open_or_refuse(data) is None else "RGB image")


@fuzz_settings(1500)
@given(data=mutated_files())
def test_open_image_mutated_files_are_rgb_or_image_error(small_pixel_limit, data):
    event("ImageError" if open_or_refuse(data) is None else "RGB image")


def test_open_image_seed_files_all_open():
    # The mutations start from valid files, or they would fuzz nothing but the refusals.
    for data in SEED_FILES:
        assert open_or_refuse(data) is not None


# ----------------------------------------------------------------------------- (b) Stylizer


@pytest.fixture(scope="module")
def stylizer():
    # Two feature levels (min side 2) keep a trace to a second; the weight settings are
    # few for the same reason: each combination is traced once.
    tf.keras.utils.set_random_seed(0)
    return Stylizer("vgg16", weights=None, content_layers=["conv2_1"],
                    style_layers=["conv1_1", "conv2_1"], precision="float32")


def resized(size, longest):
    """(w, h) after image_io.resize_longest: the short side rounded half up, ≥ 1."""
    width, height = size
    if width >= height:
        return longest, max(1, (2 * height * longest + width) // (2 * width))
    return max(1, (2 * width * longest + height) // (2 * height)), longest


# (content, style, tv): the defaults, each term alone, and all 0 (refused); the
# defaults twice, as they are what users run.
WEIGHTS = [(1.0, 1e3, 100.0), (1.0, 1e3, 100.0), (0.0, 1e3, 0.0), (1.0, 0.0, 0.0),
           (0.0, 0.0, 100.0), (0.0, 0.0, 0.0)]


@fuzz_settings(120)
@given(content=pil_images(), style=pil_images(), size=st.integers(1, 48),
       steps=st.integers(0, 2), weights=st.sampled_from(WEIGHTS),
       init=st.sampled_from(INITS),
       optimizer=st.sampled_from(["lbfgs", "adam"]), seed=st.integers(0, 2**63 - 1))
def test_stylize_random_images_and_options(stylizer, content, style, size, steps, weights,
                                           init, optimizer, seed):
    content_weight, style_weight, tv_weight = weights
    out_w, out_h = resized(content.size, size)
    # The library's rule: the style's longest side is round(output's × style_scale).
    style_w, style_h = resized(style.size,
                               max(1, round(max(out_w, out_h) * RunOptions().style_scale)))
    unusable = (weights == (0.0, 0.0, 0.0) or min(out_w, out_h) < stylizer.min_side
                or min(style_w, style_h) < stylizer.min_side)
    try:
        result = stylizer.stylize(content, style, size=size, steps=steps, init=init,
                                  optimizer=optimizer, seed=seed,
                                  content_weight=content_weight, style_weight=style_weight,
                                  tv_weight=tv_weight)
    except TfstyleError as e:
        assert unusable, f"refused a usable input: {type(e).__name__}: {e}"
        assert isinstance(e, ConfigError), f"{type(e).__name__}: {e}"
        event("refused")
        return
    event("stylized")
    assert not unusable, "accepted an input it should have refused"
    image = result.image
    assert image.dtype == np.uint8 and image.shape == (out_h, out_w, 3), image.shape
    assert result.steps == steps
    if steps == 0 and init == "content":
        # The content at the output's size, resized as the library and the graph do:
        # antialiased Lanczos-3, rounded to 8 bits (none where the size is already right).
        pixels = np.asarray(image_io.open_image(content), np.float32)
        if pixels.shape[:2] != (out_h, out_w):
            pixels = tf.image.resize(pixels, [out_h, out_w], "lanczos3", antialias=True)
            pixels = np.clip(np.round(pixels), 0, 255)
        np.testing.assert_array_equal(image, pixels.astype(np.uint8))


# ----------------------------------------------------------------------------- (c) the signature


@pytest.fixture(scope="module")
def served():
    pytest.importorskip("tensorflow_serving", reason="the tiny export needs "
                                                    "tensorflow-serving-api")
    import serving_server
    session = tf.compat.v1.Session(graph=tf.Graph())
    meta = tf.compat.v1.saved_model.loader.load(
        session, ["serve"], os.path.join(serving_server.tiny_export(), "1"))
    signature = meta.signature_def["serving_default"]

    def run(**inputs):
        feed = {signature.inputs[k].name: v for k, v in inputs.items()}
        return session.run({k: v.name for k, v in signature.outputs.items()}, feed)

    run.max_side, run.max_steps = serving_server.MAX_SIDE, serving_server.MAX_STEPS
    run.min_side = serving_server.tiny_stylizer().min_side
    yield run
    session.close()


@st.composite
def encoded_images(draw):
    image = draw(pil_images(modes=MODES + ("1",)))
    data = encode(image, draw(st.sampled_from(["PNG", "JPEG", "GIF", "BMP"])))
    if draw(st.booleans()):
        return data
    return data[:draw(st.integers(0, len(data)))]


images_or_bytes = st.one_of(encoded_images(), encoded_images(), random_bytes)

# Usable values, and hostile ones, for every row of the served-options table; each
# request takes at most two options from the hostile side, so that the image checks after
# the option checks are reached too. Strings in ASCII only: other bytes hit a known bug,
# shown by test_hostile_inputs.py
# [test_signature_bad_init_cut_inside_a_character_is_invalid_argument].
ASCII = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60)


def _scalars(row, values):
    """``values`` (a strategy of Python values) as the session is fed ``row``'s."""
    if row.dtype == "string":
        return values.map(str.encode)
    return values.map(np.dtype(row.dtype).type)


def _in_dtype(row, values):
    if row.dtype.startswith("int"):
        info = np.iinfo(row.dtype)
        return [v for v in values if info.min <= v <= info.max]
    return values


def usable_values(row):
    """What ``row`` accepts, from its dtype and bounds: half the time its default (first:
    hypothesis starts from, and shrinks towards, the first branch), else a bound or a
    choice, or any value between the bounds; an open-ended float up to 16 times its
    default, where the loss stays finite. Mostly the default, so that a request with
    sixteen options still makes a picture often (a zero weight at a bound, say, with
    the other weights at theirs, is a refusal)."""
    others = st.sampled_from(edges(row)[0])
    if not row.allowed:
        lo, hi = row.bounds()
        if row.dtype == "float32":
            top = hi if hi is not None else float(np.float32(16 * max(row.default, lo, 1.0)))
            between = st.floats(lo, top, exclude_min=True, exclude_max=hi is not None,
                                width=32)
        else:
            between = st.integers(lo, hi)
        others = st.one_of(others, between)
    # Not one_of(just(default), others): it would flatten others' branches beside it.
    return _scalars(row, st.booleans().flatmap(
        lambda other: others if other else st.just(row.default)))


def hostile_values(row, refused=()):
    """Anything ``row``'s dtype holds (any float32, NaN and the infinities among them;
    any integer of its width; any ASCII string), or a value just past a bound of the
    row (``served_values.edges``) or of ``refused``, which the whole dtype all but never
    hits."""
    if row.dtype == "string":
        anything = ASCII
    elif row.dtype == "float32":
        anything = st.floats(width=32)
    else:
        info = np.iinfo(row.dtype)
        anything = st.integers(int(info.min), int(info.max))
    past = _in_dtype(row, [*edges(row)[1], *refused])
    return _scalars(row, st.one_of(anything, st.sampled_from(past)))


def option_strategies(served):
    """(usable, hostile): a strategy per served option, by name, for the export
    ``served`` (its ``min_side``, ``max_side`` and ``max_steps``)."""
    # Where the export's limits narrow the table's: its steps and sizes (cheap ones,
    # too), and the style scales that keep the style image between its min side and
    # 2 × max_side (tfstyle.serving.request_images).
    usable = {
        "steps": st.integers(0, served.max_steps).map(np.int32),
        "size": st.one_of(st.just(0), st.integers(served.min_side, served.max_side))
                  .map(np.int32),
        "style_scale": st.one_of(st.just(1.0), st.floats(0.5, 2.0, width=32))
                         .map(np.float32),
    }
    refused = {"steps": [served.max_steps + 1],
               "size": [served.min_side - 1, served.max_side + 1]}
    assert set(usable) | set(refused) <= set(NAMES), "options the table does not have"
    return ({row.name: usable.get(row.name, usable_values(row)) for row in SERVED_OPTIONS},
            {row.name: hostile_values(row, refused.get(row.name, ()))
             for row in SERVED_OPTIONS})


@st.composite
def option_values(draw, usable, hostile):
    """(every served option's value, the names drawn from the hostile side)."""
    bad = draw(st.sets(st.sampled_from(sorted(usable)), max_size=2))
    return {name: draw((hostile if name in bad else usable)[name]) for name in usable}, bad


# The tiny export's limits (tests/serving_server.py), for the tests of the strategies
# themselves, which need no server.
TINY_LIMITS = types.SimpleNamespace(min_side=2, max_side=32, max_steps=3)


def _python(row, value):
    """A drawn value as the client takes it: an int, a float or a str."""
    return value.decode() if row.dtype == "string" else value.item()


def test_the_fuzzer_draws_every_option_of_the_table():
    # Derived from the table, so this fails only where a strategy is set by hand (an
    # override of an option the table no longer has fails in option_strategies).
    usable, hostile = option_strategies(TINY_LIMITS)
    assert list(usable) == list(hostile) == list(NAMES)

    @fuzz_settings(20)
    @given(drawn=option_values(usable, hostile))
    def request(drawn):
        options, bad = drawn
        assert list(options) == list(NAMES) and bad <= set(NAMES)

    request()


@fuzz_settings(100)
@given(data=st.data())
def test_usable_values_are_what_the_table_accepts(data):
    usable, hostile = option_strategies(TINY_LIMITS)
    for row in SERVED_OPTIONS:
        wire = bytes if row.dtype == "string" else np.dtype(row.dtype).type
        value = data.draw(usable[row.name], label=row.name)
        assert type(value) is wire, (row.name, value)
        row.wire_value(_python(row, value))  # a ConfigError if the table refuses it
        assert type(data.draw(hostile[row.name], label=row.name)) is wire


@pytest.mark.parametrize("row", SERVED_OPTIONS, ids=[row.name for row in SERVED_OPTIONS])
def test_each_options_strategies_reach_beyond_its_default(row):
    """Each usable strategy reaches values other than the default, and each hostile
    one values the table refuses: the fuzzer tries more than the defaults."""
    usable, hostile = option_strategies(TINY_LIMITS)
    quick = settings(max_examples=200, database=None, derandomize=True)

    def refused(value):
        try:
            row.wire_value(_python(row, value))
        except ConfigError:
            return True
        return False

    find(usable[row.name], lambda v: _python(row, v) != row.default, settings=quick)
    find(hostile[row.name], refused, settings=quick)


def test_signature_random_requests_are_png_or_invalid_argument(served):
    outcomes = {"png": 0, "invalid": 0}
    usable, hostile = option_strategies(served)
    # The options drawn from the hostile side, and the starts that made a picture.
    drawn_hostile, painted_from = set(), set()

    @fuzz_settings(400)
    @given(content=images_or_bytes, style=images_or_bytes,
           drawn=option_values(usable, hostile))
    def request(content, style, drawn):
        options, bad = drawn
        drawn_hostile.update(bad)
        try:
            out = served(content=content, style=style, **options)
        except tf.errors.InvalidArgumentError as e:
            assert e.message.strip(), "INVALID_ARGUMENT without a message"
            outcomes["invalid"] += 1
            event("INVALID_ARGUMENT: " + " ".join(e.message.split())[:40])
            return
        png = out["image_bytes"]
        assert png.startswith(b"\x89PNG\r\n\x1a\n"), png[:16]
        image = np.asarray(Image.open(io.BytesIO(png)))
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert max(image.shape[:2]) <= served.max_side
        if options["size"] > 0:
            assert max(image.shape[:2]) == options["size"], image.shape
        assert np.isfinite(out["loss"])
        outcomes["png"] += 1
        painted_from.add(options["init"].decode())
        event("PNG")

    request()
    # Both outcomes were reached, or the fuzzing only ever exercised one side.
    assert outcomes["png"] >= 10 and outcomes["invalid"] >= 10, outcomes
    # Every served option was sent hostile (which of them the graph refused by name
    # depends on the draw: another option's or the images' refusal can come first;
    # test_served_options refuses each row's edges one by one), and the default start,
    # the one most requests take, made pictures.
    assert drawn_hostile == set(NAMES), sorted(set(NAMES) - drawn_hostile)
    assert RunOptions().init in painted_from, painted_from
    data = encode(Image.fromarray(np.full((20, 30, 3), 90, np.uint8)), "PNG")
    out = served(content=data, style=data, steps=np.int32(1), size=np.int32(16),
                 content_weight=np.float32(1), style_weight=np.float32(1e3),
                 tv_weight=np.float32(100), style_scale=np.float32(1), seed=np.int64(1),
                 init=b"content", preserve_colors=b"histogram", style_loss=b"mean_cov",
                 stage_size=np.int32(8), stage_factor=np.float32(2))
    assert np.asarray(Image.open(io.BytesIO(out["image_bytes"]))).shape == (11, 16, 3)
