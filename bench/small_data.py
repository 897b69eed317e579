"""Small-data training with and without differentiable augmentation: the rows of docs/small-data.md.

Trains the same family, preset, steps and seed on a small dataset once per augmentation
(``none``, ``diffaugment``, ``ada``), then scores each run against the full data it was cut from:
FID / KID / precision-recall with the shipped MNIST classifier's features for grey digits, and
SWD (x1e3, no pretrained network needed) for every dataset. Writes
``bench/results/small_data_<name>.json`` and a side-by-side figure of the last sample grids,
``docs/images/small_data_<name>.png``. Finished runs are rescored, not retrained; a run shorter
than ``--steps`` is resumed up to it (exact resume, so the result equals one long run).

With ``--eval-every K`` the runs log FID (or SWD) every K steps, and the JSON keeps that curve:
over-fitting shows as a score that gets worse with more training.

When the run trained on the first ``--max-images`` of a larger set, two over-fitting checks use the
images it never saw (the next ``--held-out`` of the same set):

* D's mean output (sigmoid) on its training images vs on held-out ones (Karras et al. 2020, Fig. 1:
  an over-fitted D is sure of the images it trained on and rejects new real ones);
* the memorisation share of :mod:`gankit.metrics.memorisation` with the training images as the
  reference set: the share of samples closer (in pixels) to a training image than 95% of held-out
  real images are (about 5% for a generator that makes new images).

    python bench/small_data.py --name mnist500 --data mnist --max-images 500 --steps 12000 --eval-every 1000
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
    ap.add_argument("--eval-every", type=int, default=0, help="log FID/SWD every K steps (0: never)")
    ap.add_argument("--held-out", type=int, default=2000, help="unseen images for the over-fitting checks")
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
        record = run / "small_data_train.json"
        train_seconds = json.loads(record.read_text())["train_seconds"] if record.exists() else None
        eval_overrides = {"eval_every": args.eval_every} if args.eval_every else {}
        if args.eval_every and "mnist" not in str(args.data):
            eval_overrides["eval_metrics"] = "swd"
        if not ckpt.list_checkpoints(run):
            overrides = {"augment": augment, "max_images": args.max_images, "hflip": args.hflip, **eval_overrides}
            result = gankit.train(args.family, data=args.data, out=run, preset=args.preset, steps=args.steps,
                                  resolution=args.resolution, seed=args.seed, overrides=overrides)
            train_seconds = round(result.seconds, 1)
        elif args.steps and _latest_step(run) < args.steps:
            result = gankit.train(resume=run, steps=args.steps, overrides=eval_overrides)
            # the total is known only when every earlier part was timed here too
            train_seconds = round(train_seconds + result.seconds, 1) if train_seconds is not None else None
        record.write_text(json.dumps({"train_seconds": train_seconds}))
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
        row["curve"] = _score_curve(run)
        if args.max_images:
            row.update(_held_out_checks(model, tensors, args.data, args.max_images, args.held_out, args.seed))
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


def _latest_step(run: Path) -> int:
    from gankit.engine import checkpoint as ckpt

    return int(ckpt.load_checkpoint(ckpt.latest_checkpoint(run))[1]["step"])


def _score_curve(run: Path) -> list[dict]:
    """The FID / SWD values the run logged during training (``--eval-every``), by step."""
    path = run / "metrics.jsonl"
    curve = []
    for line in path.read_text().splitlines() if path.exists() else []:
        record = json.loads(line)
        values = {k.split("/", 1)[1]: round(v, 3) for k, v in record.items()
                  if k in ("metric/fid", "metric/kid", "metric/swd", "metric/recall")}
        if values:
            curve.append({"step": record["step"], **values})
    return curve


def _held_out_checks(model, tensors, data: str, n_train: int, n_held: int, seed: int) -> dict:
    """D on training vs unseen images, and the memorisation share against the training images."""
    import torch

    from gankit.data import load_dataset, to_signed
    from gankit.engine import checkpoint as ckpt
    from gankit.metrics.memorisation import _summary, knn

    cfg = model.config
    images = load_dataset(data, channels=cfg.channels, resolution=cfg.resolution,
                          max_images=n_train + n_held).data
    if len(images) <= n_train:
        return {}
    train, held = to_signed(images[:n_train]), to_signed(images[n_train:])
    out = {"held_out_images": len(held)}
    shape = tuple(train.shape[1:])
    discriminator = model.family_cls.build_discriminators(cfg, shape)["D"]
    discriminator.load_state_dict(ckpt.prefixed(tensors, "net.D"))
    discriminator.eval()
    with torch.no_grad():
        out["d_train"] = round(torch.sigmoid(discriminator(train)).mean().item(), 3)
        out["d_held_out"] = round(torch.sigmoid(discriminator(held)).mean().item(), 3)
    samples = model.sample(len(held), seed=seed).float().cpu().clamp(-1, 1)
    d_gen, _ = knn(samples.flatten(1), train.flatten(1), 1)
    d_real, _ = knn(held.flatten(1), train.flatten(1), 1)
    summary = _summary(d_gen[:, 0], d_real[:, 0])
    out["memorisation_share"] = round(summary["share_below_heldout_p5"], 4)
    out["nn_median_samples"] = round(summary["generated"]["median"], 3)
    out["nn_median_held_out"] = round(summary["heldout"]["median"], 3)
    return out


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
