"""Image files in and out: files, bytes, PIL images and arrays <-> RGB pixels.

Everything here is Pillow + numpy; tensorflow is deliberately not imported so that
the CLI can validate its inputs and outputs before paying for the TF import.

Conventions used throughout:

* A decoded image is a ``PIL.Image.Image`` in mode ``"RGB"`` (8 bits per channel).
* A pixel array is ``np.float32`` of shape ``(H, W, 3)`` with values in ``[0, 255]``
  (the range the VGG preprocessing expects), or ``np.uint8`` ``(H, W, 3)`` for saving.
* Transparency is always composited over white, so fully transparent pixels never
  leak whatever colour happened to be stored under them.

Every failure a user can cause is raised as :class:`~tfstyle.errors.ImageError`
(unreadable input, unwritable output) or :class:`~tfstyle.errors.ConfigError`
(a value tfstyle cannot use), with a one-line message naming the file.

At about 600 lines this is at the project's limit on purpose: reading and writing share
the conventions above and their helpers (``to_uint8``, the error wording), and most of
the length is the hostile-input handling each direction needs.
"""

import io
import math
import numbers
import os
import pathlib
import re
import stat
import warnings

import numpy as np
from PIL import Image, ImageOps

from tfstyle import atomic
from tfstyle.errors import ConfigError, ImageError, one_line

__all__ = [
    "MAX_PIXELS",
    "SUPPORTED_OUTPUT",
    "open_image",
    "resize_longest",
    "longest_side_size",
    "scale_image",
    "to_array",
    "to_uint8",
    "check_output_path",
    "save_image",
    "load_image",
]

# Read at call time, so callers (and tests) may change it. 64 Mi pixels is 8192x8192,
# far beyond any size style transfer is run at, yet it stops a tiny crafted file from
# making us allocate gigabytes.
MAX_PIXELS = 64 * 2**20

# Lossless PNG first: it is what a user should pick when in doubt.
SUPPORTED_OUTPUT = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}

_WHITE = 255.0


# --------------------------------------------------------------------------- opening


def open_image(source):
    """Open ``source`` and return it fully decoded as an RGB ``PIL.Image.Image``.

    Args:
        source: one of

            * a path (``str`` or ``os.PathLike``) to an image file;
            * ``bytes`` / ``bytearray`` holding an encoded image file;
            * a ``PIL.Image.Image`` in any mode (never modified; a new image is returned);
            * a numpy array of shape ``(H, W)`` or ``(H, W, 1)`` (gray), ``(H, W, 3)``
              (RGB) or ``(H, W, 4)`` (RGBA), with dtype ``uint8`` (0..255), ``uint16``
              (0..65535) or floating point (values in ``[0, 1]``, the tf.image /
              matplotlib convention).

    Returns:
        A ``PIL.Image.Image`` of mode ``"RGB"`` (uint8 per channel, 0..255), with its
        pixels loaded, EXIF orientation applied, the first frame of an animation, and
        any transparency composited over white.

    Raises:
        ImageError: the file is missing, a folder, unreadable, empty, not an image,
            truncated or corrupt, has zero size, or declares more than ``MAX_PIXELS``
            pixels (checked before decoding, to refuse decompression bombs).
        ConfigError: an array of unsupported shape or dtype, a float array outside
            ``[0, 1]``, or a ``source`` of unsupported type.
    """
    if isinstance(source, np.ndarray):
        return _from_array(source)
    if isinstance(source, Image.Image):
        return _decode(source, "<PIL image>")
    if isinstance(source, (bytes, bytearray)):
        name = "<%d bytes of image data>" % len(source)
        if not source:
            raise ImageError(
                "cannot read %s: the data is empty; pass the contents of an image file"
                % name
            )
        return _decode_stream(io.BytesIO(bytes(source)), name)
    if isinstance(source, (str, os.PathLike)):
        return _open_path(source)
    raise ConfigError(
        "cannot open an image from a %s; pass a file path, bytes, a PIL image or a "
        "numpy array" % type(source).__name__
    )


def _unreadable(name, exc):
    if isinstance(exc, PermissionError):
        return ImageError(
            "cannot read image file '%s': permission denied; fix its permissions or "
            "copy it somewhere readable" % name
        )
    return ImageError("cannot read image file '%s': %s" % (name, one_line(exc.strerror or exc)))


