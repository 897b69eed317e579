"""Image-to-image translation, measured on held-out data: the numbers of docs/families/{pix2pix,
cyclegan,discogan,stargan}.md.

``pix2pix``: a Pix2Pix run and the paper's "L1 only" ablation (the same U-Net trained by
regression, Isola et al. 2017 Table 1) on the first ``--train`` pairs; on the next ``--held-out``
pairs: L1, PSNR and SSIM to the target (torchmetrics), the identity baseline (the input itself),
sharpness (mean |Laplacian| of the outputs over the targets': 1 = as sharp, below 1 = blurrier)
and SWD of the outputs against the targets (realism, no pretrained network).

``cycle``: CycleGAN and DiscoGAN on a two-domain MNIST task (unpaired training on the first
``--train`` digits); on held-out digits, whose true translation is known: L1 to the truth, the
share of translations the MNIST classifier reads as the source digit (both directions), cycle
error and SWD against the target domain.

``stargan``: StarGAN on ``mnist-attributes``; every held-out image gets each attribute flipped in
turn: the share of edits with every attribute right (read by a deterministic reader) and the
digit kept, and L1 to the exact ground-truth rendering of the edit.

Finished runs are rescored, not retrained; a run shorter than ``--steps`` is resumed.
Writes ``bench/results/translate_<task>_<name>.json`` and ``docs/images/translate_<task>_<name>.png``.

    python bench/translate.py pix2pix --name faces-edges --data edges:../shared/data/fairface/val --resolution 64 --train 1800 --held-out 200
    python bench/translate.py cycle --name mnist-negative --data mnist-negative
    python bench/translate.py stargan --name mnist-attributes
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _environment import environment  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]


def _run(family: str, run: Path, *, data: str, steps: int | None, resolution: int, train: int, seed: int,
         overrides: list[str] = ()) -> dict:
    """Train (or resume, or reuse) one run; returns its timing record."""
    import gankit
    from gankit.engine import checkpoint as ckpt

    record = run / "bench_train.json"
    seconds = json.loads(record.read_text())["train_seconds"] if record.exists() else None
    if not ckpt.list_checkpoints(run):
        result = gankit.train(family, data=data, out=run, preset="small", steps=steps, resolution=resolution,
                              seed=seed, overrides=[f"max_images={train}", *overrides])
        seconds = round(result.seconds, 1)
    else:
        step = ckpt.load_checkpoint(ckpt.latest_checkpoint(run))[1]["step"]
        if steps and step < steps:
            result = gankit.train(resume=run, steps=steps)
            seconds = round(seconds + result.seconds, 1) if seconds is not None else None
    record.write_text(json.dumps({"train_seconds": seconds}))
    return {"run": str(run.relative_to(ROOT)) if run.is_relative_to(ROOT) else str(run), "train_seconds": seconds}


def _rgb(x):
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def _figure(columns: list[tuple[str, "torch.Tensor"]], rows: int, path: Path) -> None:  # noqa: F821
    """A grid with one labelled column per entry, ``rows`` items down."""
    import numpy as np
    import torch
    from PIL import Image, ImageDraw

    from gankit.viz import make_grid, save_image

    tiles = torch.stack([_rgb(c[:rows].float()) for _, c in columns], dim=1).flatten(0, 1)
    scale = max(1, 96 // tiles.shape[-1])  # small images drawn larger, so the labels fit above them
    if scale > 1:
        tiles = torch.nn.functional.interpolate(tiles, scale_factor=scale, mode="nearest")
    grid = make_grid(tiles, nrow=len(columns))
    cell = grid.shape[1] / len(columns)
    canvas = Image.new("RGB", (grid.shape[1], grid.shape[0] + 14), "white")
    canvas.paste(Image.fromarray(grid), (0, 14))
    draw = ImageDraw.Draw(canvas)
    for i, (label, _) in enumerate(columns):
        draw.text((int(i * cell) + 3, 1), label, fill="black")
    save_image(np.asarray(canvas), path)


def _write(name: str, doc: dict) -> Path:
    out = ROOT / "bench" / "results" / f"translate_{name}.json"  # name = task + "_" + --name
    out.write_text(json.dumps({**doc, "environment": environment()}, indent=2) + "\n")
    print(f"wrote {out}")
    return out


# ---- pix2pix vs L1 only vs identity ------------------------------------------------------------
def pix2pix(args) -> int:
    import gankit
    from gankit.data.two_domain import load_two_domain
    from gankit.metrics.swd import swd
    from gankit.metrics.translation import paired_scores, sharpness

    held = load_two_domain(args.data, paired=True, resolution=args.resolution, max_images=args.train + args.held_out)
    src, dst = gankit.data.to_signed(held.data[args.train:]), gankit.data.to_signed(held.data_b[args.train:])
    if len(src) < 2:
        raise SystemExit(f"{args.data} has no held-out pairs beyond the first {args.train}")
    target_sharpness = sharpness(dst)
    rows, columns = [], [("input", src)]

    def score(label: str, out, extra: dict) -> None:
        row = {"model": label, **extra, **paired_scores(out, dst),
               "sharpness": sharpness(out) / target_sharpness, "swd": swd(dst, out)["swd"]}
        rows.append(row)
        print(json.dumps(row), flush=True)

    identity = _rgb(src) if dst.shape[1] == 3 else src.mean(1, keepdim=True)
    score("identity", identity, {})
    for label, overrides in (("l1-only", ["lambda_gan=0"]), ("pix2pix", [])):
        run = args.runs / f"{args.name}-{label}-s{args.seed}"
        info = _run("pix2pix", run, data=args.data, steps=args.steps, resolution=args.resolution, train=args.train,
                    seed=args.seed, overrides=overrides)
        model = gankit.load(run)
        out = model.translate(src)
        score(label, out, {**info, "steps": model.step})
        columns.append((label, out))
    columns.append(("target", dst))
    figure = ROOT / "docs" / "images" / f"translate_{args.task}_{args.name}.png"
    _figure(columns, 8, figure)
    _write(f"{args.task}_{args.name}", {"benchmark": "translate-pix2pix", "name": args.name, "data": args.data,
                       "resolution": args.resolution, "train": args.train, "held_out": len(src), "seed": args.seed,
                       "command": "python bench/translate.py " + " ".join(sys.argv[1:]), "results": rows,
                       "figure": str(figure.relative_to(ROOT))})
    return 0


# ---- cyclegan / discogan on a two-domain MNIST task ---------------------------------------------
def cycle(args) -> int:

    import gankit
    from gankit.data.two_domain import DIGIT_COLOURS, load_two_domain
    from gankit.metrics.swd import swd
    from gankit.metrics.translation import class_keep_rate, colour_class_rate, cycle_error

    truth = load_two_domain(args.data, paired=True, resolution=args.resolution)
    a = gankit.data.to_signed(truth.data[args.train:args.train + args.held_out])
    b = gankit.data.to_signed(truth.data_b[args.train:args.train + args.held_out])
    labels = truth.labels[args.train:args.train + args.held_out]
    rows, figure_columns = [], [("A", a), ("B", b)]
    for family in args.families:
        run = args.runs / f"{args.name}-{family}-s{args.seed}"
        info = _run(family, run, data=args.data, steps=args.steps, resolution=args.resolution, train=args.train,
                    seed=args.seed, overrides=args.set)
        model = gankit.load(run)
        to_b, to_a = model.translate(a, direction="AtoB"), model.translate(b, direction="BtoA")
        row = {"family": family, **info, "steps": model.step,
               "l1_to_truth_AtoB": float((to_b - b).abs().mean()), "l1_to_truth_BtoA": float((to_a - a).abs().mean()),
               "class_kept_AtoB": class_keep_rate(to_b, labels, invert="auto"),
               "class_kept_BtoA": class_keep_rate(to_a, labels, invert="auto"),
               "cycle_error_A": cycle_error(a, model.translate(to_b, direction="BtoA")),
               "cycle_error_B": cycle_error(b, model.translate(to_a, direction="AtoB")),
               "swd_AtoB": swd(b, to_b)["swd"], "swd_BtoA": swd(a, to_a)["swd"]}
        if args.data == "mnist-colour":
            row["colour_right_AtoB"] = colour_class_rate(to_b, labels, DIGIT_COLOURS)
        rows.append(row)
        print(json.dumps(row), flush=True)
        figure_columns += [(f"{family} A->B", to_b), (f"{family} B->A", to_a)]
    baseline = {"class_kept_truth_A": class_keep_rate(a, labels, invert="auto"),
                "class_kept_truth_B": class_keep_rate(b, labels, invert="auto")}
    if args.data == "mnist-colour":
        baseline["colour_right_truth_B"] = colour_class_rate(b, labels, DIGIT_COLOURS)
    figure = ROOT / "docs" / "images" / f"translate_{args.task}_{args.name}.png"
    _figure(figure_columns, 8, figure)
    _write(f"{args.task}_{args.name}", {"benchmark": "translate-cycle", "name": args.name, "data": args.data,
                       "resolution": args.resolution, "train": args.train, "held_out": len(a), "seed": args.seed,
                       "command": "python bench/translate.py " + " ".join(sys.argv[1:]), "results": rows,
                       "ground_truth": baseline, "figure": str(figure.relative_to(ROOT))})
    return 0


# ---- stargan on mnist-attributes ----------------------------------------------------------------
def stargan(args) -> int:
    import torch

    import gankit
    from gankit.data.attributes import MNIST_ATTRIBUTES, mnist_attributes, render_mnist_attributes
    from gankit.data.builtin import _mnist
    from gankit.metrics.translation import attribute_edit_success

    ds = mnist_attributes(args.resolution)
    sl = slice(args.train, args.train + args.held_out)
    x, attrs, labels = gankit.data.to_signed(ds.data[sl]), ds.attributes[sl], ds.labels[sl]
    digits = _mnist(args.resolution)[0][sl]
    run = args.runs / f"{args.name}-stargan-s{args.seed}"
    info = _run("stargan", run, data="mnist-attributes", steps=args.steps, resolution=args.resolution,
                train=args.train, seed=args.seed, overrides=args.set)
    model = gankit.load(run)
    rows, columns = [], [("input", x)]
    for k, name in enumerate(MNIST_ATTRIBUTES):
        target = attrs.clone()
        target[:, k] = 1 - target[:, k]
        edited = model.translate(x, attrs=target)
        truth = gankit.data.to_signed(torch.as_tensor(render_mnist_attributes(digits, target.numpy())))
        row = {"edit": f"flip {name}", **attribute_edit_success(edited, target, labels),
               "l1_to_truth": float((edited - truth).abs().mean())}
        rows.append(row)
        print(json.dumps(row), flush=True)
        columns.append((f"flip {name}", edited))
    figure = ROOT / "docs" / "images" / f"translate_{args.task}_{args.name}.png"
    _figure(columns, 8, figure)
    _write(f"{args.task}_{args.name}", {"benchmark": "translate-stargan", "name": args.name, "data": "mnist-attributes",
                       "resolution": args.resolution, "train": args.train, "held_out": len(x), "seed": args.seed,
                       **info, "steps": model.step,
                       "command": "python bench/translate.py " + " ".join(sys.argv[1:]), "results": rows,
                       "figure": str(figure.relative_to(ROOT))})
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("task", choices=["pix2pix", "cycle", "stargan"])
    ap.add_argument("--name", required=True, help="names the runs, JSON and figure")
    ap.add_argument("--data", default=None, help="pix2pix / cycle: the two-domain source")
    ap.add_argument("--families", nargs="+", default=["cyclegan", "discogan"])
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--train", type=int, default=8000, help="train on the first N items")
    ap.add_argument("--held-out", type=int, default=1000, help="score on the next N items")
    ap.add_argument("--steps", type=int, default=None, help="default: the small preset's")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config override of the trained families")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "translate")
    args = ap.parse_args(argv)
    if args.task != "stargan" and not args.data:
        ap.error(f"{args.task} needs --data")
    return {"pix2pix": pix2pix, "cycle": cycle, "stargan": stargan}[args.task](args)


if __name__ == "__main__":
    sys.exit(main())
