"""Decoding user images (a folder, class folders or a .zip) into one uint8 tensor.

Real image folders are messy: phone photos with EXIF rotation, PNGs with alpha or palettes,
16-bit scans, CMYK JPEGs, half-downloaded files, and the odd text file renamed ``.jpg``. Every
image is therefore normalised to 8-bit L or RGB (alpha composited onto white), resized so its
short side is ``resolution`` and centre-cropped to a square; a file that cannot be decoded is
recorded in ``Dataset.skipped`` instead of stopping a training run that may take hours.
"""

from __future__ import annotations

import io
import os
import warnings
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import GankitError
from .dataset import Dataset

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
MAX_PIXELS = 2**28  # larger declared sizes are decompression bombs (PIL's own default is 2**26.4)
MAX_MEMBER_BYTES = 64 * 2**20  # zip members that would inflate beyond this are skipped
POOL_MIN_FILES = 64  # below this a thread pool costs more than it saves


class BadImage(Exception):
    """A file that is skipped; ``str(exc)`` is the short reason shown to the user."""


@dataclass(frozen=True)
class Entry:
    """One candidate image file: path relative to the source root (``/``-separated)."""

    name: str
    size: int
    mtime_ns: int = 0


def _visible(rel: str) -> bool:
    return not any(part.startswith(".") or part == "__MACOSX" for part in rel.split("/"))


def _is_image_name(rel: str) -> bool:
    return os.path.splitext(rel)[1].lower() in IMAGE_EXTENSIONS and _visible(rel)


def class_names(names: list[str]) -> list[str] | None:
    """ImageFolder rule: no image at the top level and >= 2 top-level folders with images."""
    if not names or any("/" not in n for n in names):
        return None
    tops = sorted({n.split("/", 1)[0] for n in names})
    return tops if len(tops) >= 2 else None


class FolderSource:
    """Image files under a folder, found recursively; hidden files and folders are ignored."""

    def __init__(self, root: Path):
        self.root = root
        self._seen: set[tuple[int, int]] = set()  # folders visited, so symlink loops end
        self.entries = sorted(self._walk(root, ""), key=lambda e: e.name)
        self.classes = class_names([e.name for e in self.entries])

    def _walk(self, folder: Path, prefix: str):
        st = folder.stat()
        if (st.st_dev, st.st_ino) in self._seen:
            return
        self._seen.add((st.st_dev, st.st_ino))
        with os.scandir(folder) as it:
            for item in it:
                if item.name.startswith("."):
                    continue
                rel = prefix + item.name
                try:
                    is_dir, is_file = item.is_dir(), item.is_file()
                except OSError:  # ELOOP: a link leading back to itself must not abort the load
                    is_dir = is_file = False
                if is_dir:
                    yield from self._walk(Path(item.path), rel + "/")
                elif not _is_image_name(rel):
                    continue
                elif is_file:
                    st = item.stat()
                    yield Entry(rel, st.st_size, st.st_mtime_ns)
                elif item.is_symlink() and not os.path.exists(item.path):
                    # a broken link (or link loop) named like an image: listed, so that read()
                    # fails and it is reported in Dataset.skipped instead of vanishing (issue 17)
                    yield Entry(rel, 0)

    def fingerprint(self) -> list:
        """What the decoded-cache key depends on: every image's name, size and mtime."""
        return [(e.name, e.size, e.mtime_ns) for e in self.entries]

    def read(self, entry: Entry) -> bytes:
        try:
            return (self.root / entry.name).read_bytes()
        except OSError as exc:
            raise BadImage(f"unreadable ({exc.strerror or exc})") from None

    def close(self) -> None:
        pass


def _wrapping_folder(names: list[str]) -> str:
    """``"a/b/"`` when every name lies inside folder ``a/b``, else ``""``."""
    prefix = ""
    while names and all("/" in n[len(prefix):] for n in names):
        tops = {n[len(prefix):].split("/", 1)[0] for n in names}
        if len(tops) != 1:
            break
        prefix += tops.pop() + "/"
    return prefix