def _open_path(source):
    name = os.fspath(source)
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    # os.stat first: it tells the common mistakes apart so the message can say which.
    try:
        st = os.stat(name)
    except FileNotFoundError as exc:
        raise ImageError(
            "image file '%s' does not exist; check the path" % name
        ) from exc
    except OSError as exc:
        raise _unreadable(name, exc) from exc
    if stat.S_ISDIR(st.st_mode):
        raise ImageError(
            "'%s' is a folder, not an image file; give the path of an image file" % name
        )
    if stat.S_ISREG(st.st_mode) and st.st_size == 0:
        raise ImageError(
            "image file '%s' is empty (0 bytes); re-download or re-export it" % name
        )
    try:
        fp = open(name, "rb")
    except OSError as exc:
        raise _unreadable(name, exc) from exc
    # The file stays open only until the pixels are decoded; the returned image is
    # independent of it.
    with fp:
        return _decode_stream(fp, "'%s'" % name)


def _bomb_error(name, declared):
    size = "%d pixels" % declared if declared else "too many pixels"
    return ImageError(
        "refusing to decode %s: it declares %s, more than the limit of MAX_PIXELS=%d "
        "(possible decompression bomb); shrink the image first or raise "
        "tfstyle.image_io.MAX_PIXELS" % (name, size, MAX_PIXELS)
    )


def _decode_stream(fp, name):
    """Image.open + the declared-size check, then the shared decode path."""
    try:
        # Pillow's own bomb warning becomes an error: it only fires above Pillow's limit,
        # and an image that large is refused here anyway.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(fp)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        match = re.search(r"\((\d+) pixels\)", str(exc))
        raise _bomb_error(name, int(match.group(1)) if match else None) from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageError(
            "%s is not an image file Pillow can read (or it is badly corrupted); "
            "convert it to PNG or JPEG" % name
        ) from exc
    except Exception as exc:  # any failure while parsing a header means a bad file
        raise ImageError(
            "cannot read %s: %s; the file is corrupt, re-download or re-export it"
            % (name, one_line(exc))
        ) from exc
    return _decode(img, name)


def _decode(img, name):
    """Size checks, full decode, EXIF orientation and RGB conversion of an opened image."""
    width, height = img.size
    # Checked against the header's declared size, before any pixel memory is allocated.
    if width * height > MAX_PIXELS:
        raise _bomb_error(name, width * height)
    if width <= 0 or height <= 0:
        raise ImageError(
            "%s has zero size (%dx%d); it contains no pixels" % (name, width, height)
        )
    try:
        # Opening only reads the header; load() decodes everything, so that truncated
        # or corrupt data fails here with a clear message rather than later.
        img.load()
        rgb = _to_rgb(_apply_exif_orientation(img))
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb_error(name, width * height) from exc
    except MemoryError as exc:
        raise ImageError(
            "not enough memory to decode %s (%dx%d)" % (name, width, height)
        ) from exc
    except Exception as exc:  # decoders raise OSError, SyntaxError, ValueError, EOFError...
        raise ImageError(
            "cannot decode %s: %s; the file is truncated or corrupt, re-download or "
            "re-export it" % (name, one_line(exc) or type(exc).__name__)
        ) from exc
    # Never hand back the caller's own PIL image: they may mutate either one.
    if rgb is img:
        rgb = rgb.copy()
    return rgb


def _apply_exif_orientation(img):
    try:
        return ImageOps.exif_transpose(img)
    except Exception:
        # A damaged EXIF block only loses the orientation hint; the pixels are fine.
        return img


def _to_rgb(img):
    """Convert any Pillow mode to 8-bit RGB; alpha is composited over white."""
    mode = img.mode
    if mode == "RGB" and "transparency" not in img.info:
        return img
    if mode.startswith("I;16") or mode in ("I", "F"):
        gray = _wide_gray_to_uint8(np.asarray(img), mode)
        return Image.fromarray(np.repeat(gray[:, :, None], 3, axis=2))
    if img.has_transparency_data:
        # convert("RGBA") knows about palette and tRNS transparency and premultiplied
        # modes (RGBa, La); compositing ourselves keeps it exact and mode-independent.
        rgba = np.asarray(img.convert("RGBA"))
        return Image.fromarray(_composite_over_white(rgba))
    try:
        return img.convert("RGB")
    except ValueError as exc:
        raise ImageError(
            "images in colour mode %s cannot be converted to RGB; convert it to an "
            "RGB PNG or JPEG first" % mode
        ) from exc


