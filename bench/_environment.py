"""The machine a benchmark ran on, recorded in every results JSON."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess


def environment(device: str = "cpu") -> dict:
    """Date, Python, torch, CPU count, torch threads and the CPU's bf16 matrix units."""
    import torch

    from gankit.engine.runtime import cpu_flags

    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "cpu_bf16_units": sorted({"amx_bf16", "avx512_bf16"} & cpu_flags()),  # empty: bf16 is emulated
    }


def cpu_name() -> str:
    """The CPU model as ``lscpu`` names it (speed figures are only comparable on one model)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        return platform.processor() or "?"
