"""SinGAN per CPU minute: train one picture with a variant's options, then score its samples.

    OMP_NUM_THREADS=1 python bench/singan_budget.py IMAGE --name NAME [--preset small] [--set k=v ...]

Records wall time, peak memory (max RSS) and, at start scales 0 and 1 (16 samples each): the
patch SWD against the picture (gankit.metrics.single_image.patch_swd, x1e3, lower = closer patch
statistics), the paper's diversity (pixel std over samples / the picture's std) and SIFID when
Inception weights are on disk. Appends one record to bench/results/singan_budget.json and writes
the sample grid (the picture first) to bench/results/singan_<name>.png.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

import torch

import gankit
from gankit.config import parse_overrides
from gankit.families.singan import SinGAN
from gankit.metrics.single_image import diversity, patch_swd

RESULTS = Path(__file__).parent / "results"


def samples_at(G, n: int, start_scale: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    noises = [torch.randn(n, *shape, generator=gen) for shape in G.noise_shapes()]
    with torch.no_grad():
        return G.eval().synthesize(noises, rec_below=start_scale).clamp(-1, 1)


def sifid_or_none(real, fakes):
    from gankit.metrics.features import find_inception_weights

    if find_inception_weights() is None:
        return None
    from gankit.metrics.single_image import sifid, sifid_extractor

    return float(sifid(real, fakes, sifid_extractor()).mean())


def score(model, n: int = 16) -> dict:
    G = model.generator
    real = G.real(len(G) - 1)
    out = {}
    for k in (0, 1):
        fakes = samples_at(G, n, k)
        swd = patch_swd(real, fakes)
        out[f"start{k}"] = {"patch_swd": round(float(swd.mean()), 2), "patch_swd_std": round(float(swd.std()), 2),
                            "diversity": round(diversity(real, fakes), 4), "sifid": sifid_or_none(real, fakes)}
    rec = G.eval().reconstruct()
    out["reconstruction_rmse"] = round(float((rec - real).square().mean().sqrt()), 4)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("image")
    p.add_argument("--name", required=True)
    p.add_argument("--preset", default="small")
    p.add_argument("--set", action="append", default=[], dest="overrides")
    p.add_argument("--out", default="/tmp/singan_budget")
    p.add_argument("--resume", action="store_true",
                   help="continue the run NAME stopped early; its recorded train_s is added to this part's")
    args = p.parse_args(argv)
    overrides = parse_overrides(SinGAN.Config, args.overrides)
    run = Path(args.out) / args.name
    path = RESULTS / "singan_budget.json"
    records = json.loads(path.read_text()) if path.exists() else []
    earlier = next((r for r in records if r["name"] == args.name), None) if args.resume else None
    started = time.perf_counter()
    if args.resume:
        result = gankit.train(resume=run, quiet=True)
    else:
        result = gankit.train("singan", data=args.image, out=run, preset=args.preset, overrides=overrides, quiet=True)
    seconds = time.perf_counter() - started + (earlier["train_s"] if earlier else 0.0)
    model = gankit.load(run)
    record = {"name": args.name, "image": args.image, "preset": args.preset, "overrides": args.overrides,
              "steps": result.step, "train_s": round(seconds, 1),
              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
              "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
              "torch": torch.__version__, "sizes": [list(s) for s in model.generator.sizes], **score(model)}
    from gankit.viz import render_samples, save_image

    G = model.generator
    grid = torch.cat([G.real(len(G) - 1), samples_at(G, 7, 0), G.reconstruct(), samples_at(G, 7, 1)])
    save_image(render_samples(grid, nrow=8), RESULTS / f"singan_{args.name}.png")
    if earlier:
        record["resumed_at_step"] = earlier["steps"]
        record["peak_rss_mb"] = max(record["peak_rss_mb"], earlier["peak_rss_mb"])
    records = json.loads(path.read_text()) if path.exists() else []
    records = [r for r in records if r["name"] != args.name] + [record]
    path.write_text(json.dumps(records, indent=1) + "\n")
    json.dump(record, sys.stdout)
    print()


if __name__ == "__main__":
    main()
