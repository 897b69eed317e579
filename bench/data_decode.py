"""First-epoch decoding of an image folder, and the cached second run (issue 18).

A folder of JPEGs (default: the 2,000 FairFace 224 px validation faces in ../shared/data) is
decoded by gankit's loader at several thread counts and output sizes (images/s, best of
``--repeats``); then ``load_dataset`` is called twice with a fresh cache directory: the first
call decodes and writes the cache, the second reads it back.

    python bench/data_decode.py                       # ~1 minute on 2 cores
    python bench/data_decode.py --folder my_photos --workers 1 2 4 8

Writes ``bench/results/data_decode.json``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _environment import cpu_name, environment, write_json  # noqa: E402

FAIRFACE = Path(__file__).resolve().parents[2] / "shared" / "data" / "fairface" / "val"


def timed(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", type=Path, default=FAIRFACE)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 224])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "data_decode.json")
    args = parser.parse_args()
    if not args.folder.is_dir():
        raise SystemExit(f"no folder {args.folder} (give --folder)")
    from gankit.data import load_dataset
    from gankit.data.images import FolderSource, decode_source

    source = FolderSource(args.folder)
    n = len(source.entries)
    result = {"bench": "data_decode", "folder": str(args.folder), "files": n,
              "environment": {**environment(), "cpu": cpu_name()}, "decode": [], "cache": {}}
    for res in args.resolutions:
        for workers in args.workers:
            seconds, ds = timed(lambda: decode_source(source, str(args.folder), channels=3, resolution=res,
                                                      max_images=None, workers=workers), args.repeats)
            row = {"resolution": res, "workers": workers, "images": len(ds), "seconds": round(seconds, 3),
                   "img_per_s": round(len(ds) / seconds, 1)}
            result["decode"].append(row)
            print(row, flush=True)
    with tempfile.TemporaryDirectory() as cache:
        res = args.resolutions[0]
        first, ds = timed(lambda: load_dataset(str(args.folder), channels=3, resolution=res, cache_dir=cache), 1)
        second, _ = timed(lambda: load_dataset(str(args.folder), channels=3, resolution=res, cache_dir=cache), 3)
        result["cache"] = {"resolution": res, "first_s": round(first, 3), "cached_s": round(second, 4),
                           "first_img_per_s": round(len(ds) / first, 1), "cached_img_per_s": round(len(ds) / second, 1)}
        print(result["cache"], flush=True)
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
