"""Tests for gankit.viz: grids, scatters, animations, metric plots."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.errors import GankitError
from gankit.viz import (
    make_grid,
    metrics_figure,
    plot_metrics,
    read_jsonl,
    render_samples,
    save_animation,
    save_image,
    scatter_image,
    timelapse,
    to_uint8,
)


def _gif_info(path):
    """(frame count, total duration in ms, loop value or None) of a GIF read with PIL."""
    with Image.open(path) as im:
        loop = im.info.get("loop")
        n, total = 0, 0
        for i in range(im.n_frames):
            im.seek(i)
            n += 1
            total += im.info["duration"]
    return n, total, loop


def _frames(n, h=12, w=16):
    # Distinct frames: a moving bright column.
    out = []
    for i in range(n):
        f = np.zeros((h, w, 3), np.uint8)
        f[:, i % w] = (255, 128, 0)
        out.append(f)
    return out


# ---------------------------------------------------------------- to_uint8 / make_grid


def test_to_uint8_endpoints_midpoint_and_clamp():
    x = torch.tensor([-1.0, 0.0, 1.0, -3.0, 7.0, 0.5])
    assert to_uint8(x).tolist() == [0, 128, 255, 0, 255, 191]  # 0 -> 128 (127.5 rounds up)
    assert to_uint8(x).dtype == torch.uint8


def test_make_grid_shape_channels_and_pixel_position():
    imgs = -torch.ones(10, 1, 8, 8)  # black
    imgs[5, 0, 3, 4] = 1.0  # one white pixel in image 5 -> row 1, col 1 (nrow=4)
    grid = make_grid(imgs, nrow=4, padding=2)
    # cols = 4, rows = ceil(10/4) = 3 -> (3*(8+2)+2, 4*(8+2)+2, 3)
    assert grid.shape == (32, 42, 3) and grid.dtype == np.uint8
    y, x = 2 + 1 * 10 + 3, 2 + 1 * 10 + 4
    assert grid[y, x].tolist() == [255, 255, 255]
    assert grid[y, x + 1].tolist() == [0, 0, 0]
    assert (grid[0] == 255).all()  # default padding is white (pad_value=1.0)
    assert (grid[22:30, 22:30] == 255).all()  # image 10's empty cell (row 2, col 2) is padding
    assert (make_grid(imgs, nrow=4, pad_value=-1.0)[0] == 0).all()


def test_make_grid_default_nrow_and_rgb():
    grid = make_grid(torch.zeros(5, 3, 4, 6), padding=0)
    assert grid.shape == (2 * 4, 3 * 6, 3)  # nrow = ceil(sqrt(5)) = 3
    assert (grid[:, :6] == 128).all()


# ---------------------------------------------------------------- render / scatter


def test_render_samples_dispatches_on_dimension():
    img = render_samples(torch.rand(4, 3, 8, 8) * 2 - 1, nrow=2, reference=torch.zeros(3, 2))
    assert img.shape == (2 * 10 + 2, 2 * 10 + 2, 3)
    pts = render_samples(torch.randn(100, 2), size_px=160, padding=3, title="step 1")
    assert pts.shape == (160, 160, 3) and pts.dtype == np.uint8
    with pytest.raises(ValueError):
        render_samples(torch.randn(10, 5))


@pytest.mark.parametrize("size", [123, 400])
def test_scatter_image_size_and_content(size):
    centers = np.array([[2.0, 0.0], [-2.0, 0.0]])
    pts = torch.randn(200, 2) * 0.1 + torch.tensor([2.0, 0.0])
    pts[0] = float("nan")  # a diverged sample must not break the plot
    img = scatter_image(pts, reference=torch.randn(300, 2), centers=centers, lim=3.0, size_px=size, title="t")
    assert img.shape == (size, size, 3) and img.dtype == np.uint8
    assert img.std() > 5  # something was drawn


def test_save_image_atomic_png(tmp_path):
    arr = make_grid(torch.zeros(2, 1, 4, 4))
    out = tmp_path / "a" / "b" / "grid.png"
    save_image(arr, out)
    assert np.array_equal(np.asarray(Image.open(out)), arr)
    assert [p.name for p in out.parent.iterdir()] == ["grid.png"]  # no temp files left


# ---------------------------------------------------------------- animations


def test_save_animation_gif_loops_with_hold_last(tmp_path):
    frames = _frames(5)
    path = save_animation(frames, tmp_path / "anim.gif", fps=10, hold_last=3)
    n, total, loop = _gif_info(path)
    assert n == len(frames)  # Pillow stores the held frame once, with a longer delay...
    assert total == (len(frames) + 3) * 100  # ...so it shows for hold_last extra periods
    assert loop == 0  # 0 = loop forever
    with Image.open(path) as im:
        im.seek(2)
        assert np.abs(np.asarray(im.convert("RGB")).astype(int) - frames[2]).max() <= 8


def test_save_animation_gif_no_loop(tmp_path):
    path = save_animation(_frames(3), tmp_path / "once.gif", fps=5, loop=False)
    n, total, loop = _gif_info(path)
    assert (n, total, loop) == (3, 600, None)


def _ffmpeg_ok():
    try:
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
        return True
    except Exception:
        return False


@pytest.mark.skipif(not _ffmpeg_ok(), reason="imageio-ffmpeg has no usable ffmpeg binary here")
def test_save_animation_mp4_frame_count_and_odd_size(tmp_path):
    import imageio_ffmpeg

    path = save_animation(_frames(6, h=13, w=17), tmp_path / "anim.mp4", fps=10, hold_last=2)
    nframes, _secs = imageio_ffmpeg.count_frames_and_secs(str(path))
    assert nframes == 6 + 2
    # Decode everything to raw RGB: 8 frames of the size padded to even (18 x 14).
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    raw = subprocess.run(cmd, capture_output=True, check=True).stdout
    assert len(raw) == 8 * 18 * 14 * 3


def test_save_animation_bad_extension(tmp_path):
    with pytest.raises(GankitError, match=r"\.gif or \.mp4"):
        save_animation(_frames(2), tmp_path / "anim.avi")
    assert not list(tmp_path.iterdir())


def test_timelapse_from_pngs(tmp_path):
    paths = []
    for i, f in enumerate(_frames(4, h=40, w=60)):
        paths.append(tmp_path / f"step_{i * 100:06d}.png")
        save_image(f, paths[-1])
    out = timelapse(paths, tmp_path / "tl.gif", fps=10, hold_last=0)
    n, total, _ = _gif_info(out)
    assert (n, total) == (4, 400)
    with Image.open(out) as im:
        assert im.size[0] == 60 and im.size[1] > 40  # "step N" strip added on top
    with pytest.raises(GankitError):
        timelapse([], tmp_path / "none.gif")


# ---------------------------------------------------------------- metrics


def _records(n=50, with_metrics=False):
    recs = []
    for s in range(n):
        r = {"step": s * 10, "loss/d": 1.0 + 0.1 * np.sin(s), "loss/g": 0.7 + 0.01 * s, "img_per_s": 50.0}
        if with_metrics and s % 10 == 0:
            r["metric/fid"] = 100.0 - s
        recs.append(r)
    return recs


def test_plot_metrics_losses_only(tmp_path):
    out = plot_metrics(_records(), tmp_path / "plots" / "metrics.png", title="run")
    assert out is not None and out.stat().st_size > 0
    with Image.open(out) as im:
        assert im.size[0] > 100
    assert len(metrics_figure(_records()).axes) == 1


def test_plot_metrics_second_axis_for_metric_keys(tmp_path):
    recs = _records(with_metrics=True)
    assert len(metrics_figure(recs).axes) == 2
    assert plot_metrics(recs, tmp_path / "m.png").stat().st_size > 0


def test_plot_metrics_nothing_to_plot(tmp_path):
    assert plot_metrics([], tmp_path / "x.png") is None
    assert plot_metrics([{"step": 1, "img_per_s": 3.0}], tmp_path / "y.png") is None
    assert not list(tmp_path.iterdir())


def test_read_jsonl_truncated_last_line(tmp_path):
    p = tmp_path / "metrics.jsonl"
    lines = [json.dumps({"step": i, "loss/d": 0.5 * i}) for i in range(3)]
    p.write_text("\n".join(lines) + "\n" + '{"step": 3, "loss/')
    recs = read_jsonl(p)
    assert [r["step"] for r in recs] == [0, 1, 2]
    p.write_text("garbage\n" + lines[0] + "\n")
    with pytest.raises(GankitError):
        read_jsonl(p)
    with pytest.raises(GankitError):
        read_jsonl(tmp_path / "missing.jsonl")
