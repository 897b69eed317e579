"""Build the built-in ``fairface`` set shipped in ``src/gankit/data/builtin/fairface/``.

Source: the 2,000 FairFace validation faces in ``../shared/data/fairface`` (224x224 JPEG and
``labels.csv``; see its SOURCE.md). Each face is resized to 128x128 (Lanczos) and saved as a
baseline JPEG (quality 85, optimised Huffman tables, no metadata) under the same name
(``val/<n>.jpg``); ``labels.csv`` keeps FairFace's ``file,age,gender,race`` columns and values in
the same row order (the ``service_test`` column is dropped); SOURCE.md and LICENSE carry the
CC BY 4.0 attribution. The output is the same on every run with the same Pillow version.

    python scripts/make_fairface_builtin.py [--source ../shared/data/fairface] [--size 128] [--quality 85]
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
from collections import Counter
from pathlib import Path

import PIL
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ("file", "age", "gender", "race")
MAX_FILE_BYTES = 2_500_000

LICENSE = """\
The images and labels in this folder are a resized copy of part of FairFace
(K. Karkkainen and J. Joo, "FairFace: Face Attribute Dataset for Balanced Race, Gender, and Age
for Bias Measurement and Mitigation", WACV 2021; https://github.com/joojs/fairface),
licensed under the Creative Commons Attribution 4.0 International licence (CC BY 4.0):
https://creativecommons.org/licenses/by/4.0/

Changes: 2,000 validation faces, resized from 224x224 to {size}x{size} and re-encoded as JPEG
(quality {quality}); labels reduced to the file, age, gender and race columns. See SOURCE.md.
"""


def convert(src: Path, size: int, quality: int) -> bytes:
    with Image.open(src) as im:
        im = im.convert("RGB")
        if im.size != (size, size):
            w, h = im.size
            s = min(w, h)
            box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
            im = im.resize((size, size), Image.Resampling.LANCZOS, box=box)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=quality, optimize=True)
    return buf.getvalue()


def source_md(rows: list[dict[str, str]], size: int, quality: int, total: int) -> str:
    def counts(column: str) -> str:
        c = Counter(r[column] for r in rows)
        if column == "age":  # 0-2, 3-9, 10-19, ..., more than 70
            order = sorted(c, key=lambda v: (not v[0].isdigit(), int(v.split("-")[0]) if v[0].isdigit() else 0))
        else:
            order = sorted(c, key=lambda v: (-c[v], v))
        return ", ".join(f"{v} {c[v]:,}" for v in order)

    return f"""\
# FairFace faces (built-in dataset `fairface`)

- Files: `val/1.jpg` ... `val/{len(rows)}.jpg`: {len(rows):,} aligned face crops, {size}x{size} RGB JPEG
  (quality {quality}), {total / 2**20:.1f} MiB in all; `labels.csv` with the columns `file,age,gender,race`
  (one row per image, FairFace's names and values).
- Counts: gender {counts("gender")};
  race {counts("race")};
  age {counts("age")}.
- Upstream: FairFace, K. Kärkkäinen and J. Joo, "FairFace: Face Attribute Dataset for Balanced Race,
  Gender, and Age for Bias Measurement and Mitigation", WACV 2021 (arXiv:1908.04913),
  https://github.com/joojs/fairface (also github.com/dchen236/FairFace), the images of the
  "Padding=0.25" release: faces aligned and cropped with dlib's get_face_chip, from YFCC-100M
  Flickr photos.
- Licence: Creative Commons Attribution 4.0 International (CC BY 4.0),
  https://creativecommons.org/licenses/by/4.0/ . Redistributed here with this attribution; please
  cite the paper when you use them.
- What was changed: the first {len(rows):,} rows of FairFace's validation labels (as copied in the
  public repository sumanvithaeadala/EthnicityDetection, commit 9b001ff28a8a2e7840bcf1c01c8efb97d22471e8,
  whose spreadsheet damage to the age groups "3-9" and "10-19" was undone), images resized from
  224x224 to {size}x{size} (Lanczos) and re-encoded as JPEG; the `service_test` column was dropped.
- Made by `scripts/make_fairface_builtin.py` (Pillow {PIL.__version__}).
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=ROOT.parent / "shared" / "data" / "fairface")
    ap.add_argument("--out", type=Path, default=ROOT / "src" / "gankit" / "data" / "builtin" / "fairface")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--quality", type=int, default=85)
    args = ap.parse_args()

    with open(args.source / "labels.csv", newline="", encoding="utf-8") as f:
        rows = [{k: r[k] for k in COLUMNS} for r in csv.DictReader(f)]
    if args.out.exists():
        for sub in ("val",):
            shutil.rmtree(args.out / sub, ignore_errors=True)
    (args.out / "val").mkdir(parents=True, exist_ok=True)
    total = 0
    for r in rows:
        data = convert(args.source / r["file"], args.size, args.quality)
        dest = args.out / r["file"]
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        total += len(data)
    with open(args.out / "labels.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    total += (args.out / "labels.csv").stat().st_size
    (args.out / "LICENSE").write_text(LICENSE.format(size=args.size, quality=args.quality), encoding="utf-8")
    (args.out / "SOURCE.md").write_text(source_md(rows, args.size, args.quality, total), encoding="utf-8")
    biggest = max((p for p in args.out.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    assert biggest.stat().st_size <= MAX_FILE_BYTES, biggest
    print(f"wrote {len(rows):,} faces of {args.size}x{args.size} and labels.csv to {args.out} "
          f"({total / 2**20:.2f} MiB; largest file {biggest.name}, {biggest.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