def _wide_gray_to_uint8(values, mode):
    """Scale 16-bit, 32-bit integer or float grayscale to uint8 by the data's type range.

    A plain Pillow convert clips these at 255, turning almost every pixel white.
    """
    if mode == "F":
        values = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=255.0, neginf=0.0)
        # Float images come both as 0..1 (scientific/HDR tools) and as 0..255 (Pillow's
        # own "F" convention, e.g. convert("F") of an "L" image); tell them apart.
        if values.size and values.min() >= 0.0 and values.max() <= 1.0:
            values = values * 255.0
        return np.clip(np.rint(values), 0, 255).astype(np.uint8)
    if mode.startswith("I;16"):
        values = values.astype(np.float64)
        if values.size and values.min() < 0:  # signed 16-bit variants
            values = values + 32768.0
        return np.rint(values / 257.0).astype(np.uint8)
    # Mode "I" is 32-bit signed, but in practice holds 16-bit data (TIFF, old PNG
    # decoders) — so use the smallest type range that contains the values.
    values = values.astype(np.float64)
    lo = values.min() if values.size else 0.0
    hi = values.max() if values.size else 0.0
    if lo >= 0 and hi <= 65535:
        scaled = values / 257.0
    elif lo >= 0:
        scaled = values * (255.0 / (2.0**31 - 1))
    else:
        scaled = (values + 2.0**31) * (255.0 / (2.0**32 - 1))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _composite_over_white(rgba):
    """uint8 (H, W, 4) -> uint8 (H, W, 3), alpha-blended over white."""
    rgb = rgba[..., :3].astype(np.float32)
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    out = rgb * alpha + _WHITE * (1.0 - alpha)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _from_array(arr):
    """numpy array (see open_image) -> RGB PIL image."""
    shape = arr.shape
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ConfigError(
            "cannot use an array of shape %s as an image; expected (H, W), (H, W, 1), "
            "(H, W, 3) or (H, W, 4)" % (shape,)
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ConfigError("cannot use an array of shape %s as an image: it has no pixels"
                          % (shape,))
    if arr.dtype == np.uint8:
        pixels = arr
    elif arr.dtype == np.uint16:
        pixels = np.rint(arr.astype(np.float32) / 257.0).astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.floating):
        lo = float(np.min(arr))
        hi = float(np.max(arr))
        # min/max propagate NaN, so the comparison below rejects NaN too.
        if not (lo >= 0.0 and hi <= 1.0):
            raise ConfigError(
                "float image arrays must hold values in [0, 1] (the tf.image/matplotlib "
                "convention); got values in [%g, %g]; divide by 255 if they are 0..255"
                % (lo, hi)
            )
        pixels = np.rint(arr.astype(np.float32) * 255.0).astype(np.uint8)
    else:
        raise ConfigError(
            "cannot use an array of dtype %s as an image; expected uint8 (0..255), "
            "uint16 (0..65535) or float (0..1)" % arr.dtype
        )
    channels = pixels.shape[2]
    if channels == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    elif channels == 4:
        pixels = _composite_over_white(pixels)
    return Image.fromarray(np.ascontiguousarray(pixels))


# --------------------------------------------------------------------------- resizing


def _round_half_up(numerator, denominator):
    """round(numerator / denominator) for non-negative ints, halves up, exactly."""
    return (2 * numerator + denominator) // (2 * denominator)


def _require_image(image, func):
    if not isinstance(image, Image.Image):
        raise TypeError("%s() expects a PIL.Image.Image, got %s"
                        % (func, type(image).__name__))
    return _to_rgb(image)


def _check_target_size(width, height, what):
    if width * height > MAX_PIXELS:
        raise ConfigError(
            "%s would make a %dx%d image, more than MAX_PIXELS=%d pixels; choose a "
            "smaller size" % (what, width, height, MAX_PIXELS)
        )


def check_mask_fits(mask_size, content_size, what, content_words="the content image is"):
    """Raises ConfigError unless a mask of ``mask_size`` (width, height) has the aspect
    ratio of the content's ``content_size`` within 2 %: a mask is drawn over the
    content, at any size. ``content_words``: what the content is called, with its verb."""
    (mw, mh), (width, height) = mask_size, content_size
    if abs(mw / mh - width / height) > 0.02 * width / height:
        raise ConfigError(f"{what} is {mw}x{mh} but {content_words} {width}x{height}: a "
                          f"mask is drawn over the content, so give it the content's aspect "
                          f"ratio")


