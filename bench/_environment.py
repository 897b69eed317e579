"""The machine a benchmark ran on, recorded in every results JSON, and the writing of that JSON."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
from pathlib import Path


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


def device_sync(device) -> None:
    """Wait for ``device``'s queued work (CUDA runs asynchronously), so a timer read after it counts
    that work; a no-op on a CPU."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def write_json(path: str | Path, doc, *, sort_keys: bool = False) -> None:
    """Write a benchmark's results ``doc`` to ``path`` (indent 2, a final newline; parent folders
    made) and say so on stdout."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, sort_keys=sort_keys) + "\n")
    print(f"wrote {path}")
