"""tfstyle.video.reader: clips in (files, folders, globs, spans), mp4 out (atomic, audio),
and the one-line errors of hostile input. Clips are made in tmp with PyAV."""

import gc
import os
import subprocess
import sys

import numpy as np
import pytest

av = pytest.importorskip("av")
pytest.importorskip("cv2")

import video_clips
from conftest import sample_image
from PIL import Image
from tfstyle.errors import ConfigError, ImageError
from tfstyle.video.reader import open_clip
from tfstyle.video.writer import ClipWriter

SIZE = (96, 64)


@pytest.fixture(scope="module")
def frames():
    photo = video_clips.photo(sample_image("tubingen.jpg"), 320)
    return video_clips.pan_clip(photo, 10, 2, SIZE)


def numbered(count, size=(32, 32)):
    """Flat frames whose grey level says their index (4 i), robust to compression."""
    return [np.full((size[1], size[0], 3), 4 * i, np.uint8) for i in range(count)]


def indices(clip):
    """The source index of each frame read, from its grey level."""
    return [int(round(frame.mean() / 4)) for _, frame in clip]


def read(clip):
    return [frame for _, frame in clip]


def one_line_error(kind, call, *words):
    with pytest.raises(kind) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message
    return info.value


def mean_abs(a, b):
    return np.abs(a.astype(np.float64) - b).mean()


# --------------------------------------------------------------------------- reading


def test_mp4_round_trip_keeps_count_fps_size_and_pixels(tmp_path, frames):
    path = tmp_path / "pan.mp4"
    with ClipWriter(path, 25, SIZE) as writer:
        for frame in frames:
            writer.write(frame)
    clip = open_clip(path)
    assert (clip.count, clip.fps, clip.size, clip.audio) == (10, 25.0, SIZE, False)
    got = read(clip)
    assert len(got) == 10 and got[0].dtype == np.uint8 and got[0].shape == (64, 96, 3)
    assert max(mean_abs(g, f) for g, f in zip(got, frames)) < 6
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("suffix, count, tolerance", [
    (".avi", 10, 8), (".mov", 10, 8), (".gif", 10, 20), (".webm", None, 8)])
def test_other_formats_read(tmp_path, frames, suffix, count, tolerance):
    clip = open_clip(video_clips.write_clip(frames, tmp_path / ("pan" + suffix)))
    assert (clip.count, clip.fps, clip.size) == (count, 25.0, SIZE)
    got = read(clip)
    assert len(got) == 10
    assert max(mean_abs(g, f) for g, f in zip(got, frames)) < tolerance


def test_folder_and_glob_in_natural_order(tmp_path):
    folder = tmp_path / "shots"
    folder.mkdir()
    for i, frame in enumerate(numbered(12)):  # frame_2 must come before frame_10
        Image.fromarray(frame).save(folder / ("frame_%d.png" % i))
    (folder / "notes.txt").write_text("not a frame")
    Image.fromarray(numbered(1)[0]).save(folder / ".hidden.png")
    clip = open_clip(folder)
    assert (clip.count, clip.fps, clip.size, clip.audio) == (12, 25.0, (32, 32), False)
    assert indices(clip) == list(range(12))
    glob = open_clip(str(folder / "frame_1*.png"), fps=12.5)
    assert glob.fps == 12.5 and indices(glob) == [1, 10, 11]


@pytest.mark.parametrize("kind", ["mp4", "folder"])
def test_spans_pick_the_frames_whose_middle_is_inside(tmp_path, kind):
    path = video_clips.write_clip(numbered(20), tmp_path / ("n.mp4" if kind == "mp4" else "n"))
    # 25 fps: frame i is shown from i/25 s; its middle (i + 0.5)/25 decides.
    for span, expected in [({"start": 0.2}, list(range(5, 20))),
                           ({"start": 0.2, "duration": 0.2}, [5, 6, 7, 8, 9]),
                           ({"start": 0.21, "max_frames": 3}, [5, 6, 7]),
                           ({"duration": 0.5, "max_frames": 30}, list(range(12)))]:
        clip = open_clip(path, **span)
        assert indices(clip) == expected, span
        assert clip.count == len(expected)
        assert [i for i, _ in clip] == list(range(len(expected)))


def test_a_late_start_seeks_and_still_gets_every_frame(tmp_path):
    path = video_clips.write_clip(numbered(60, (16, 16)), tmp_path / "long.mp4", fps=10)
    assert indices(open_clip(path, start=4.0, max_frames=5)) == [40, 41, 42, 43, 44]


