"""Small file helpers shared by the viz modules (atomic writes)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_target(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` on success.

    The temporary name lives in the same directory (so ``os.replace`` is atomic) and keeps
    the real suffix (so writers that infer the format from the extension still work).
    Parent directories are created. On error the temporary file is removed and ``path`` is
    left untouched, so a reader never sees a half-written image or animation.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
