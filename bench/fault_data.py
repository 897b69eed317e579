"""Dataset fuzz for issue 17 ("nothing lost"): every image file is either used or reported.

Writes ``--files`` files (1,000) into a fresh folder: a seeded mix of GOOD images in every shape a
real folder has (PNG/JPEG/WebP/BMP/TIFF of random sizes and aspect ratios, grey, palette, alpha,
1 pixel, animated GIF/WebP, EXIF-rotated and CMYK JPEG, 16-bit PNG/TIFF, sub-folders, upper-case
extensions, a link to an image outside the folder), BAD files (random bytes, empty, truncated,
PNG CRC errors, decompression bombs, text renamed .jpg, broken links, a link to a text file, a
link that points to itself) and IGNORED names (``notes.txt``, hidden files, a folder named
``x.png/``, folder links back to the root, a link loop without an image extension). Every kind
gets the same share. The folder is then loaded with ``gankit.data.load_dataset`` (32 px, 3
channels, no cache) in a child process, and the fuzz checks: no crash or hang; images loaded ==
GOOD files; ``Dataset.skipped`` names == BAD files; child peak RSS (``ru_maxrss``) under a bound,
so no bomb was decoded.

The contract, as ``gankit/data/images.py`` implements it: links to files are followed (wherever
they point), so a link to a good image is GOOD; a file counts as GOOD only if it decodes to the
whole image, so every truncated file is BAD (gankit never sets ``LOAD_TRUNCATED_IMAGES``; a JPEG
that only lacks its end marker is skipped as truncated too, and the cuts here always fall inside
the pixel data); folders are walked, so a folder named ``x.png`` is just a folder (IGNORED), and a
folder reached twice through links is walked once.

    python bench/fault_data.py --files 1000 --out bench/results/fault_data.json
    from fault_data import fuzz_dataset; result = fuzz_dataset(files=200)   # bench/ on sys.path
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from _environment import cpu_name, environment  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]
FORMATS = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP", "bmp": "BMP", "tif": "TIFF"}


# --------------------------------------------------------------------------- pictures

def picture(rng, size=None, min_side=8, noise=None) -> Image.Image:
    """Random RGB picture, 8..300 px a side: noise or a smooth gradient (PNG compresses it well)."""
    w, h = rng.integers(min_side, 301, 2) if size is None else size
    if noise or (noise is None and rng.random() < 0.5):
        return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    y, x = np.mgrid[0:h, 0:w]
    a = x[..., None] * rng.integers(1, 4, 3) + y[..., None] * rng.integers(0, 3, 3) + rng.integers(0, 256, 3)
    return Image.fromarray((a % 256).astype(np.uint8))


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, FORMATS.get(fmt.lower(), fmt.upper()), **kw)
    return buf.getvalue()


def animated(rng, fmt: str) -> bytes:
    """2..4 frames (gankit uses the first)."""
    size = tuple(rng.integers(8, 301, 2))
    first, *more = [picture(rng, size) for _ in range(rng.integers(2, 5))]
    return encode(first, fmt, save_all=True, append_images=more, duration=100)


def sixteen_bit(rng) -> Image.Image:
    h, w = rng.integers(8, 301, 2)
    return Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16))  # mode I;16


def chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def bomb_png(rng) -> bytes:
    """A valid PNG header declaring up to 100,000 x 100,000 pixels (over gankit's 2**28 limit)."""
    w, h = rng.integers(20_000, 100_001, 2)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def bomb_gif(rng) -> bytes:
    """A GIF whose screen and image are 16,385..65,535 px a side (over 2**28 pixels)."""
    w, h = rng.integers(16_385, 65_536, 2)
    return (b"GIF89a" + struct.pack("<HHBBB", w, h, 0, 0, 0)
            + b"," + struct.pack("<HHHHB", 0, 0, w, h, 0) + b"\x08\x02\x4c\x01\x00;")


def truncated(rng, fmt: str) -> bytes:
    """A noise image cut at 10..80% of its length: always inside the pixel data."""
    data = encode(picture(rng, min_side=48, noise=True), fmt)
    return data[:int(len(data) * rng.uniform(0.1, 0.8))]


def crc_error_png(rng) -> bytes:
    """A PNG with one byte of its pixel data (IDAT) changed: the chunk's CRC no longer matches."""
    data = bytearray(encode(picture(rng, min_side=16), "png"))
    start = data.index(b"IDAT") + 4
    end = start + struct.unpack(">I", data[start - 8:start - 4])[0]
    pos = int(rng.integers(start + (end - start) // 4, start + 3 * (end - start) // 4 + 1))
    data[pos] ^= int(rng.integers(1, 256))
    return bytes(data)


# --------------------------------------------------------------------------- kinds

def write(root: Path, rel: str, data: bytes | str) -> str:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return rel


def link(root: Path, rel: str, target: str | Path) -> str:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, root / rel)
    return rel


def save(root: Path, stem: str, ext: str, im: Image.Image, **kw) -> str:
    return write(root, f"{stem}.{ext}", encode(im, ext, **kw))


def a_format(rng) -> str:
    return str(rng.choice(list(FORMATS)))


def upper_ext(rng, root: Path, stem: str) -> str:
    return save(root, stem, str(rng.choice(["JPG", "JPEG", "PNG", "WEBP", "TIFF"])), picture(rng))


def exif_jpeg(rng) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = int(rng.choice([6, 8]))  # orientation: rotate 90 / 270
    return encode(picture(rng), "jpg", exif=exif.tobytes())


def rgba(rng) -> Image.Image:
    im = picture(rng)
    return Image.merge("RGBA", (*im.split(), picture(rng, im.size).convert("L")))


def folder(root: Path, rel: str) -> str:
    (root / rel).mkdir(parents=True)
    return rel


# kind -> (status, maker(rng, root, outside, stem) -> the one name it made, relative to root)
KINDS = {
    # GOOD: decodes to a whole image, so it must be in the dataset
    "png": ("good", lambda r, d, o, s: save(d, s, "png", picture(r))),
    "jpeg": ("good", lambda r, d, o, s: save(d, s, "jpg", picture(r), quality=int(r.integers(30, 96)))),
    "webp": ("good", lambda r, d, o, s: save(d, s, "webp", picture(r), lossless=bool(r.random() < 0.5))),
    "bmp": ("good", lambda r, d, o, s: save(d, s, "bmp", picture(r))),
    "tiff": ("good", lambda r, d, o, s: save(d, s, "tif", picture(r), compression=r.choice(["raw", "tiff_lzw"]))),
    "grey": ("good", lambda r, d, o, s: save(d, s, a_format(r), picture(r).convert("L"))),
    "palette_png": ("good", lambda r, d, o, s: save(d, s, "png", picture(r).quantize(int(r.integers(2, 257))))),
    "rgba_png": ("good", lambda r, d, o, s: save(d, s, "png", rgba(r))),
    "one_pixel": ("good", lambda r, d, o, s: save(d, s, a_format(r), picture(r, (1, 1)))),
    "animated_gif": ("good", lambda r, d, o, s: write(d, f"{s}.gif", animated(r, "gif"))),
    "animated_webp": ("good", lambda r, d, o, s: write(d, f"{s}.webp", animated(r, "webp"))),
    "exif_rotated_jpeg": ("good", lambda r, d, o, s: write(d, f"{s}.jpg", exif_jpeg(r))),
    "cmyk_jpeg": ("good", lambda r, d, o, s: save(d, s, "jpg", picture(r).convert("CMYK"))),
    "png_16bit": ("good", lambda r, d, o, s: save(d, s, "png", sixteen_bit(r))),
    "tiff_16bit": ("good", lambda r, d, o, s: save(d, s, "tif", sixteen_bit(r))),
    "in_subfolder": ("good", lambda r, d, o, s: save(d, f"sub{r.integers(4)}/deeper{r.integers(3)}/{s}",
                                                     a_format(r), picture(r))),
    "link_outside": ("good", lambda r, d, o, s: link(d, f"{s}.png", o / save(o, s, "png", picture(r)))),
    "upper_ext": ("good", lambda r, d, o, s: upper_ext(r, d, s)),
    # BAD: no whole image in it, so it must be listed in Dataset.skipped
    "random_bytes": ("bad", lambda r, d, o, s: write(d, f"{s}.{a_format(r)}", r.bytes(int(r.integers(1, 5000))))),
    "zero_size": ("bad", lambda r, d, o, s: write(d, f"{s}.{a_format(r)}", b"")),
    "truncated_png": ("bad", lambda r, d, o, s: write(d, f"{s}.png", truncated(r, "png"))),
    "truncated_jpeg": ("bad", lambda r, d, o, s: write(d, f"{s}.jpg", truncated(r, "jpg"))),
    "truncated_gif": ("bad", lambda r, d, o, s: write(d, f"{s}.gif", truncated(r, "gif"))),
    "truncated_webp": ("bad", lambda r, d, o, s: write(d, f"{s}.webp", truncated(r, "webp"))),
    "truncated_tiff": ("bad", lambda r, d, o, s: write(d, f"{s}.tif", truncated(r, "tif"))),
    "crc_error_png": ("bad", lambda r, d, o, s: write(d, f"{s}.png", crc_error_png(r))),
    "bomb_png": ("bad", lambda r, d, o, s: write(d, f"{s}.png", bomb_png(r))),
    "bomb_gif": ("bad", lambda r, d, o, s: write(d, f"{s}.gif", bomb_gif(r))),
    "text_as_jpg": ("bad", lambda r, d, o, s: write(d, f"{s}.jpg", "not a picture, notes\n" * int(r.integers(1, 50)))),
    "dangling_link": ("bad", lambda r, d, o, s: link(d, f"{s}.png", o / f"{s}_missing.png")),
    "link_to_text": ("bad", lambda r, d, o, s: link(d, f"{s}.jpg", o / write(o, f"{s}.txt", "a text file\n"))),
    "link_loop": ("bad", lambda r, d, o, s: link(d, f"{s}.png", f"{s}.png")),  # points to itself
    # IGNORED: not image files, so neither used nor skipped
    "notes_txt": ("ignored", lambda r, d, o, s: write(d, f"{s}_notes.txt", "training notes\n")),
    "hidden_png": ("ignored", lambda r, d, o, s: save(d, f".{s}", "png", picture(r))),
    "folder_named_png": ("ignored", lambda r, d, o, s: folder(d, f"{s}.png")),  # an empty folder x.png/
    "folder_loop": ("ignored", lambda r, d, o, s: link(d, f"{s}/up", "..")),  # back to the root
    "link_loop_no_ext": ("ignored", lambda r, d, o, s: link(d, s, s)),
}


def make_folder(folder: Path, outside: Path, files: int, seed: int) -> list[dict]:
    """Write ``files`` names (every kind the same share, seeded order); the manifest."""
    kinds = np.random.default_rng(seed).permutation([list(KINDS)[i % len(KINDS)] for i in range(files)])
    manifest = []
    for i, kind in enumerate(kinds):
        status, make = KINDS[kind]
        name = make(np.random.default_rng([seed, i]), folder, outside, f"{i:04d}_{kind}")
        manifest.append({"name": name, "kind": str(kind), "status": status})
    return manifest


# --------------------------------------------------------------------------- load and check

CHILD = """
import json, resource, sys, time
from gankit.data import load_dataset
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
ds = load_dataset(sys.argv[1], channels=3, resolution=int(sys.argv[2]), cache_dir=False)
print(json.dumps({"images": len(ds), "shape": list(ds.shape), "skipped": ds.skipped,
                  "load_s": time.perf_counter() - t, "import_rss_kib": rss,
                  "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def load_in_child(folder: Path, resolution: int, timeout: float) -> tuple[dict | None, str, float]:
    """gankit's loader in a fresh process: (its result or None, error text, child peak RSS MiB).

    Peak RSS is the child's own ``ru_maxrss`` (over all children when it crashed)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])))
    try:
        proc = subprocess.run([sys.executable, "-c", CHILD, str(folder), str(resolution)],
                              capture_output=True, text=True, timeout=timeout, env=env)
        out, error = None, ""
        if proc.returncode == 0:
            out = json.loads(proc.stdout.strip().splitlines()[-1])
        else:
            error = f"loader crashed (exit {proc.returncode}): {proc.stderr.strip()[-600:]}"
    except subprocess.TimeoutExpired:
        out, error = None, f"loader hung: no result after {timeout:g} s"
    peak_kib = out["peak_rss_kib"] if out else resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return out, error, peak_kib / 1024


def check(manifest: list[dict], out: dict | None, peak_mib: float, max_rss_mib: float) -> list[str]:
    """Every way the load broke the contract; empty when nothing was lost."""
    if out is None:
        return []
    status = {m["name"]: m["status"] for m in manifest}
    good = sum(s == "good" for s in status.values())
    skipped = [name for name, _ in out["skipped"]]
    problems = [f"{name}: good file skipped ({reason})" for name, reason in out["skipped"]
                if status.get(name) == "good"]
    problems += [f"{name}: ignored file listed as skipped" for name in skipped if status.get(name) == "ignored"]
    problems += [f"{name}: skipped, but the fuzz never wrote it" for name in skipped if name not in status]
    problems += [f"{name}: skipped twice" for name, n in Counter(skipped).items() if n > 1]
    problems += [f"{name}: bad file not in Dataset.skipped (used or lost)"
                 for name, s in status.items() if s == "bad" and name not in set(skipped)]
    if out["images"] != good:
        problems.append(f"{out['images']} images loaded, {good} good files written")
    if peak_mib > max_rss_mib:
        problems.append(f"peak RSS {peak_mib:.0f} MiB over the {max_rss_mib:.0f} MiB bound")
    return problems


def machine() -> dict:
    return {**environment(), "cpu": cpu_name(), "processor": platform.processor(),
            "cores_usable": len(os.sched_getaffinity(0)), "platform": platform.platform(),
            "pillow": Image.__version__}


def fuzz_dataset(files: int = 1000, seed: int = 0, folder: str | Path | None = None, resolution: int = 32,
                 max_rss_mib: float = 2048, timeout: float = 600) -> dict:
    """Write the fuzz folder, load it with gankit in a child process, check it; the result dict
    (``result["mismatches"]`` empty when nothing was lost). ``folder`` must not exist or be
    empty and is kept; without it a temp folder is used and removed."""
    t0 = time.perf_counter()
    tmp = None if folder else tempfile.mkdtemp(prefix="gankit_fault_data_")
    base = Path(folder or tmp).resolve()
    data, outside = base / "data", base / "outside"  # links point from data/ into outside/
    if base.exists() and any(base.iterdir()):
        raise SystemExit(f"{base} is not empty: the fuzz needs a fresh folder")
    data.mkdir(parents=True), outside.mkdir()
    try:
        manifest = make_folder(data, outside, files, seed)
        write_s = time.perf_counter() - t0
        out, error, peak_mib = load_in_child(data, resolution, timeout)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    mismatches = ([error] if error else []) + check(manifest, out, peak_mib, max_rss_mib)
    by_kind = Counter(m["kind"] for m in manifest)
    reasons: dict[str, Counter] = {}
    kind_of = {m["name"]: m["kind"] for m in manifest}
    for name, reason in (out or {}).get("skipped", []):
        reasons.setdefault(kind_of.get(name, "?"), Counter())[reason] += 1
    counts = Counter(m["status"] for m in manifest)
    return {
        "issue": 17, "files": files, "seed": seed, "resolution": resolution, "folder": str(data),
        "good": counts["good"], "bad": counts["bad"], "ignored": counts["ignored"],
        "per_kind": {k: {"status": KINDS[k][0], "files": by_kind[k]} for k in KINDS},
        "used": out["images"] if out else None, "skipped": len(out["skipped"]) if out else None,
        "shape": out["shape"] if out else None,
        "skip_reasons_by_kind": {k: dict(v) for k, v in sorted(reasons.items())},
        "mismatches": mismatches, "ok": not mismatches,
        "peak_rss_mib": round(peak_mib, 1), "max_rss_mib": max_rss_mib,
        "import_rss_mib": round(out["import_rss_kib"] / 1024, 1) if out else None,
        "write_s": round(write_s, 2), "load_s": round(out["load_s"], 2) if out else None,
        "seconds": round(time.perf_counter() - t0, 2),
        "machine": machine(),
        "skipped_files": [[n, r, kind_of.get(n, "?")] for n, r in out["skipped"]] if out else [],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dir", help="write the files here (must not exist or be empty; kept)")
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--max-rss-mib", type=float, default=2048)
    ap.add_argument("--timeout", type=float, default=600, help="seconds before the load counts as hung")
    ap.add_argument("--out", default=str(ROOT / "bench/results/fault_data.json"))
    args = ap.parse_args(argv)
    r = fuzz_dataset(args.files, args.seed, args.dir, args.resolution, args.max_rss_mib, args.timeout)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(r, indent=1) + "\n")
    print(f"fault_data: {r['files']} files ({r['good']} good, {r['bad']} bad, {r['ignored']} ignored, "
          f"{len(KINDS)} kinds); loaded {r['used']}, skipped {r['skipped']}; peak RSS {r['peak_rss_mib']:.0f} MiB "
          f"(after import {r['import_rss_mib']} MiB); load {r['load_s']} s, total {r['seconds']} s "
          f"on {r['machine']['cpu']} ({r['machine']['cores_usable']} cores usable)")
    for line in r["mismatches"][:20]:
        print("  MISMATCH", line)
    verdict = "OK: nothing lost" if r["ok"] else f"FAILED: {len(r['mismatches'])} mismatches"
    print(f"{verdict} -> {args.out}")
    return 0 if r["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