class ZipSource:
    """Image members of a zip, read in memory (never extracted to disk).

    A single folder wrapping everything (``zip -r faces.zip faces/``) is looked through, so the
    zip behaves like the folder it was made from, class folders included.
    """

    def __init__(self, path: Path):
        self.path = path
        try:
            self.zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise GankitError(f"{path}: not a readable zip file ({exc})") from None
        infos = [i for i in self.zf.infolist() if not i.is_dir() and _is_image_name(i.filename)]
        prefix = _wrapping_folder([i.filename for i in infos])
        self._info = {i.filename[len(prefix):]: i for i in infos}
        self.entries = sorted((Entry(n, i.file_size) for n, i in self._info.items()),
                              key=lambda e: e.name)
        self.classes = class_names([e.name for e in self.entries])

    def fingerprint(self) -> list:
        st = self.path.stat()
        return [(self.path.name, st.st_size, st.st_mtime_ns)]

    def read(self, entry: Entry) -> bytes:
        info = self._info[entry.name]
        if info.file_size > MAX_MEMBER_BYTES:
            raise BadImage(f"too large uncompressed ({info.file_size / 2**20:.1f} MiB)")
        try:  # ZipFile serialises member reads with a lock, so threads may share it
            return self.zf.read(info)
        except Exception as exc:  # bad CRC, encryption, unknown compression, zlib errors
            raise BadImage(f"unreadable zip member ({exc})") from None

    def close(self) -> None:
        self.zf.close()


def open_source(path: Path) -> FolderSource | ZipSource:
    """List a folder or zip; GankitError when it holds no image files."""
    try:
        src = FolderSource(path) if path.is_dir() else ZipSource(path)
    except OSError as exc:
        raise GankitError(f"{path}: cannot read ({exc})") from None
    if not src.entries:
        src.close()
        exts = ", ".join(sorted(e[1:] for e in IMAGE_EXTENSIONS))
        raise GankitError(f"{path}: no image files found ({exts})")
    return src


# --------------------------------------------------------------------------- pixel conversion

