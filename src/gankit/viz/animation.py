"""Animations: GIF / MP4 writers and a timelapse of training snapshots."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..errors import GankitError
from gankit.files import atomic_target

GIF_MAX_FPS = 50  # a GIF's frame delay counts 1/100 s and players raise anything under 2 to 10


def _check_frames(frames: list[np.ndarray]) -> list[np.ndarray]:
    if not frames:
        raise GankitError("no frames to animate")
    out = [np.asarray(f) for f in frames]
    shape = out[0].shape
    for f in out:
        if f.dtype != np.uint8 or f.ndim != 3 or f.shape[2] != 3:
            raise ValueError(f"frames must be H x W x 3 uint8, got {f.dtype} {f.shape}")
        if f.shape != shape:
            raise ValueError(f"all frames must have the same size: {f.shape} != {shape}")
    return out


def _write_gif(frames: list[np.ndarray], path: Path, fps: int, loop: bool, hold_last: int) -> None:
    from PIL import Image

    # GIF delays are in 1/100 s; browsers slow delays under 20 ms down to 100 ms.
    delay = max(1000 // GIF_MAX_FPS, round(100.0 / fps) * 10)
    durations = [delay] * len(frames)
    durations[-1] += delay * hold_last
    images = [Image.fromarray(f) for f in frames]
    extra = {"loop": 0} if loop else {}  # no NETSCAPE block -> plays once
    images[0].save(
        path, format="GIF", save_all=True, append_images=images[1:], duration=durations, **extra
    )


def _write_mp4(frames: list[np.ndarray], path: Path, fps: int) -> None:
    try:
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as e:  # ImportError, or RuntimeError when no binary is found
        raise GankitError(f"cannot write MP4 (ffmpeg unavailable: {e}); use a .gif path instead") from None
    h, w = frames[0].shape[:2]
    ph, pw = h % 2, w % 2  # yuv420p needs even width and height: pad with edge pixels
    writer = imageio_ffmpeg.write_frames(
        str(path), (w + pw, h + ph), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
        macro_block_size=1, output_params=["-f", "mp4"],
    )
    writer.send(None)  # start the generator
    try:
        for f in frames:
            if ph or pw:
                f = np.pad(f, ((0, ph), (0, pw), (0, 0)), mode="edge")
            writer.send(np.ascontiguousarray(f))
    finally:
        writer.close()


def save_animation(
    frames: list[np.ndarray],
    path: str | os.PathLike,
    fps: int = 10,
    loop: bool = True,
    hold_last: int = 0,
) -> Path:
    """Write ``H x W x 3`` uint8 frames (all one size) as a ``.gif`` or ``.mp4``, atomically.

    * GIF (Pillow): loops forever when ``loop`` (else plays once). Pillow merges identical
      consecutive frames into one longer frame, so ``hold_last`` lengthens the last
      frame's delay by ``hold_last`` frame periods instead of storing copies.
    * MP4 (imageio-ffmpeg, H.264, yuv420p): odd sizes are padded to even; the last frame
      is repeated ``hold_last`` times. MP4 has no loop flag (players decide).

    Any other extension, or MP4 without a working ffmpeg, is a :class:`GankitError`.
    Returns the path written.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in (".gif", ".mp4"):
        raise GankitError(f"unsupported animation format {path.suffix or '(none)'!r} for {path}: use .gif or .mp4")
    if fps <= 0:
        raise GankitError(f"fps must be positive, got {fps}")
    frames = _check_frames(frames)
    hold_last = max(0, int(hold_last))
    with atomic_target(path) as tmp:
        if ext == ".gif":
            _write_gif(frames, tmp, fps, loop, hold_last)
        else:
            _write_mp4(frames + [frames[-1]] * hold_last, tmp, fps)
    return path


def _step_label(path: Path) -> str | None:
    """``"step 500"`` from a name like ``step_000500.png`` (the last number in the stem)."""
    numbers = re.findall(r"\d+", path.stem)
    return f"step {int(numbers[-1])}" if numbers else None


def _draw_label(img, text: str):
    """Return ``img`` with a thin black strip on top holding ``text`` (samples stay visible)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()  # bundled with Pillow, never downloaded
    bar = font.getbbox("step 0123456789")[3] + 4
    out = Image.new("RGB", (img.width, img.height + bar), (0, 0, 0))
    out.paste(img, (0, bar))
    ImageDraw.Draw(out).text((3, 2), text, fill=(255, 255, 255), font=font)
    return out


def timelapse(
    snapshot_paths: list[str | os.PathLike],
    out_path: str | os.PathLike,
    fps: int = 8,
    *,
    label: bool = True,
    hold_last: int | None = None,
) -> Path:
    """Turn PNG snapshots (already sorted by the caller) into one animation.

    Snapshots of a different size are resized to the first one. With ``label`` each frame
    gets a small "step N" strip on top, the number taken from the last digits in its file
    name (frames without a number get an empty strip, so all frames keep one size). The last frame
    is held for ``hold_last`` extra frames (default: one second). The format follows
    ``out_path``'s extension (see :func:`save_animation`).
    """
    from PIL import Image

    paths = [Path(p) for p in snapshot_paths]
    if not paths:
        raise GankitError("no snapshots to make a timelapse from")
    frames, size = [], None
    for p in paths:
        try:
            img = Image.open(p).convert("RGB")
        except (OSError, ValueError) as e:
            raise GankitError(f"cannot read snapshot {p}: {e}") from None
        size = size or img.size
        if img.size != size:
            img = img.resize(size, Image.Resampling.BILINEAR)
        frames.append(np.asarray(_draw_label(img, _step_label(p) or "") if label else img))
    return save_animation(frames, out_path, fps=fps, hold_last=fps if hold_last is None else hold_last)
