"""Visualisation helpers: image grids, 2-D scatters, animations and training curves.

The training engine calls :func:`render_samples` + :func:`save_image` for snapshots; the
CLI uses :func:`timelapse`, :func:`save_animation`, :func:`read_jsonl` and
:func:`plot_metrics`. matplotlib / imageio are imported only when first needed.
"""

from .animation import save_animation, timelapse
from .grid import make_grid, save_image, to_uint8
from .plots import metrics_figure, plot_metrics, read_jsonl, render_samples, scatter_image

__all__ = [
    "make_grid",
    "metrics_figure",
    "plot_metrics",
    "read_jsonl",
    "render_samples",
    "save_animation",
    "save_image",
    "scatter_image",
    "timelapse",
    "to_uint8",
]
