"""Writing files so that nothing a user had is lost: every file gankit writes (checkpoints,
exports, grids, GIFs, reports, JSON results, the metrics log when a resume trims it) appears
under its final name only once complete. It is written to a temporary name in the same folder,
flushed to disk and renamed over the target (``os.replace`` is atomic on POSIX and Windows), so a
crash, a ``kill -9`` or a full disk leaves the previous file, never half of a new one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _read_umask() -> int:
    mask = os.umask(0o022)  # read at import, while nothing else runs: os.umask has no getter
    os.umask(mask)
    return mask


UMASK = _read_umask()


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (best effort: some filesystems refuse)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def temporary_name(path: Path) -> Path:
    """A hidden name beside ``path`` that keeps its suffix (writers that infer the format from it
    still work) and is unique per process and call."""
    return path.with_name(f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")


@contextmanager
def atomic_target(path: str | os.PathLike, *, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` when the block succeeds.

    Parent folders are created. On any error the temporary file is removed and ``path`` is left
    as it was. ``durable`` also fsyncs the file before the rename (checkpoints, exports)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        yield tmp
        if durable:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        # the mode a plain open() would give (some writers, e.g. safetensors, create 0600 files, so
        # an export could not be read by others), or the replaced file's own
        os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~UMASK)
        os.replace(tmp, path)
    except OSError as exc:  # name the file the user asked for, not our hidden temporary one
        if exc.filename is not None and Path(exc.filename).name == tmp.name:
            exc.filename = str(path)
        if exc.filename2 is not None and Path(exc.filename2) == path and path.is_dir():
            exc.filename, exc.filename2 = str(path), None
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """``path.write_text(text)``, atomically and durably."""
    with atomic_target(path, durable=True) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read_user_text(path: Path, hint: str) -> str:
    """A user's text table (UTF-8, a BOM allowed); one-line GankitErrors for a binary file (with
    ``hint``, what the file should be) or an unreadable one."""
    from gankit.errors import GankitError

    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise GankitError(f"{path}: not a text file (UTF-8); {hint}") from None
    except OSError as exc:
        raise GankitError(f"{path}: cannot read ({exc.strerror or exc})") from None

