"""The machine a benchmark ran on, recorded in every results JSON."""

from __future__ import annotations

import datetime as _dt
import os
import platform


def environment(device: str = "cpu") -> dict:
    """Date, Python, torch, CPU count and torch threads."""
    import torch

    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
    }