def resize_longest(image, longest_side):
    """Resize so that the longer side is exactly ``longest_side`` pixels.

    Args:
        image: a ``PIL.Image.Image`` (converted to RGB first if it is in another mode).
        longest_side: positive ``int``, the target for ``max(width, height)``.
            Upscaling is allowed.

    Returns:
        A new RGB ``PIL.Image.Image``; the aspect ratio is kept, the shorter side is
        rounded (halves up) and at least 1. Resampling is LANCZOS.

    Raises:
        ConfigError: ``longest_side`` is not a positive int, or the result would exceed
            ``MAX_PIXELS``.
    """
    _check_longest_side(longest_side)
    rgb = _require_image(image, "resize_longest")
    return rgb.resize(longest_side_size(rgb.size, longest_side), Image.Resampling.LANCZOS)


def _check_longest_side(longest_side):
    if (isinstance(longest_side, bool) or not isinstance(longest_side, numbers.Integral)
            or longest_side <= 0):
        raise ConfigError(
            "the longest side must be a positive whole number of pixels, got %r"
            % (longest_side,)
        )


def longest_side_size(size, longest_side):
    """The (width, height) that :func:`resize_longest` gives an image of ``size``
    (width, height), without resampling anything.

    Raises:
        ConfigError: as :func:`resize_longest`.
    """
    _check_longest_side(longest_side)
    longest_side = int(longest_side)
    width, height = size
    if width >= height:
        new_size = (longest_side, max(1, _round_half_up(height * longest_side, width)))
    else:
        new_size = (max(1, _round_half_up(width * longest_side, height)), longest_side)
    _check_target_size(new_size[0], new_size[1], "resizing to longest side %d"
                       % longest_side)
    return new_size


def scale_image(image, factor):
    """Resize by ``factor`` (``0.5`` halves both sides, ``2`` doubles them).

    Args:
        image: a ``PIL.Image.Image`` (converted to RGB first if it is in another mode).
        factor: a finite real number > 0.

    Returns:
        A new RGB ``PIL.Image.Image`` of size ``(round(W*factor), round(H*factor))``,
        each side rounded (halves up) and at least 1. Resampling is LANCZOS.

    Raises:
        ConfigError: ``factor`` is not a finite number > 0, or the result would exceed
            ``MAX_PIXELS``.
    """
    if (isinstance(factor, bool) or not isinstance(factor, numbers.Real)
            or not math.isfinite(factor) or factor <= 0):
        raise ConfigError("the scale factor must be a number > 0, got %r" % (factor,))
    rgb = _require_image(image, "scale_image")
    width, height = rgb.size
    new_size = (max(1, int(math.floor(width * factor + 0.5))),
                max(1, int(math.floor(height * factor + 0.5))))
    _check_target_size(new_size[0], new_size[1], "scaling by %g" % factor)
    return rgb.resize(new_size, Image.Resampling.LANCZOS)


# --------------------------------------------------------------------------- arrays


def to_array(image):
    """PIL image -> ``np.float32`` array of shape ``(H, W, 3)``, values in ``[0, 255]``.

    Images not in mode RGB are converted first (alpha composited over white). The
    array is a fresh, writable copy.
    """
    rgb = _require_image(image, "to_array")
    return np.array(rgb, dtype=np.float32)


