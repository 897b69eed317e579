"""Small-data training with and without differentiable augmentation: the rows of docs/small-data.md.

Trains the same family, preset, steps and seed on a small dataset once per augmentation
(``none``, ``diffaugment``, ``ada``), then scores each run against the full data it was cut from:
FID / KID / precision-recall with the shipped MNIST classifier's features for grey digits, and
SWD (x1e3, no pretrained network needed) for every dataset. Writes
``bench/results/small_data_<name>.json`` and a side-by-side figure of the last sample grids,
``docs/images/small_data_<name>.png``. Finished runs are rescored, not retrained.

    python bench/small_data.py --name mnist500 --data mnist --max-images 500
    python bench/small_data.py --name hubble --data ../shared/data/hubble/images --hflip
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _environment import environment  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", required=True, help="names the runs, JSON and figure")
    ap.add_argument("--data", required=True, help="built-in name or a folder of images")
    ap.add_argument("--family", default="dcgan")
    ap.add_argument("--preset", default="small")
    ap.add_argument("--steps", type=int, default=None, help="default: the preset's")
    ap.add_argument("--max-images", type=int, default=0, help="train on the first N images (0 = all)")
    ap.add_argument("--resolution", type=int, default=None)
    ap.add_argument("--hflip", action="store_true", help="random x-flips of the reals in every run")
    ap.add_argument("--augments", nargs="+", default=["none", "diffaugment", "ada"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=5000, help="samples scored")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "small-data")
    args = ap.parse_args(argv)

    import numpy as np

    import gankit
    from gankit.engine import checkpoint as ckpt
    from gankit.metrics.evaluate import evaluate
    from gankit.viz import make_grid, save_image

    rows, grids = [], []
    for augment in args.augments:
        run = args.runs / f"{args.name}-{args.family}-{augment}-s{args.seed}"
        train_seconds = None
        if not ckpt.list_checkpoints(run):
            overrides = {"augment": augment, "max_images": args.max_images, "hflip": args.hflip}
            result = gankit.train(args.family, data=args.data, out=run, preset=args.preset, steps=args.steps,
                                  resolution=args.resolution, seed=args.seed, overrides=overrides)
            train_seconds = round(result.seconds, 1)
            (run / "small_data_train.json").write_text(json.dumps({"train_seconds": train_seconds}))
        else:
            record = run / "small_data_train.json"
            train_seconds = json.loads(record.read_text())["train_seconds"] if record.exists() else None
        model = gankit.load(run)
        grey_digits = model.config.channels == 1 and str(args.data).startswith("mnist")
        metrics = "fid,kid,pr,swd" if grey_digits else "swd"
        scores = evaluate(run, args.data, metrics=metrics, features="mnist" if grey_digits else "auto",
                          n=args.n, seed=args.seed)
        row = {"augment": augment, "run": str(run.relative_to(ROOT)) if run.is_relative_to(ROOT) else str(run),
               "steps": model.step, "train_seconds": train_seconds,
               **{k: scores[k] for k in ("fid", "kid", "kid_std", "precision", "recall", "swd", "n_real")
                  if k in scores}}
        tensors, _ = ckpt.load_checkpoint(ckpt.latest_checkpoint(run))
        if "net.augment.p" in tensors:
            row["ada_p"] = round(float(tensors["net.augment.p"]), 4)
        rows.append(row)
        print(json.dumps(row), flush=True)
        grids.append(make_grid(model.sample(36, seed=args.seed), nrow=6))

    doc = {
        "benchmark": "small_data",
        "name": args.name,
        "data": args.data,
        "family": args.family,
        "preset": args.preset,
        "max_images": args.max_images,
        "seed": args.seed,
        "n": args.n,
        "command": "python bench/small_data.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "results": rows,
        "environment": environment(),
    }
    out = ROOT / "bench" / "results" / f"small_data_{args.name}.json"
    out.write_text(json.dumps(doc, indent=2) + "\n")
    figure = _side_by_side(grids, [r["augment"] for r in rows], np)
    save_image(figure, ROOT / "docs" / "images" / f"small_data_{args.name}.png")
    print(f"wrote {out}")
    return 0


def _side_by_side(grids, labels, np):
    """RGB grids (from make_grid) in a row with a gap and the augmentation's name above each."""
    from PIL import Image, ImageDraw

    gap, top = 8, 16
    width = sum(g.shape[1] for g in grids) + gap * (len(grids) - 1)
    canvas = Image.new("RGB", (width, max(g.shape[0] for g in grids) + top), "white")
    draw = ImageDraw.Draw(canvas)
    x = 0
    for grid, label in zip(grids, labels):
        canvas.paste(Image.fromarray(grid), (x, top))
        draw.text((x + 2, 2), label, fill="black")
        x += grid.shape[1] + gap
    return np.asarray(canvas)


if __name__ == "__main__":
    sys.exit(main())
