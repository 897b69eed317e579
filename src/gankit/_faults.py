"""Fault injection for gankit's own tests and ``bench/faults.py`` (issue 17); not an API.

    python -m gankit._faults FAULT -- ARGV...

runs ``gankit ARGV`` with FAULT installed:

* ``none``: nothing (the same entry point, so runs compare like for like);
* ``<stage>:<n>``: SIGKILL inside the n-th checkpoint write, at one stage of it: ``state`` (part
  of ``state.safetensors`` on disk), ``meta`` (tensors written, no ``meta.json`` yet), ``rename``
  (renamed into place, the folder not yet synced, nothing rotated), ``rotate`` (while the oldest
  checkpoint is deleted; n counts deletions);
* ``budget:<bytes>``: every file renamed into place fails with ENOSPC once that many bytes were
  written, and disk usage reports what is left (a full disk where no tmpfs can be mounted).
"""

from __future__ import annotations

import collections
import os
import random
import shutil
import signal
import sys
from pathlib import Path


def install(fault: str) -> None:
    from gankit.engine import checkpoint as c

    kind, _, arg = fault.partition(":")
    writes = []

    def nth_write(*args, **kwargs) -> bool:
        writes.append(1)
        return len(writes) == int(arg)

    def wrap(module, name, when, before=None):
        original = getattr(module, name)

        def wrapper(*args, **kwargs):
            if when(*args, **kwargs):
                if before:
                    before(original, *args, **kwargs)
                os.kill(os.getpid(), signal.SIGKILL)
            return original(*args, **kwargs)
        setattr(module, name, wrapper)

    def part_written(original, tensors, filename, metadata=None):
        original(tensors, filename, metadata=metadata)
        with open(filename, "r+b") as f:
            f.truncate(random.randrange(os.path.getsize(filename)))

    if kind == "state":
        wrap(c, "save_file", nth_write, part_written)
    elif kind == "meta":
        wrap(c, "write_text_atomic", lambda path, text: Path(path).name == "meta.json" and nth_write())
    elif kind == "rename":
        wrap(c, "fsync_dir", lambda path: Path(path).name == "checkpoints" and nth_write())
    elif kind == "rotate":
        wrap(c.shutil, "rmtree", lambda path, **kw: Path(path).name.startswith("step_") and nth_write())
    elif kind == "budget":
        install_budget(int(arg))
    elif kind != "none":
        raise SystemExit(f"unknown fault {fault!r}")


def install_budget(budget: int) -> None:
    used = [0]
    real_replace, usage = os.replace, collections.namedtuple("usage", "total used free")

    def replace(src, dst, *args, **kwargs):
        size = sum(p.stat().st_size for p in Path(src).rglob("*")) if Path(src).is_dir() else os.path.getsize(src)
        if used[0] + size > budget:
            raise OSError(28, "No space left on device", str(dst))
        used[0] += size
        return real_replace(src, dst, *args, **kwargs)

    os.replace = replace
    shutil.disk_usage = lambda path: usage(budget, used[0], budget - used[0])


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[2] != "--":
        raise SystemExit(__doc__)
    install(sys.argv[1])
    from gankit.cli import main

    main(sys.argv[3:])