def to_uint8(array):
    """Float pixels in ``[0, 255]`` -> ``np.uint8`` array of shape ``(H, W, 3)``.

    Args:
        array: array-like of shape ``(H, W, 3)`` or ``(1, H, W, 3)`` (the batch
            dimension is squeezed), any real dtype; values are rounded to the nearest
            integer and clipped to ``[0, 255]``. A uint8 array is returned unchanged
            in value.

    Raises:
        ConfigError: other shapes, non-numeric dtypes, or NaN/infinite values.
    """
    arr = np.asarray(array)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ConfigError(
            "expected pixels of shape (H, W, 3) or (1, H, W, 3), got shape %s"
            % (np.shape(array),)
        )
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer)
                                     or np.issubdtype(arr.dtype, np.floating)):
        raise ConfigError("expected numeric pixels, got dtype %s" % arr.dtype)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise ConfigError("the pixels contain NaN or infinite values; cannot "
                              "convert them to an image")
        arr = np.rint(arr)
    return np.clip(arr, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- saving


def check_output_path(path):
    """Validate an output image path before any long computation starts.

    Args:
        path: ``str`` or ``os.PathLike``; its extension (any case) must be a key of
            ``SUPPORTED_OUTPUT``.

    Returns:
        The resolved ``pathlib.Path`` (absolute, symlinks resolved).

    Raises:
        ImageError: unsupported extension, the path is an existing folder, its parent
            folder does not exist, is not a folder, or is not writable.
    """
    path = pathlib.Path(os.fspath(path))
    supported = ", ".join(sorted(SUPPORTED_OUTPUT))
    suffix = path.suffix.lower()
    if path.is_dir():
        raise ImageError(
            "output path '%s' is a folder; give a file name inside it, e.g. '%s'"
            % (path, path / "result.png")
        )
    if suffix not in SUPPORTED_OUTPUT:
        what = "extension '%s'" % path.suffix if path.suffix else "no extension"
        raise ImageError(
            "cannot write '%s': %s is not supported; end the name with one of %s"
            % (path, what, supported)
        )
    resolved = path.resolve()
    parent = resolved.parent
    if not parent.exists():
        raise ImageError(
            "cannot write '%s': folder '%s' does not exist; create it first"
            % (path, parent)
        )
    if not parent.is_dir():
        raise ImageError(
            "cannot write '%s': '%s' is not a folder" % (path, parent)
        )
    # Writing means creating a temp file and renaming it, so the folder (not an
    # existing file) is what must be writable.
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ImageError(
            "cannot write '%s': folder '%s' is not writable; choose another output "
            "folder or fix its permissions" % (path, parent)
        )
    return resolved


def save_image(image, path, quality=95):
    """Write an image atomically; the format comes from the extension.

    Args:
        image: a ``PIL.Image.Image`` (any mode; converted to RGB), or an array accepted
            by :func:`to_uint8`: float ``(H, W, 3)`` / ``(1, H, W, 3)`` with values in
            ``[0, 255]``, or uint8.
        path: output path, checked with :func:`check_output_path` (.png, .jpg, .jpeg).
        quality: JPEG quality, int in 1..100 (ignored for PNG). At 90 and above chroma
            subsampling is turned off, so colours of fine strokes are kept.

    Returns:
        The resolved ``pathlib.Path`` written.

    The image is written to a hidden temporary file in the same folder, flushed to
    disk and renamed over ``path``; on any failure the temporary file is removed and
    an existing ``path`` keeps its old content.

    Raises:
        ImageError: the path is invalid or writing failed (disk full, permissions...).
        ConfigError: bad ``quality`` or bad pixel array.
    """
    if (isinstance(quality, bool) or not isinstance(quality, numbers.Integral)
            or not 1 <= quality <= 100):
        raise ConfigError("JPEG quality must be a whole number from 1 to 100, got %r"
                          % (quality,))
    target = check_output_path(path)
    fmt = SUPPORTED_OUTPUT[target.suffix.lower()]
    if isinstance(image, Image.Image):
        rgb = _to_rgb(image)
    else:
        rgb = Image.fromarray(to_uint8(image))
    params = {}
    if fmt == "JPEG":
        params["quality"] = int(quality)
        if quality >= 90:
            params["subsampling"] = 0

    try:
        with atomic.replacing(target, file_mode=atomic.new_file_mode(target)) as tmp:
            rgb.save(tmp, format=fmt, **params)
    except OSError as exc:
        raise ImageError(
            "could not write '%s': %s; check free disk space and permissions"
            % (target, one_line(exc))
        ) from exc
    atomic.fsync_dir(target.parent)
    return target


# --------------------------------------------------------------------------- convenience


def load_image(source, longest_side=None):
    """Open ``source`` (see :func:`open_image`), optionally resize, return pixels.

    Args:
        source: anything :func:`open_image` accepts.
        longest_side: if not None, resize with :func:`resize_longest` first.

    Returns:
        ``np.float32`` array of shape ``(H, W, 3)`` with values in ``[0, 255]``.
    """
    image = open_image(source)
    if longest_side is not None:
        image = resize_longest(image, longest_side)
    return to_array(image)
