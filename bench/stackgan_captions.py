"""StackGAN on mnist-captions: caption fidelity, R-precision, Stage-II against Stage-I, and a
single-stage baseline on the same embeddings.

    OMP_NUM_THREADS=2 python bench/stackgan_captions.py [--preset small] [--set k=v ...]
        [--out /tmp/stackgan_bench] [--n 500] [--stage1-only] [--tag NAME]

Trains (or reuses) two runs on the built-in ``mnist-captions`` training split:
- ``stackgan``: the preset (sentence encoder, Stage-I at resolution/2, Stage-II at resolution);
- ``single``: the same sentence-encoder steps, then Stage-I alone at the full resolution for all
  the remaining steps (``resolution`` x2 with ``up_factor`` 2 and no Stage-II steps; its samples
  are read at Stage-I's size): a one-stage conditional GAN on the same kind of embedding.
Then, for ``--n`` captions of the held-out combinations (the test split) and of combinations
seen in training, draws one image per caption and scores:
- caption fidelity (gankit.metrics.captions: digit by the MNIST classifier, stroke and background
  colour and size from pixels; per attribute and all correct);
- R-precision (AttnGAN §4.1) with the run's own sentence encoder and image encoder;
- Stage-I against Stage-II of the same run: sharpness (mean |Laplacian| over the real images')
  and SWD (x1e3) against real renders of the same captions.
Writes bench/results/stackgan_captions[_TAG].json and, without a tag, stackgan_grid.png (rows:
captions; columns: Stage-I, Stage-II, single-stage). ``--stage1-only`` stops the run where Stage-II
would start and scores Stage-I alone, with no baseline: Stage-I is frozen once Stage-II starts, so
this compares text encoders (``--set text_encoder=minilm``) at a fraction of the cost.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from _environment import cpu_name, environment  # noqa: E402

import gankit  # noqa: E402
from gankit.config import build_config, parse_overrides  # noqa: E402
from gankit.data.captions import render_mnist_captions  # noqa: E402
from gankit.engine import checkpoint as ckpt  # noqa: E402
from gankit.families.stackgan import StackGAN, encode_text  # noqa: E402
from gankit.metrics.captions import caption_fidelity  # noqa: E402
from gankit.metrics.swd import swd  # noqa: E402
from gankit.metrics.translation import sharpness  # noqa: E402
from gankit.nn.text_encoder import ImageEncoder, r_precision  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def train(run: Path, preset: str, overrides: list[str]) -> float:
    if (run / "checkpoints").is_dir():
        saved = run / "bench_train_s.json"
        return json.loads(saved.read_text())["train_s"] if saved.exists() else 0.0
    started = time.perf_counter()
    gankit.train("stackgan", data="mnist-captions", out=run, preset=preset, overrides=overrides, quiet=True)
    seconds = time.perf_counter() - started
    (run / "bench_train_s.json").write_text(json.dumps({"train_s": seconds}))
    return seconds


def image_encoder(run: Path, config) -> ImageEncoder:
    """The run's image encoder (trained with its sentence encoder), from its checkpoint."""
    tensors, _ = ckpt.load_checkpoint(ckpt.latest_checkpoint(run))
    net = StackGAN.build_discriminators(config, (config.channels, config.resolution, config.resolution))["I"]
    net.load_state_dict(ckpt.prefixed(tensors, "net.I"))
    return net.eval()


@torch.no_grad()
def draw(model, captions: list[str], stage: int, seed: int = 0) -> torch.Tensor:
    """One image per caption from ``stage`` (1: Stage-I at its own size; 2: the final image)."""
    G = model.generator.eval()
    c = model.config
    ids = encode_text(c, captions, check=False)
    z = StackGAN.sample_latent(c, len(captions), generator=torch.Generator().manual_seed(seed))
    before = int(G.stages)
    G.stages.fill_(stage)
    try:
        out = torch.cat([G(z[i:i + 250], ids[i:i + 250]) for i in range(0, len(ids), 250)]).clamp(-1, 1)
    finally:
        G.stages.fill_(before)
    low = c.resolution // c.up_factor
    return F.interpolate(out, size=low, mode="area") if stage == 1 else out


def scores(model, run: Path, digits, images: torch.Tensor) -> dict:
    c = model.config
    low = c.resolution // c.up_factor
    fid = caption_fidelity(images, digits.attributes)
    text = model.generator.text(encode_text(c, digits.captions, check=False))
    seen = image_encoder(run, c)(F.interpolate(images, size=low, mode="area"))
    real = digits.images.float() / 127.5 - 1
    real = F.interpolate(real, size=images.shape[-1], mode="area") if real.shape[-1] != images.shape[-1] else real
    return {**{k: round(float(v), 4) for k, v in fid.items()},
            "r_precision": round(r_precision(text, seen, candidates=min(100, len(text))), 4),
            "sharpness_ratio": round(sharpness(images) / sharpness(real), 3),
            "swd_x1e3": round(float(swd(real, images)["swd"]), 2)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="small")
    p.add_argument("--set", action="append", default=[], dest="overrides")
    p.add_argument("--out", type=Path, default=Path("/tmp/stackgan_bench"))
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--stage1-only", action="store_true", help="train and score Stage-I only, no baseline")
    p.add_argument("--tag", default="", help="a variant's name: results go to stackgan_captions_TAG.json")
    args = p.parse_args(argv)
    base = build_config(StackGAN.Config, preset=args.preset, overrides=parse_overrides(StackGAN.Config, args.overrides))
    if args.stage1_only:
        args.overrides = [*args.overrides, f"steps={base.stage2_start}"]
    single = [*args.overrides, f"resolution={2 * base.resolution}", "up_factor=2",
              f"stage1_steps={base.steps - base.text_steps}"]
    timings = {"stackgan": train(args.out / "stackgan", args.preset, args.overrides)}
    if not args.stage1_only:
        timings["single"] = train(args.out / "single", args.preset, single)
    two = gankit.load(args.out / "stackgan")
    one = None if args.stage1_only else gankit.load(args.out / "single")
    record = {"environment": {**environment(), "cpu": cpu_name()}, "preset": args.preset,
              "overrides": args.overrides, "train_s": {k: round(v, 1) for k, v in timings.items()}, "n": args.n}
    grid = []
    for split in ("test", "train"):
        digits = render_mnist_captions(args.n, resolution=base.resolution, seed=1, split=split)
        stage1 = draw(two, digits.captions, 1)
        up = lambda x: F.interpolate(x, size=base.resolution, mode="nearest")  # noqa: E731
        record[split] = {"stage1": scores(two, args.out / "stackgan", digits, up(stage1))}
        if one is None:
            continue
        stage2, flat = draw(two, digits.captions, 2), draw(one, digits.captions, 1)
        record[split].update(stage2=scores(two, args.out / "stackgan", digits, stage2),
                             single_stage=scores(one, args.out / "single", digits, flat))
        if split == "test":
            grid = [t for i in range(8) for t in (up(stage1[i:i + 1])[0], stage2[i], flat[i])]
            record["grid_captions"] = digits.captions[:8]
    RESULTS.mkdir(exist_ok=True)
    name = f"stackgan_captions{'_' + args.tag if args.tag else ''}.json"
    (RESULTS / name).write_text(json.dumps(record, indent=1) + "\n")
    if grid and not args.tag:
        from gankit.viz import make_grid, save_image

        save_image(make_grid(torch.stack(grid), nrow=3), RESULTS / "stackgan_grid.png")
    print(json.dumps({k: record[k] for k in ("train_s", "test", "train")}, indent=1))


if __name__ == "__main__":
    main()
