"""Tests for tfstyle.image_io: every fixture image is generated in tmp_path."""

import ast
import io
import os
import stat
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from tfstyle import image_io
from tfstyle.errors import ConfigError, ImageError
from tfstyle.image_io import (
    MAX_PIXELS,
    SUPPORTED_OUTPUT,
    check_output_path,
    load_image,
    open_image,
    resize_longest,
    save_image,
    scale_image,
    to_array,
    to_uint8,
)

SHARED_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"


def px(img, xy):
    return tuple(int(v) for v in img.getpixel(xy))


def close(actual, expected, tol):
    return all(abs(a - e) <= tol for a, e in zip(actual, expected))


def png_bytes(img):
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def patched_png_size(width, height):
    """A valid 1x1 PNG whose IHDR is rewritten to declare width x height."""
    data = bytearray(png_bytes(Image.new("RGB", (1, 1), (1, 2, 3))))
    # Layout: 8-byte signature, then IHDR: length(4) type(4) data(13) crc(4).
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def raises_image_error(source, *fragments):
    with pytest.raises(ImageError) as info:
        open_image(source)
    assert type(info.value) is ImageError
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return info.value


def current_umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# ------------------------------------------------------------------ module hygiene


def test_module_does_not_import_tensorflow():
    tree = ast.parse(Path(image_io.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert "tensorflow" not in imported
    assert imported >= {"numpy", "PIL"}


def test_constants():
    assert MAX_PIXELS == 67108864
    assert SUPPORTED_OUTPUT == {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


# ------------------------------------------------------------------ modes -> RGB


def test_16bit_png_scaled_not_clipped(tmp_path):
    values = np.array([[65535, 32896], [0, 257]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")  # the fixture really is 16-bit
    img = open_image(path)
    assert img.mode == "RGB"
    assert px(img, (0, 0)) == (255, 255, 255)
    assert close(px(img, (1, 0)), (128, 128, 128), 1)
    assert px(img, (0, 1)) == (0, 0, 0)
    assert px(img, (1, 1)) == (1, 1, 1)


def test_16bit_big_endian_and_32bit_modes():
    big = Image.frombytes("I;16B", (2, 1), np.array([65535, 32896], ">u2").tobytes())
    assert big.mode == "I;16B"
    out = open_image(big)
    assert px(out, (0, 0)) == (255,) * 3 and close(px(out, (1, 0)), (128,) * 3, 1)

    i32 = Image.fromarray(np.array([[65535, 32896, 0]], dtype=np.int32))
    assert i32.mode == "I"
    out = open_image(i32)
    assert [px(out, (x, 0))[0] for x in range(3)] == [255, 128, 0]

    wide = Image.fromarray(np.array([[2**31 - 1, 0]], dtype=np.int32))
    out = open_image(wide)
    assert px(out, (0, 0)) == (255,) * 3 and px(out, (1, 0)) == (0,) * 3


def test_float_mode_f():
    unit = Image.fromarray(np.array([[1.0, 0.5, 0.0]], dtype=np.float32))
    assert unit.mode == "F"
    out = open_image(unit)
    assert [px(out, (x, 0))[0] for x in range(3)] == [255, 128, 0]
    # Pillow's own convention: F holding 0..255 like L.
    out = open_image(Image.new("L", (1, 1), 200).convert("F"))
    assert px(out, (0, 0)) == (200, 200, 200)


def test_gray_modes(tmp_path):
    path = tmp_path / "gray.png"
    Image.new("L", (3, 2), 77).save(path)
    img = open_image(path)
    assert img.mode == "RGB" and img.size == (3, 2)
    assert px(img, (2, 1)) == (77, 77, 77)

    bilevel = Image.new("1", (2, 1), 0)
    bilevel.putpixel((1, 0), 1)
    out = open_image(bilevel)
    assert px(out, (0, 0)) == (0, 0, 0) and px(out, (1, 0)) == (255, 255, 255)


def test_la_alpha_composited_over_white(tmp_path):
    arr = np.array([[[0, 0], [0, 255], [0, 128]]], dtype=np.uint8)
    path = tmp_path / "la.png"
    Image.fromarray(arr, "LA").save(path)
    img = open_image(path)
    assert px(img, (0, 0)) == (255, 255, 255)
    assert px(img, (1, 0)) == (0, 0, 0)
    assert close(px(img, (2, 0)), (127, 127, 127), 1)


def test_palette_with_transparent_entry_becomes_white(tmp_path):
    pal = Image.new("P", (2, 1), 0)
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    pal.putpixel((1, 0), 1)
    path = tmp_path / "pal.png"
    pal.save(path, transparency=1)  # blue entry is transparent
    img = open_image(path)
    assert px(img, (0, 0)) == (255, 0, 0)
    assert px(img, (1, 0)) == (255, 255, 255)

    gif = tmp_path / "pal.gif"
    pal.save(gif, transparency=1)
    img = open_image(gif)
    assert px(img, (0, 0)) == (255, 0, 0) and px(img, (1, 0)) == (255, 255, 255)


def test_palette_alpha_mode_pa():
    pa = Image.frombytes("PA", (2, 1), bytes([0, 255, 1, 0]))
    pa.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    out = open_image(pa)
    assert px(out, (0, 0)) == (255, 0, 0)
    assert px(out, (1, 0)) == (255, 255, 255)


def test_rgba_half_transparent_red_over_white(tmp_path):
    path = tmp_path / "rgba.png"
    img = Image.new("RGBA", (2, 2), (255, 0, 0, 128))
    img.putpixel((1, 1), (0, 200, 0, 0))  # fully transparent: colour must vanish
    img.save(path)
    out = open_image(path)
    assert close(px(out, (0, 0)), (255, 128, 128), 1)
    assert px(out, (1, 1)) == (255, 255, 255)


def test_cmyk_jpeg_roughly_right_colour(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(path, quality=95)
    assert Image.open(path).mode == "CMYK"
    out = open_image(path)
    assert close(px(out, (4, 4)), (255, 0, 0), 12)


def test_ycbcr_image():
    ycc = Image.new("YCbCr", (1, 1), (128, 128, 128))
    out = open_image(ycc)
    assert close(px(out, (0, 0)), (128, 128, 128), 2)


def test_pil_input_is_not_modified_or_returned():
    src = Image.new("RGB", (3, 3), (9, 8, 7))
    out = open_image(src)
    assert out is not src
    out.putpixel((0, 0), (0, 0, 0))
    assert px(src, (0, 0)) == (9, 8, 7)


# ------------------------------------------------------------------ EXIF, animation


def test_exif_orientation_6_rotates_clockwise(tmp_path):
    img = Image.new("RGB", (40, 20), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 6, 6))  # marker in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    img.save(path, exif=exif, quality=95)
    out = open_image(path)
    assert out.size == (20, 40)
    # Rotating 90 degrees clockwise moves the top-left corner to the top-right.
    assert close(px(out, (17, 2)), (255, 0, 0), 40)
    assert close(px(out, (2, 2)), (0, 0, 255), 40)
    assert close(px(out, (17, 37)), (0, 0, 255), 40)


def test_animated_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (4, 4), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(path).n_frames == 3
    out = open_image(path)
    assert out.size == (4, 4)
    assert close(px(out, (2, 2)), (255, 0, 0), 3)


def test_animated_png_first_frame(tmp_path):
    frames = [Image.new("RGB", (4, 4), c) for c in [(10, 20, 30), (200, 100, 50)]]
    path = tmp_path / "anim.png"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50)
    assert px(open_image(path), (1, 1)) == (10, 20, 30)


# ------------------------------------------------------------------ numpy and bytes


def test_uint8_array_exact():
    arr = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 7
    out = open_image(arr)
    assert out.size == (3, 2)
    np.testing.assert_array_equal(np.asarray(out), arr)


def test_uint16_array():
    arr = np.zeros((1, 2, 3), dtype=np.uint16)
    arr[0, 0] = 65535
    arr[0, 1] = (32896, 0, 257)
    out = np.asarray(open_image(arr))
    np.testing.assert_array_equal(out[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(out[0, 1], [128, 0, 1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_float_array_in_unit_range(dtype):
    arr = np.array([[[1.0, 0.5, 0.0]]], dtype=dtype)
    np.testing.assert_array_equal(np.asarray(open_image(arr))[0, 0], [255, 128, 0])


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 1)])
def test_gray_arrays(shape):
    arr = np.full(shape, 90, dtype=np.uint8)
    out = open_image(arr)
    assert out.mode == "RGB" and out.size == (3, 2)
    assert px(out, (2, 1)) == (90, 90, 90)


def test_rgba_array_composited():
    arr = np.array([[[255, 0, 0, 128], [0, 255, 0, 0], [1, 2, 3, 255]]], dtype=np.uint8)
    out = open_image(arr)
    assert close(px(out, (0, 0)), (255, 128, 128), 1)
    assert px(out, (1, 0)) == (255, 255, 255)
    assert px(out, (2, 0)) == (1, 2, 3)


@pytest.mark.parametrize("bad", [1.5, -0.1, np.nan, np.inf])
def test_float_array_out_of_range(bad):
    arr = np.zeros((2, 2, 3), dtype=np.float32)
    arr[1, 1, 1] = bad
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        open_image(arr)


@pytest.mark.parametrize(
    "shape, fragment",
    [((2, 2, 2), "(2, 2, 2)"), ((4,), "(4,)"), ((1, 2, 2, 3), "(1, 2, 2, 3)"),
     ((0, 3, 3), "(0, 3, 3)")],
)
def test_array_bad_shape(shape, fragment):
    with pytest.raises(ConfigError) as info:
        open_image(np.zeros(shape, dtype=np.uint8))
    assert fragment in str(info.value)


@pytest.mark.parametrize("dtype", [np.int64, np.int8, np.bool_, np.complex64])
def test_array_bad_dtype(dtype):
    with pytest.raises(ConfigError) as info:
        open_image(np.zeros((2, 2, 3), dtype=dtype))
    assert np.dtype(dtype).name in str(info.value)


def test_unsupported_source_type():
    with pytest.raises(ConfigError, match="list"):
        open_image([[1, 2], [3, 4]])


def test_bytes_and_bytearray_input():
    data = png_bytes(Image.new("RGB", (5, 4), (1, 2, 3)))
    for source in (data, bytearray(data)):
        out = open_image(source)
        assert out.size == (5, 4) and px(out, (4, 3)) == (1, 2, 3)


def test_bad_bytes():
    raises_image_error(b"", "empty")
    raises_image_error(b"definitely not an image", "not an image")


def test_pathlike_and_str(tmp_path):
    path = tmp_path / "a.png"
    Image.new("RGB", (2, 2), (4, 5, 6)).save(path)
    assert px(open_image(str(path)), (0, 0)) == (4, 5, 6)
    assert px(open_image(path), (0, 0)) == (4, 5, 6)


# ------------------------------------------------------------------ file errors


def test_missing_file(tmp_path):
    raises_image_error(tmp_path / "nope.jpg", "nope.jpg", "does not exist")


def test_directory(tmp_path):
    folder = tmp_path / "pics.png"
    folder.mkdir()
    raises_image_error(folder, "pics.png", "folder")


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    raises_image_error(path, "empty.png", "empty")


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "x.jpg"
    path.write_text("hello, I am not a JPEG\n")
    err = raises_image_error(path, "x.jpg", "not an image")
    assert isinstance(err.__cause__, Image.UnidentifiedImageError)


@pytest.mark.parametrize("fmt, ext", [("JPEG", "jpg"), ("PNG", "png")])
def test_truncated_file(tmp_path, fmt, ext):
    rng = np.random.default_rng(0)
    noisy = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    data = io.BytesIO()
    noisy.save(data, fmt)
    path = tmp_path / ("cut." + ext)
    path.write_bytes(data.getvalue()[: len(data.getvalue()) // 2])
    err = raises_image_error(path, "cut." + ext, "truncated or corrupt")
    assert err.__cause__ is not None


def test_permission_denied_real(tmp_path):
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        pytest.skip("root ignores file permissions")
    path = tmp_path / "secret.png"
    Image.new("RGB", (2, 2)).save(path)
    path.chmod(0)
    try:
        raises_image_error(path, "secret.png", "permission denied")
    finally:
        path.chmod(0o644)


def test_permission_denied_simulated(tmp_path, monkeypatch):
    path = tmp_path / "secret.png"
    Image.new("RGB", (2, 2)).save(path)

    def deny(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(image_io, "open", deny, raising=False)
    raises_image_error(path, "secret.png", "permission denied")


def test_decompression_bomb_far_over_pillow_limit(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(patched_png_size(50000, 50000))
    assert path.stat().st_size < 1000
    raises_image_error(path, "bomb.png", "MAX_PIXELS=67108864", "2500000000")


def test_decompression_bomb_own_check_runs_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    path.write_bytes(patched_png_size(9000, 9000))  # over MAX_PIXELS, under Pillow's
    assert 9000 * 9000 < Image.MAX_IMAGE_PIXELS

    def must_not_decode(self):
        raise AssertionError("decoded an image over the limit")

    monkeypatch.setattr(ImageFile.ImageFile, "load", must_not_decode)
    raises_image_error(path, "big.png", "MAX_PIXELS", "81000000")


def test_max_pixels_is_read_at_call_time(tmp_path, monkeypatch):
    path = tmp_path / "small.png"
    Image.new("RGB", (20, 20)).save(path)
    monkeypatch.setattr(image_io, "MAX_PIXELS", 100)
    raises_image_error(path, "small.png", "MAX_PIXELS=100", "400 pixels")


@pytest.mark.parametrize("side", [12000, 50000])
def test_pillow_bomb_guards_mapped_even_with_high_limit(tmp_path, monkeypatch, side):
    # 12000^2 triggers Pillow's warning, 50000^2 its error; both must become ImageError.
    monkeypatch.setattr(image_io, "MAX_PIXELS", 10**12)
    path = tmp_path / "bomb.png"
    path.write_bytes(patched_png_size(side, side))
    raises_image_error(path, "bomb.png", "decompression bomb")


def test_bomb_in_bytes():
    raises_image_error(patched_png_size(50000, 50000), "bytes", "MAX_PIXELS")


def test_zero_size_image_refused(tmp_path):
    path = tmp_path / "zero.png"
    path.write_bytes(patched_png_size(0, 5))
    raises_image_error(path, "zero.png")


# ------------------------------------------------------------------ resizing


@pytest.mark.parametrize(
    "size, longest, expected",
    [((400, 300), 100, (100, 75)), ((300, 400), 100, (75, 100)),
     ((10, 5), 40, (40, 20)), ((1000, 1), 10, (10, 1)), ((3, 2), 3, (3, 2)),
     ((2, 1), 5, (5, 3)), ((333, 500), 64, (43, 64))],
)
def test_resize_longest(size, longest, expected):
    out = resize_longest(Image.new("RGB", size, (5, 6, 7)), longest)
    assert out.size == expected
    assert max(out.size) == longest
    w, h = size
    assert abs(out.size[0] / out.size[1] - w / h) <= (w / h) / min(out.size) + 1e-9
    assert close(px(out, (0, 0)), (5, 6, 7), 1)


def test_resize_longest_converts_to_rgb_and_accepts_numpy_int():
    out = resize_longest(Image.new("RGBA", (8, 4), (0, 0, 0, 0)), np.int64(4))
    assert out.mode == "RGB" and out.size == (4, 2)
    assert px(out, (1, 1)) == (255, 255, 255)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "64", None])
def test_resize_longest_bad_side(bad):
    with pytest.raises(ConfigError):
        resize_longest(Image.new("RGB", (4, 4)), bad)


def test_resize_longest_refuses_huge_result(monkeypatch):
    monkeypatch.setattr(image_io, "MAX_PIXELS", 1000)
    with pytest.raises(ConfigError, match="MAX_PIXELS"):
        resize_longest(Image.new("RGB", (4, 4)), 100)


@pytest.mark.parametrize(
    "size, factor, expected",
    [((100, 50), 0.5, (50, 25)), ((3, 3), 0.5, (2, 2)), ((10, 4), 0.01, (1, 1)),
     ((7, 3), 2, (14, 6)), ((7, 3), 1.0, (7, 3))],
)
def test_scale_image(size, factor, expected):
    assert scale_image(Image.new("RGB", size), factor).size == expected


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "2", True])
def test_scale_image_bad_factor(bad):
    with pytest.raises(ConfigError):
        scale_image(Image.new("RGB", (4, 4)), bad)


# ------------------------------------------------------------------ arrays


def test_to_array():
    img = Image.new("RGB", (3, 2), (0, 128, 255))
    arr = to_array(img)
    assert arr.dtype == np.float32 and arr.shape == (2, 3, 3)
    np.testing.assert_array_equal(arr[1, 2], [0, 128, 255])
    arr[0, 0] = 1  # a writable copy, not a view of the image
    assert px(img, (0, 0)) == (0, 128, 255)


def test_to_uint8_rounds_and_clips():
    arr = np.array([[[0.4, 0.6, 127.5], [-5.0, 300.0, 254.6]]], dtype=np.float32)
    out = to_uint8(arr)
    assert out.dtype == np.uint8 and out.shape == (1, 2, 3)
    np.testing.assert_array_equal(out, [[[0, 1, 128], [0, 255, 255]]])


def test_to_uint8_squeezes_batch_and_keeps_uint8():
    arr = np.full((1, 2, 3, 3), 12.2)
    assert to_uint8(arr).shape == (2, 3, 3)
    u8 = np.full((2, 2, 3), 200, dtype=np.uint8)
    np.testing.assert_array_equal(to_uint8(u8), u8)
    np.testing.assert_array_equal(to_uint8(np.full((1, 1, 3), 999, np.int32)), [[[255] * 3]])


@pytest.mark.parametrize("shape", [(2, 4, 4, 3), (4, 4), (4, 4, 4), (0, 4, 3)])
def test_to_uint8_bad_shape(shape):
    with pytest.raises(ConfigError):
        to_uint8(np.zeros(shape, dtype=np.float32))


def test_to_uint8_non_finite():
    arr = np.zeros((2, 2, 3), dtype=np.float32)
    arr[0, 0, 0] = np.nan
    with pytest.raises(ConfigError, match="NaN"):
        to_uint8(arr)


# ------------------------------------------------------------------ output paths


@pytest.mark.parametrize("name", ["out.gif", "out.webp", "out"])
def test_check_output_path_bad_extension(tmp_path, name):
    with pytest.raises(ImageError) as info:
        check_output_path(tmp_path / name)
    message = str(info.value)
    assert name in message
    for ext in (".png", ".jpg", ".jpeg"):
        assert ext in message


def test_check_output_path_ok_case_insensitive(tmp_path):
    result = check_output_path(tmp_path / "OUT.JPEG")
    assert isinstance(result, Path) and result.is_absolute()
    assert result == (tmp_path / "OUT.JPEG").resolve()


def test_check_output_path_relative_is_resolved(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert check_output_path("r.png") == (tmp_path / "r.png").resolve()


def test_check_output_path_missing_folder(tmp_path):
    with pytest.raises(ImageError, match="does not exist; create it first") as info:
        check_output_path(tmp_path / "no_such_dir" / "out.png")
    assert "no_such_dir" in str(info.value)


def test_check_output_path_is_directory(tmp_path):
    folder = tmp_path / "result.png"
    folder.mkdir()
    with pytest.raises(ImageError, match="folder"):
        check_output_path(folder)


def test_check_output_path_read_only_folder_real(tmp_path):
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        pytest.skip("root ignores folder permissions")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(ImageError, match="not writable"):
            check_output_path(folder / "out.png")
    finally:
        folder.chmod(0o755)


def test_check_output_path_read_only_folder_simulated(tmp_path, monkeypatch):
    monkeypatch.setattr(image_io.os, "access", lambda path, mode: False)
    with pytest.raises(ImageError, match="not writable"):
        check_output_path(tmp_path / "out.png")


# ------------------------------------------------------------------ saving


def leftovers(folder, keep):
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def test_save_png_round_trips_exactly(tmp_path):
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)
    written = save_image(arr, tmp_path / "rt.png")
    assert written == (tmp_path / "rt.png").resolve()
    assert written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    np.testing.assert_array_equal(np.asarray(Image.open(written)), arr)
    np.testing.assert_array_equal(load_image(written), arr.astype(np.float32))
    assert leftovers(tmp_path, {"rt.png"}) == []


def test_save_float_batch_array_and_pil(tmp_path):
    arr = np.full((1, 2, 2, 3), 99.6, dtype=np.float32)
    save_image(arr, tmp_path / "f.png")
    assert np.asarray(Image.open(tmp_path / "f.png"))[0, 0].tolist() == [100] * 3
    save_image(Image.new("RGBA", (2, 2), (0, 0, 0, 0)), tmp_path / "p.jpg")
    assert close(px(Image.open(tmp_path / "p.jpg"), (0, 0)), (255, 255, 255), 2)


@pytest.mark.parametrize("name", ["out.jpg", "out.JPEG"])
def test_save_jpeg_by_extension(tmp_path, name):
    path = save_image(Image.new("RGB", (16, 16), (200, 30, 40)), tmp_path / name,
                      quality=90)
    data = path.read_bytes()
    assert data[:3] == b"\xff\xd8\xff"
    reopened = Image.open(path)
    assert reopened.format == "JPEG"
    assert close(px(reopened, (8, 8)), (200, 30, 40), 4)


def test_save_jpeg_quality_changes_size(tmp_path):
    rng = np.random.default_rng(2)
    arr = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    high = save_image(arr, tmp_path / "hi.jpg", quality=95).stat().st_size
    low = save_image(arr, tmp_path / "lo.jpg", quality=20).stat().st_size
    assert low < high


@pytest.mark.parametrize("bad", [0, 101, 9.5, True])
def test_save_bad_quality(tmp_path, bad):
    with pytest.raises(ConfigError):
        save_image(np.zeros((2, 2, 3), np.uint8), tmp_path / "q.jpg", quality=bad)
    assert not (tmp_path / "q.jpg").exists()


def test_save_validates_path_first(tmp_path):
    with pytest.raises(ImageError):
        save_image(np.zeros((2, 2, 3), np.uint8), tmp_path / "out.bmp")
    with pytest.raises(ImageError, match="does not exist"):
        save_image(np.zeros((2, 2, 3), np.uint8), tmp_path / "missing" / "out.png")


def test_saved_file_gets_normal_permissions(tmp_path):
    path = save_image(np.zeros((2, 2, 3), np.uint8), tmp_path / "perm.png")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~current_umask()


def test_overwrite_keeps_existing_permissions(tmp_path):
    path = tmp_path / "old.png"
    path.write_bytes(b"old")
    path.chmod(0o640)
    save_image(np.zeros((2, 2, 3), np.uint8), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("error, expected", [(OSError, ImageError),
                                             (RuntimeError, RuntimeError)])
def test_crash_mid_write_leaves_target_untouched(tmp_path, monkeypatch, error, expected):
    target = tmp_path / "keep.png"
    target.write_bytes(b"precious old content")
    calls = []

    def broken_save(self, fp, *args, **kwargs):
        calls.append(fp)
        fp.write(b"half an image")
        raise error("disk on fire")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(expected) as info:
        save_image(np.zeros((4, 4, 3), np.uint8), target)
    assert type(info.value) is expected
    assert calls, "the patched save was not used"
    if expected is ImageError:
        assert "keep.png" in str(info.value)
    assert target.read_bytes() == b"precious old content"
    assert leftovers(tmp_path, {"keep.png"}) == []


def test_crash_with_no_previous_target_creates_nothing(tmp_path, monkeypatch):
    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"junk")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(ImageError, match="No space left"):
        save_image(np.zeros((4, 4, 3), np.uint8), tmp_path / "new.jpg")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ load_image


def test_load_image(tmp_path):
    path = tmp_path / "l.png"
    Image.new("RGBA", (40, 10), (0, 0, 255, 255)).save(path)
    arr = load_image(path)
    assert arr.dtype == np.float32 and arr.shape == (10, 40, 3)
    np.testing.assert_array_equal(arr[5, 5], [0, 0, 255])
    small = load_image(path, longest_side=20)
    assert small.shape == (5, 20, 3)
    with pytest.raises(ConfigError):
        load_image(path, longest_side=0)


# ------------------------------------------------------------------ real samples


@pytest.mark.parametrize("rel", ["content/tubingen.jpg", "style/the_scream.jpg"])
def test_shared_sample_images(rel):
    path = SHARED_IMAGES / rel
    if not path.is_file():
        pytest.skip("sample image %s not present" % path)
    img = open_image(path)
    assert img.mode == "RGB" and min(img.size) > 1
    arr = load_image(path, longest_side=64)
    assert arr.dtype == np.float32 and arr.ndim == 3 and arr.shape[2] == 3
    assert max(arr.shape[:2]) == 64
    w, h = img.size
    assert arr.shape[:2] == ((64, max(1, round(w * 64 / h))) if h >= w
                             else (max(1, round(h * 64 / w)), 64))
    assert 0.0 <= arr.min() and arr.max() <= 255.0 and arr.std() > 1.0


def test_all_shared_sample_images():
    files = sorted(SHARED_IMAGES.glob("*/*.*")) if SHARED_IMAGES.is_dir() else []
    if not files:
        pytest.skip("no sample images in %s" % SHARED_IMAGES)
    for path in files:
        arr = load_image(path, longest_side=64)
        assert arr.shape[2] == 3 and max(arr.shape[:2]) == 64, path