def test_rotation_flag_is_applied(tmp_path):
    image = np.zeros((32, 64, 3), np.uint8)
    image[:8, :8] = 255
    path = tmp_path / "phone.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        stream.set_display_rotation(90)  # counterclockwise
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    clip = open_clip(path)
    assert clip.size == (32, 64)
    assert mean_abs(read(clip)[0], np.rot90(image)) < 8


# --------------------------------------------------------------------------- writing


def audio_of(path):
    """(codec, seconds, rms) of a file's first audio stream."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        samples = np.concatenate([f.to_ndarray().astype(np.float64).ravel()
                                  for f in container.decode(stream)])
        if stream.codec_context.name == "pcm_s16le":
            samples /= 32768
        return (stream.codec_context.name, float(stream.duration * stream.time_base),
                float(np.sqrt(np.mean(samples ** 2))))


@pytest.mark.parametrize("source, codec", [("tone.mp4", "aac"), ("tone.mov", "pcm_s16le")])
def test_audio_is_copied_for_the_span(tmp_path, frames, source, codec):
    src = video_clips.write_clip(frames * 5, tmp_path / source, audio=codec)  # 2 s
    clip = open_clip(src, start=0.4, duration=1.0)
    assert clip.audio and clip.count == 25
    out = tmp_path / "styled.mp4"
    with ClipWriter(out, clip.fps, clip.size, audio_from=clip) as writer:
        for _, frame in clip:
            writer.write(frame)
    name, seconds, rms = audio_of(out)
    assert name == "aac" and abs(seconds - 1.0) < 0.05
    assert 0.15 < rms < 0.25  # the 0.3-amplitude tone, not silence
    assert open_clip(out).count == 25


def test_odd_sizes_are_padded_by_repeating_the_edge(tmp_path, frames):
    path = tmp_path / "odd.mp4"
    with ClipWriter(path, 30000 / 1001, (95, 63)) as writer:
        writer.write(frames[0][:63, :95])
    clip = open_clip(path)
    assert clip.size == (96, 64) and abs(clip.fps - 29.97) < 0.01
    got = read(clip)[0]
    assert mean_abs(got[:63, :95], frames[0][:63, :95]) < 8
    assert mean_abs(got[:, 95], got[:, 94]) < 6


def test_float_frames_are_rounded(tmp_path):
    path = tmp_path / "float.mp4"
    with ClipWriter(path, 25, (32, 32)) as writer:
        writer.write(np.full((32, 32, 3), 99.6, np.float32))
    assert abs(read(open_clip(path))[0].mean() - 100) < 2


def test_an_exception_mid_write_leaves_no_file(tmp_path, frames):
    path = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError):
        with ClipWriter(path, 25, SIZE) as writer:
            writer.write(frames[0])
            writer.write(frames[1])
            raise RuntimeError("the optimiser failed")
    assert os.listdir(tmp_path) == []


def test_an_old_file_survives_a_failed_write_and_a_dropped_writer(tmp_path, frames):
    path = tmp_path / "out.mp4"
    path.write_bytes(b"old")
    writer = ClipWriter(path, 25, SIZE)
    writer.write(frames[0])
    with pytest.raises(ConfigError):
        writer.write(frames[0][:10])
    del writer
    gc.collect()
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.mp4"]


# --------------------------------------------------------------------------- hostile input


def test_not_a_video(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("hello, this is text\n" * 20)
    one_line_error(ImageError, lambda: open_clip(path), "not a video", "re-export it to mp4")


def test_missing_and_empty_files(tmp_path):
    one_line_error(ImageError, lambda: open_clip(tmp_path / "nope.mp4"), "does not exist")
    (tmp_path / "empty.mp4").write_bytes(b"")
    one_line_error(ImageError, lambda: open_clip(tmp_path / "empty.mp4"), "empty (0 bytes)")


def test_audio_only_file(tmp_path):
    path = tmp_path / "tone.m4a"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=48000, layout="mono")
        for frame in video_clips.sine_frames("aac", 0.3):
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    one_line_error(ImageError, lambda: open_clip(path), "holds only audio")


def test_truncated_file_raises_after_its_good_frames(tmp_path):
    photo = video_clips.photo(sample_image("tubingen.jpg"), 320)
    pan = video_clips.pan_clip(photo, 30, 2, SIZE)
    full = video_clips.write_clip(pan, tmp_path / "full.mp4", faststart=True)
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:len(data) * 85 // 100])
    clip = open_clip(cut)
    assert clip.count == 30  # the header still says so
    got = []
    with pytest.raises(ImageError) as info:
        for _, frame in clip:
            got.append(frame)
    assert "truncated" in str(info.value) and "\n" not in str(info.value)
    assert info.value.frames_read == len(got) and 5 < len(got) < 30
    reference = read(open_clip(full))
    assert all(np.array_equal(g, r) for g, r in zip(got, reference))


def test_mp4_cut_before_its_index(tmp_path, frames):
    full = video_clips.write_clip(frames, tmp_path / "full.mp4")  # index at the end
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[:2000])
    one_line_error(ImageError, lambda: open_clip(cut), "not a video FFmpeg can read",
                   "cut short")


def test_empty_span(tmp_path, frames):
    path = video_clips.write_clip(frames, tmp_path / "pan.mp4")
    one_line_error(ImageError, lambda: open_clip(path, start=5), "holds no frames",
                   "0.4 s long")


def test_frames_over_max_side(tmp_path, frames):
    path = video_clips.write_clip(frames, tmp_path / "pan.mp4")
    one_line_error(ImageError, lambda: open_clip(path, max_side=64), "96x64",
                   "max_side=64")
    folder = video_clips.write_clip(frames[:2], tmp_path / "shots")
    one_line_error(ImageError, lambda: open_clip(folder, max_side=64), "max_side=64")


def test_folders_and_globs_without_images(tmp_path):
    (tmp_path / "readme.txt").write_text("no frames here")
    one_line_error(ImageError, lambda: open_clip(tmp_path), "has no image files")
    one_line_error(ImageError, lambda: open_clip(str(tmp_path / "*.png")),
                   "no image files match")


def test_a_folder_frame_of_another_size(tmp_path):
    folder = tmp_path / "shots"
    folder.mkdir()
    for i, frame in enumerate(numbered(3) + numbered(1, (16, 16))):
        Image.fromarray(frame).save(folder / ("f%d.png" % i))
    clip = open_clip(folder)
    with pytest.raises(ImageError) as info:
        read(clip)
    assert "one size" in str(info.value) and info.value.frames_read == 3


@pytest.mark.parametrize("options, words", [
    ({"start": -1}, "start must be"), ({"duration": 0}, "duration must be"),
    ({"max_frames": 0}, "max_frames must be"), ({"fps": 30}, "leave fps unset"),
    ({"max_side": 0}, "max_side must be")])
def test_bad_read_options(tmp_path, frames, options, words):
    path = video_clips.write_clip(frames[:2], tmp_path / "pan.mp4")
    one_line_error(ConfigError, lambda: open_clip(path, **options), words)


def test_bad_writer_use(tmp_path, frames):
    one_line_error(ConfigError, lambda: ClipWriter(tmp_path / "out.avi", 25, SIZE), ".mp4")
    one_line_error(ImageError, lambda: ClipWriter(tmp_path / "no" / "out.mp4", 25, SIZE),
                   "does not exist")
    one_line_error(ConfigError, lambda: ClipWriter(tmp_path / "o.mp4", 25, SIZE, codec="x"),
                   "not a video encoder")
    one_line_error(ConfigError, lambda: ClipWriter(tmp_path / "o.mp4", 0, SIZE), "fps")
    folder = video_clips.write_clip(frames[:1], tmp_path / "shots")
    one_line_error(ImageError, lambda: ClipWriter(tmp_path / "o.mp4", 25, SIZE,
                                                  audio_from=open_clip(folder)), "no audio")
    one_line_error(ImageError, lambda: ClipWriter(tmp_path / "o.mp4", 25, SIZE,
                                                  audio_from=folder), "no audio")
    writer = ClipWriter(tmp_path / "o.mp4", 25, SIZE)
    one_line_error(ConfigError, lambda: writer.write(frames[0].astype(np.int32)), "uint8")
    one_line_error(ImageError, writer.close, "no frames were written")
    assert not (tmp_path / "o.mp4").exists()
    assert sorted(os.listdir(tmp_path)) == ["shots"]


def test_video_modules_do_not_import_tensorflow():
    code = ("import sys, tfstyle.video, tfstyle.video.reader, tfstyle.video.writer; "
            "sys.exit('tensorflow' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