def _scale_to_uint8(a: np.ndarray) -> np.ndarray:
    """16-bit, 32-bit int and float pixels to 0..255 by their nominal range, not by clipping."""
    if a.dtype.kind == "f":
        a = np.nan_to_num(a.astype(np.float64))
        lo, hi = float(a.min()), float(a.max())
        if lo >= 0 and hi <= 1:
            a = a * 255
        elif not (lo >= 0 and hi <= 255):
            a = (a - lo) * (255 / (hi - lo)) if hi > lo else a * 0
        return np.rint(a).astype(np.uint8)
    lo, hi = int(a.min()), int(a.max())
    if lo >= 0 and hi <= 65535:  # I;16 and mode I from 16-bit files
        return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    return ((a.astype(np.int64) - lo) * 255 // max(hi - lo, 1)).astype(np.uint8)


def _composite_on_white(im: Image.Image) -> Image.Image:
    """LA or RGBA to L or RGB over a white background (transparent areas become white)."""
    a = np.asarray(im).astype(np.uint16)
    alpha = a[..., -1:]
    out = (a[..., :-1] * alpha + 255 * (255 - alpha) + 127) // 255
    out = out.astype(np.uint8)
    return Image.fromarray(out[..., 0] if out.shape[-1] == 1 else out)


def _grey_palette(im: Image.Image) -> bool:
    palette = np.asarray(im.getpalette("RGB") or [], dtype=np.uint8).reshape(-1, 3)
    used = np.flatnonzero(np.bincount(np.asarray(im).ravel(), minlength=256))
    used = used[used < len(palette)]
    p = palette[used]
    return bool((p[:, 0] == p[:, 1]).all() and (p[:, 1] == p[:, 2]).all())


def to_l_or_rgb(im: Image.Image) -> Image.Image:
    """Any PIL mode to 8-bit ``L`` (greyscale sources) or ``RGB`` (everything else)."""
    mode = im.mode
    if mode.startswith("I") or mode == "F":
        return Image.fromarray(_scale_to_uint8(np.asarray(im)))
    if mode == "P":
        grey = _grey_palette(im)
        if "transparency" in im.info:
            im = _composite_on_white(im.convert("RGBA"))
        else:
            im = im.convert("RGB")
        return im.convert("L") if grey else im
    if mode in ("1", "L") and "transparency" not in im.info:
        return im.convert("L")
    if mode in ("1", "L", "LA", "La"):
        return _composite_on_white(im.convert("LA"))
    if mode in ("RGBA", "RGBa", "PA") or "transparency" in im.info:
        return _composite_on_white(im.convert("RGBA"))
    return im if mode == "RGB" else im.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX


def resize_center_crop(im: Image.Image, resolution: int) -> Image.Image:
    """Scale the short side to ``resolution`` and keep the centred square (one resample)."""
    w, h = im.size
    s = min(w, h)
    if w == h == resolution:
        return im
    box = ((w - s) / 2, (h - s) / 2, (w + s) / 2, (h + s) / 2)
    return im.resize((resolution, resolution), Image.Resampling.BICUBIC, box=box)


def resize_center_crop_array(a: np.ndarray, resolution: int) -> np.ndarray:
    """:func:`resize_center_crop` for an ``(H, W)`` or ``(H, W, 3)`` uint8 array."""
    return np.asarray(resize_center_crop(Image.fromarray(a), resolution))


def _reason(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    if "truncated" in text.lower():
        return "truncated file"
    if isinstance(exc, UnidentifiedImageError):
        return "not a readable image"
    return f"corrupt ({text[:80]})"


def _png_crc_error(data: bytes) -> str | None:
    """The type of the first complete PNG chunk whose CRC does not match, else None.

    PIL checks the CRCs of the chunks before the pixels but not of IDAT, so a PNG with flipped
    bytes in its pixel data could inflate to a wrong image and be trained on (issue 17).
    """
    view, pos = memoryview(data), 8
    while pos + 12 <= len(data):
        end = pos + 8 + int.from_bytes(view[pos:pos + 4], "big")
        if end + 4 > len(data):
            break  # cut short: PIL reports the truncation itself
        if zlib.crc32(view[pos + 4:end]) != int.from_bytes(view[end:end + 4], "big"):
            return bytes(view[pos + 4:pos + 8]).decode("latin-1")
        pos = end + 4
    return None


def decode_image(data: bytes, channels: int | None, resolution: int | None) -> np.ndarray:
    """Bytes of one image file -> ``(H, W)`` grey or ``(H, W, 3)`` uint8; raises BadImage.

    With ``channels=None`` greyscale sources stay 2-D so the caller can pick 1 channel when
    every image is grey.
    """
    if not data:
        raise BadImage("empty file")
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise BadImage(f"decompression bomb ({w}x{h} pixels)")
            if im.format == "PNG" and (chunk := _png_crc_error(data)):
                raise BadImage(f"corrupt (CRC error in {chunk} chunk)")
            if resolution and im.format == "JPEG":
                im.draft(None, (2 * resolution, 2 * resolution))  # DCT downscale: 2-4x faster
            im.load()  # full decode here, so truncated files fail now
            try:
                ImageOps.exif_transpose(im, in_place=True)
            except Exception:  # broken EXIF block: the pixels are still fine
                pass
            im = to_l_or_rgb(im)
            if channels == 1 and im.mode != "L":
                im = im.convert("L")
            if resolution:
                im = resize_center_crop(im, resolution)
            if channels == 3 and im.mode != "RGB":
                im = im.convert("RGB")
            return np.asarray(im)
    except BadImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImage(f"decompression bomb (over {MAX_PIXELS:,} pixels)") from None
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, EOFError, ...
        raise BadImage(_reason(exc)) from None


@contextmanager
def _pil_limits():
    """Use our pixel limit and make PIL's bomb warning an error, only while we decode."""
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = old


def _decode_entry(src, entry: Entry, channels, resolution):
    try:
        return decode_image(src.read(entry), channels, resolution)
    except BadImage as exc:
        return exc


def decode_source(src: FolderSource | ZipSource, source: str, *, channels: int | None,
                  resolution: int | None, max_images: int | None,
                  workers: int | None = None) -> Dataset:
    """Decode the first ``max_images`` good images of ``src`` into a Dataset.

    Decoding runs in a thread pool: PIL releases the GIL while decoding and resizing, so
    threads give most of a process pool's speed-up without pickling images between processes.
    """
    entries = src.entries
    want = len(entries) if max_images is None else min(max_images, len(entries))
    if workers is None:
        workers = min(8, os.cpu_count() or 1) if want >= POOL_MIN_FILES else 1
    good: list[tuple[Entry, np.ndarray]] = []
    skipped: list[tuple[str, str]] = []
    pos = 0
    with _pil_limits(), ThreadPoolExecutor(max(workers, 1)) as pool:
        while len(good) < want and pos < len(entries):  # refill when files were skipped
            batch = entries[pos:pos + want - len(good)]
            pos += len(batch)
            if workers > 1:
                results = pool.map(lambda e: _decode_entry(src, e, channels, resolution), batch)
            else:
                results = (_decode_entry(src, e, channels, resolution) for e in batch)
            for entry, out in zip(batch, results):
                if isinstance(out, BadImage):
                    skipped.append((entry.name, str(out)))
                else:
                    good.append((entry, out))
    if not good:
        name, reason = skipped[0]
        raise GankitError(f"{source}: none of the {len(skipped)} image files could be read "
                          f"(first: {name}: {reason})")
    return _assemble(good, skipped, src.classes, source, channels)


def iter_decoded(src: FolderSource | ZipSource, skipped: list[tuple[str, str]], *, channels: int | None = None,
                 resolution: int | None = None):
    """``(entry, array)`` for every readable image of ``src`` in order, one at a time (under our
    pixel limit); unreadable files are appended to ``skipped`` as ``(name, reason)``."""
    with _pil_limits():
        for entry in src.entries:
            out = _decode_entry(src, entry, channels, resolution)
            if isinstance(out, BadImage):
                skipped.append((entry.name, str(out)))
            else:
                yield entry, out


def image_batch(array: np.ndarray):
    """One decoded image, ``(H, W)`` grey or ``(H, W, C)`` uint8, as a batch of one ``(1, C, H, W)``
    uint8 tensor (a copy): what the apply commands and the studio feed a generator."""
    t = torch.from_numpy(np.array(array, copy=True))
    return (t[None] if t.dim() == 2 else t.permute(2, 0, 1))[None]


def stack_images(arrays: list[np.ndarray], channels: int | None = None) -> np.ndarray:
    """Same-size ``(H, W)`` grey / ``(H, W, 3)`` colour uint8 arrays -> ``(N, C, H, W)``.

    ``channels`` None: 1 when every image is grey, else 3 (grey ones repeated); 1 turns colour
    images into their luma (PIL's ``convert("L")``)."""
    c = channels or (1 if all(a.ndim == 2 for a in arrays) else 3)
    out = np.empty((len(arrays), c) + arrays[0].shape[:2], dtype=np.uint8)
    for i, a in enumerate(arrays):
        if a.ndim == 2:
            out[i] = a  # grey broadcasts over channels
        elif c == 1:
            out[i, 0] = np.asarray(Image.fromarray(a).convert("L"))
        else:
            out[i] = a.transpose(2, 0, 1)
    return out


def _assemble(good, skipped, classes, source, channels) -> Dataset:
    sizes = {}
    for entry, a in good:
        sizes.setdefault(a.shape[:2], entry.name)
    if len(sizes) > 1:
        (s1, n1), (s2, n2) = list(sizes.items())[:2]
        raise GankitError(f"{source}: images have different sizes ({n1} is {s1[1]}x{s1[0]}, "
                          f"{n2} is {s2[1]}x{s2[0]}); choose a resolution to resize them to")
    out = stack_images([a for _, a in good], channels)
    labels, empty = None, []
    if classes:  # a class folder none of whose images was read is no class to condition on
        found = {e.name.split("/", 1)[0] for e, _ in good}
        empty = [name for name in classes if name not in found]
        classes = [name for name in classes if name in found]
        if len(classes) < 2:
            classes = None
    if classes:
        index = {name: i for i, name in enumerate(classes)}
        labels = torch.tensor([index[e.name.split("/", 1)[0]] for e, _ in good], dtype=torch.int64)
    return Dataset(data=torch.from_numpy(out), labels=labels, classes=classes, kind="image",
                   skipped=skipped, source=source, empty_classes=empty)
