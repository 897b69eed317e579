"""Matplotlib pictures: 2-D sample scatters and training-curve plots.

Only the object-oriented API with the Agg canvas is used (``Figure`` + ``FigureCanvasAgg``),
never ``pyplot``: nothing needs a display, no global figure state leaks between calls, and
it is safe to call from a background thread. matplotlib is imported lazily so that
``import gankit.viz`` stays cheap for the CLI.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from ..errors import GankitError
from .grid import make_grid, save_image

_GRID_KEYS = {"padding", "pad_value"}
_SCATTER_KEYS = {"reference", "centers", "lim", "size_px", "title"}


def _new_figure(width_in: float, height_in: float, dpi: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _figure_to_array(fig, size: tuple[int, int] | None = None) -> np.ndarray:
    """Render ``fig`` and return its pixels as ``H x W x 3`` uint8 (optionally resized)."""
    fig.canvas.draw()
    arr = np.asarray(fig.canvas.buffer_rgba())[:, :, :3].copy()
    if size is not None and arr.shape[:2] != (size[1], size[0]):  # float dpi rounding
        from PIL import Image

        arr = np.asarray(Image.fromarray(arr).resize(size, Image.Resampling.BILINEAR))
    return arr


def _as_numpy_points(x: Tensor | np.ndarray | None) -> np.ndarray | None:
    """``(N, 2)`` float64 array of the finite rows of ``x`` (``None`` stays ``None``)."""
    if x is None:
        return None
    if isinstance(x, Tensor):
        x = x.detach().float().cpu().numpy()
    x = np.asarray(x, dtype=np.float64).reshape(-1, 2)
    return x[np.isfinite(x).all(axis=1)]


def scatter_image(
    points: Tensor,
    *,
    reference: Tensor | np.ndarray | None = None,
    centers: np.ndarray | None = None,
    lim: float | None = None,
    size_px: int = 400,
    title: str | None = None,
) -> np.ndarray:
    """Scatter plot of generated 2-D points as a ``size_px x size_px x 3`` uint8 array.

    Args:
        points: generated samples, ``(N, 2)``; non-finite rows (a diverged run) are
            dropped and counted in the title.
        reference: real samples drawn underneath in light grey.
        centers: mode centres ``(M, 2)`` drawn as red crosses.
        lim: the axes show ``[-lim, lim]`` in both directions. Default: 1.1 x the largest
            coordinate of ``reference``/``centers`` when given (constant across a
            timelapse, so frames line up), else of ``points``.
        size_px: output width and height in pixels (fonts scale with it).
        title: text above the plot (e.g. ``"step 1200"``).
    """
    pts = _as_numpy_points(points)
    n_bad = int(np.prod(points.shape)) // 2 - len(pts)
    ref, cen = _as_numpy_points(reference), _as_numpy_points(centers)
    if lim is None:
        basis = [a for a in (ref, cen) if a is not None and a.size] or [pts]
        biggest = max((float(np.abs(a).max()) for a in basis if a.size), default=0.0)
        lim = 1.1 * biggest if biggest > 0 else 1.0

    fig = _new_figure(4.0, 4.0, dpi=size_px / 4.0)
    # Fixed margins (not tight_layout) so every frame of a timelapse has the same axes box.
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.08, top=0.92)
    ax = fig.add_subplot()
    if ref is not None and ref.size:
        ax.scatter(ref[:, 0], ref[:, 1], s=4, c="#cccccc", linewidths=0, rasterized=True)
    if pts.size:
        ax.scatter(pts[:, 0], pts[:, 1], s=5, c="tab:blue", alpha=0.6, linewidths=0, rasterized=True)
    if cen is not None and cen.size:
        ax.scatter(cen[:, 0], cen[:, 1], s=40, c="tab:red", marker="x", linewidths=1.5)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.tick_params(labelsize=7)
    text = " ".join(t for t in (title, f"({n_bad} non-finite)" if n_bad else None) if t)
    if text:
        ax.set_title(text, fontsize=9)
    return _figure_to_array(fig, (size_px, size_px))


def render_samples(samples: Tensor, nrow: int | None = None, **kw: Any) -> np.ndarray:
    """Picture of a batch of samples, ``H x W x 3`` uint8: what the engine snapshots.

    4-D (or 3-D single) images go to :func:`make_grid`, ``(N, 2)`` points to
    :func:`scatter_image`. Keyword options meant for the other kind are ignored, so a
    caller may always pass e.g. ``reference=``/``centers=``/``title=`` and ``padding=``.
    """
    unknown = set(kw) - _GRID_KEYS - _SCATTER_KEYS
    if unknown:
        raise TypeError(f"render_samples got unexpected options: {sorted(unknown)}")
    if samples.ndim in (3, 4):
        return make_grid(samples, nrow=nrow, **{k: v for k, v in kw.items() if k in _GRID_KEYS})
    if samples.ndim == 2 and samples.shape[1] == 2:
        return scatter_image(samples, **{k: v for k, v in kw.items() if k in _SCATTER_KEYS})
    raise ValueError(f"cannot render samples of shape {tuple(samples.shape)}: expected (N, C, H, W) or (N, 2)")


# ---------------------------------------------------------------------------- metrics


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read a ``metrics.jsonl`` file into a list of dicts.

    A truncated or garbled *last* line (a run killed mid-write) is skipped silently; a bad
    line anywhere else, or a missing file, is a :class:`GankitError`.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        raise GankitError(f"no such metrics file: {path}") from None
    lines = [(i, ln) for i, ln in enumerate(text.splitlines(), 1) if ln.strip()]
    records = []
    for j, (lineno, line) in enumerate(lines):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if j == len(lines) - 1:
                break
            raise GankitError(f"{path}:{lineno}: not a JSON line") from None
        if isinstance(rec, dict):
            records.append(rec)
    return records


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _series(records: list[dict], key: str, x: str) -> tuple[np.ndarray, np.ndarray]:
    """(xs, ys) of the records where ``key`` is a finite number, sorted by x.

    Records without a numeric ``x`` use their index in the list instead.
    """
    pairs = [
        (r[x] if _is_number(r.get(x)) else i, r[key])
        for i, r in enumerate(records)
        if _is_number(r.get(key))
    ]
    pairs.sort(key=lambda p: p[0])
    arr = np.asarray(pairs, dtype=np.float64).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


def ema(values: np.ndarray, span: float | None = None) -> np.ndarray:
    """Bias-corrected exponential moving average (like TensorBoard's smoothing).

    ``span`` defaults to 1/20 of the series length (at least 1, at most 200), which tames
    noisy per-step GAN losses while still following trends.
    """
    n = len(values)
    if span is None:
        span = min(200.0, max(1.0, n / 20))
    beta = 1.0 - 2.0 / (span + 1.0)
    out, acc = np.empty(n), 0.0
    for i, v in enumerate(values):
        acc = beta * acc + (1 - beta) * v
        out[i] = acc / (1 - beta ** (i + 1)) if beta > 0 else v
    return out


def _keys(records: list[dict], prefix: str) -> list[str]:
    found = {k for r in records for k, v in r.items() if k.startswith(prefix) and _is_number(v)}
    return sorted(found)


def _metric_groups(records: list[dict], keys: list[str], x: str) -> list[list[str]]:
    """Metrics on scales of their own get a panel each (FID in the tens, KID near 0); those
    that live in [0, 1] (precision, recall) share one."""
    unit = [k for k in keys if all(0.0 <= v <= 1.0 for v in _series(records, k, x)[1])]
    return ([unit] if unit else []) + [[k] for k in keys if k not in unit]


def metrics_figure(records: list[dict], *, x: str = "step", title: str | None = None):
    """Build (but do not save) the training-curve figure; ``None`` if nothing to plot.

    Top axis: every numeric ``loss/*`` key, raw values faint and an EMA bold in the same
    colour. Below (only if present): ``metric/*`` keys (e.g. ``metric/fid``) as markers+lines,
    sharing the x axis, one panel per scale (see :func:`_metric_groups`). Returns a ``Figure``.
    """
    losses, metrics = _keys(records, "loss/"), _keys(records, "metric/")
    panels = [("loss", losses)] if losses else []
    panels += [("metric", keys) for keys in _metric_groups(records, metrics, x)]
    if not panels:
        return None
    ratios = [3 if name == "loss" else 2 for name, _ in panels]
    fig = _new_figure(8.0, 3.0 + 2.0 * len(panels), dpi=100)
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False, height_ratios=ratios)[:, 0]
    for ax, (name, keys) in zip(axes, panels):
        for i, key in enumerate(keys):
            color = f"C{i % 10}"
            xs, ys = _series(records, key, x)
            if name == "loss":
                ax.plot(xs, ys, color=color, alpha=0.25, linewidth=0.8)
                ax.plot(xs, ema(ys), color=color, linewidth=2.0, label=key)
            else:
                ax.plot(xs, ys, "o-", color=color, markersize=4, label=key)
        ax.set_ylabel(name if name == "loss" or len(keys) > 1 else keys[0].split("/", 1)[1])
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    axes[-1].set_xlabel(x)
    if title:
        axes[0].set_title(title)
    fig.tight_layout()
    return fig


def plot_metrics(
    records: list[dict], out_path: str | os.PathLike, *, x: str = "step", title: str | None = None
) -> Path | None:
    """Write a PNG of training curves (see :func:`metrics_figure`) atomically.

    Returns the path written, or ``None`` (writing nothing) when the records hold no
    ``loss/*`` or ``metric/*`` numbers.
    """
    fig = metrics_figure(records, x=x, title=title)
    if fig is None:
        return None
    save_image(_figure_to_array(fig), out_path)
    return Path(out_path)
