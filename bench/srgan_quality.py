"""SRGAN x4 on held-out photos: bicubic, our SRResNet stage and our SRGAN stage(s).

    OMP_NUM_THREADS=2 python bench/srgan_quality.py [--pretrain-steps 3000] [--gan-steps 1000]
        [--content dfeat --content mse | --content none] [--set k=v ...] [--tag NAME] [--out /tmp/srgan_bench]

1. Builds a training folder from ../shared/data (FairFace faces, the facades photos, the Hubble
   pictures, textures; none of the test pictures) unless it exists.
2. Trains the SRResNet stage (``--set stage=pretrain``, preset small) and, from it
   (``--init``), one adversarial stage per ``--content``; runs already there are reused.
3. Scores every model and bicubic on the held-out photos (natural_photos, photos_extra, four
   Hubble nebulae) by the BasicSR protocol (gankit.metrics.super_resolution: Y channel, border 4):
   PSNR, SSIM and the sharpness ratio (mean gradient magnitude / the original's). The LR inputs
   are the originals shrunk 4x the way training shrinks them (bicubic, antialiased, 8-bit).

Writes bench/results/srgan_quality[_TAG].json, srgan_tradeoff.png (the perception-distortion plane:
PSNR against sharpness) and srgan_crops.png (the same crop of each test picture: bicubic,
SRResNet, SRGAN..., original).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from _environment import cpu_name, environment  # noqa: E402

import gankit  # noqa: E402
from gankit.explore.upscale import upscale_tiled  # noqa: E402
from gankit.families.srgan import bicubic_up, downsample  # noqa: E402
from gankit.metrics.super_resolution import sr_scores  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
RESULTS = Path(__file__).parent / "results"
TEST = ["natural_photos/astronaut.png", "natural_photos/chelsea.png", "natural_photos/coffee.png",
        "natural_photos/kodim03.png", "photos_extra/china.jpg", "photos_extra/flower.jpg", "photos_extra/rocket.jpg",
        "nebula_hubble/734502_v838.jpg", "nebula_hubble/crabnebula.jpg", "nebula_hubble/eagle_nebula.jpg",
        "nebula_hubble/heic1517a_0.jpg"]


def build_training_folder(folder: Path, faces: int = 600) -> int:
    """Photos for training, none of TEST: faces, facade photos (the left half of each pair), Hubble."""
    if folder.is_dir() and any(folder.iterdir()):
        return sum(1 for _ in folder.iterdir())
    folder.mkdir(parents=True, exist_ok=True)
    held_out = {(SHARED / t).resolve() for t in TEST}
    n = 0
    for p in sorted((SHARED / "fairface").rglob("*.jpg"))[:faces]:
        shutil.copy(p, folder / f"face_{p.name}")
        n += 1
    for p in sorted((SHARED / "facades").rglob("*.jpg")):
        with Image.open(p) as im:
            w, h = im.size
            im.convert("RGB").crop((0, 0, w // 2, h)).save(folder / f"facade_{p.stem}.png")
        n += 1
    for sub in ("hubble", "nebula_hubble"):
        for p in sorted((SHARED / sub).iterdir()):
            if p.suffix.lower() in (".png", ".jpg") and p.resolve() not in held_out:
                with Image.open(p) as im:
                    im.convert("RGB").save(folder / f"{sub}_{p.stem}.png")
                n += 1
    for name in ("grass.png", "gravel.png", "brick.png", "hubble_deep_field.jpg"):
        with Image.open(SHARED / "photos_extra" / name) as im:
            im.convert("RGB").save(folder / f"extra_{Path(name).stem}.png")
        n += 1
    return n


def test_pairs() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(name, LR, HR) of every test picture, HR cut to a multiple of 4, in [-1, 1]."""
    out = []
    for rel in TEST:
        with Image.open(SHARED / rel) as im:
            a = np.asarray(im.convert("RGB"))
        h, w = a.shape[0] // 4 * 4, a.shape[1] // 4 * 4
        hr = torch.from_numpy(a[:h, :w].copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
        out.append((Path(rel).stem, downsample(hr, 4), hr))
    return out


def train(run: Path, steps: int, overrides: list[str], init: Path | None = None) -> float:
    if (run / "checkpoints").is_dir():
        return json.loads((run / "bench_train_s.json").read_text())["train_s"] if (run / "bench_train_s.json").exists() else 0.0
    started = time.perf_counter()
    gankit.train("srgan", data=str(run.parent / "train"), out=run, preset="small", steps=steps, overrides=overrides,
                 init=init, quiet=True)
    seconds = time.perf_counter() - started
    (run / "bench_train_s.json").write_text(json.dumps({"train_s": seconds}))
    return seconds


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pretrain-steps", type=int, default=3000)
    p.add_argument("--gan-steps", type=int, default=1000)
    p.add_argument("--content", action="append", default=None)
    p.add_argument("--set", action="append", default=[], dest="overrides")
    p.add_argument("--out", type=Path, default=Path("/tmp/srgan_bench"))
    p.add_argument("--tag", default="", help="a variant's name: results go to srgan_quality_TAG.json, no figures")
    args = p.parse_args(argv)
    contents = [c for c in args.content or ["dfeat", "mse"] if c != "none"]
    photos = build_training_folder(args.out / "train")
    pre = args.out / "srresnet"
    timings = {"srresnet": train(pre, args.pretrain_steps, ["stage=pretrain", *args.overrides])}
    runs = {"SRResNet": pre}
    for content in contents:
        run = args.out / f"srgan_{content}"
        timings[run.name] = train(run, args.gan_steps, ["stage=gan", f"content={content}", *args.overrides], init=pre)
        runs[f"SRGAN ({content})"] = run
    models = {label: gankit.load(run) for label, run in runs.items()}
    pairs = test_pairs()
    per_image: dict[str, dict[str, dict]] = {}
    outputs: dict[str, list[torch.Tensor]] = {"bicubic": []}
    for name, lr, hr in pairs:
        per_image[name] = {}
        up = bicubic_up(lr, hr.shape[-2:])
        outputs["bicubic"].append(up)
        per_image[name]["bicubic"] = sr_scores(up, hr, 4)
        for label, model in models.items():
            sr = upscale_tiled(model.generator, lr, 4, tile=128)
            outputs.setdefault(label, []).append(sr)
            per_image[name][label] = sr_scores(sr, hr, 4)
    labels = ["bicubic", *models]
    means = {label: {k: round(float(np.mean([per_image[n][label][k] for n in per_image])), 4)
                     for k in ("psnr", "ssim", "sharpness")} for label in labels}
    record = {"environment": {**environment(), "cpu": cpu_name()}, "training_photos": photos,
              "pretrain_steps": args.pretrain_steps, "gan_steps": args.gan_steps, "overrides": args.overrides,
              "train_s": {k: round(v, 1) for k, v in timings.items()}, "test": TEST, "mean": means,
              "per_image": {n: {lab: {k: round(v, 4) for k, v in s.items()} for lab, s in d.items()}
                            for n, d in per_image.items()}}
    RESULTS.mkdir(exist_ok=True)
    name = f"srgan_quality{'_' + args.tag if args.tag else ''}.json"
    (RESULTS / name).write_text(json.dumps(record, indent=1) + "\n")
    if not args.tag:
        plot_tradeoff(means, RESULTS / "srgan_tradeoff.png")
        save_crops(pairs, outputs, labels, RESULTS / "srgan_crops.png")
    print(json.dumps({"train_s": record["train_s"], "mean": means}, indent=1))


def plot_tradeoff(means: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    for label, m in means.items():
        ax.scatter(m["psnr"], m["sharpness"])
        ax.annotate(label, (m["psnr"], m["sharpness"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.axhline(1.0, color="grey", lw=0.5, ls="--")
    ax.set_xlabel("PSNR on Y (dB), higher = less distortion")
    ax.set_ylabel("sharpness ratio (1 = as sharp as the original)")
    ax.set_title("x4 on held-out photos: perception vs distortion")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def save_crops(pairs, outputs, labels, path: Path, size: int = 96) -> None:
    """One row per test picture: the same centre crop of each method's output, then the original."""
    from gankit.viz import make_grid, save_image

    tiles = []
    for i, (_, _, hr) in enumerate(pairs):
        h, w = hr.shape[-2:]
        y, x = (h - size) // 2, (w - size) // 2
        for label in labels:
            tiles.append(outputs[label][i][0, :, y:y + size, x:x + size])
        tiles.append(hr[0, :, y:y + size, x:x + size])
    save_image(make_grid(torch.stack(tiles).clamp(-1, 1), nrow=len(labels) + 1), path)


if __name__ == "__main__":
    main()
