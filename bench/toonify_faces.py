"""Toonify on a CPU: fine-tune the FairFace StyleGAN2 on a second domain, blend, measure.

Pinkney & Adler 2020 (arXiv:2010.05334): a base model briefly fine-tuned on another domain, then the
low-resolution blocks of one and the high-resolution blocks of the other. Two second domains, both
offline:

- ``cartoon``: FairFace faces drawn by a fixed posterised-painting filter (PIL only, :func:`cartoon`:
  flat colour regions, 3-bit colours, dark outlines). Built from the faces the base model trained
  on, so it differs in style only.
- ``hubble``: the 96 Hubble pictures of ``../shared/data/hubble`` (nebulae, galaxies, planets;
  ESA/Hubble CC BY 4.0, NASA public domain): person -> nebula.

For each domain: ``gankit train stylegan2 --init BASE --data DOMAIN`` for ``--steps`` steps of 8 images,
then blends at every swap resolution (hard swap, tuned model's blocks up to the swap: Toonify) and
one smooth blend. Measured for base, tuned and each blend on the same ws (``--n`` seeds, psi 0.7):
SWD (x1e3, Laplacian-pyramid patches, ProGAN's) to the domain's images and to FairFace: where the
model sits between the domains; and dlib's identity distance to the base model's image of the same w
(same person below 0.6): whether the face survives. Also a projected held-out photo through each.

    python bench/toonify_faces.py --base runs/bench_faces/stylegan2_all_v2 --steps 400

Writes ``bench/results/toonify_faces.json`` and ``docs/images/toolbox/toonify_<domain>.png``
(rows: base, tuned, blends at 8, 16, 32 px and the smooth blend; first the real held-out photo,
then its projection (W+, with the base model) through each model, then 7 seeds).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter, ImageOps

import gankit
from gankit.explore.blend import blend_models, blend_rows

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "toonify_faces.json"
IMAGES = ROOT / "docs" / "images" / "toolbox"
HUBBLE = ROOT.parent / "shared" / "data" / "hubble" / "images"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _environment import cpu_name, environment  # noqa: E402


def cartoon(img: Image.Image) -> Image.Image:
    """A fixed posterised-painting filter (128 px in, 64 px out): three median filters for flat
    regions, colours stretched and posterised to 3 bits per channel, and dark outlines where the
    blurred image has strong edges (thin or isolated edges removed, the rest thickened)."""
    big = img.resize((256, 256), Image.BICUBIC)
    flat = big
    for _ in range(3):
        flat = flat.filter(ImageFilter.MedianFilter(7))
    flat = ImageOps.posterize(ImageOps.autocontrast(flat, cutoff=1), 3).filter(ImageFilter.MedianFilter(5))
    edges = np.asarray(big.filter(ImageFilter.GaussianBlur(3.5)).convert("L").filter(ImageFilter.FIND_EDGES),
                       np.float32)
    ink = Image.fromarray(((edges > 14) * 255).astype(np.uint8))
    ink = np.asarray(ink.filter(ImageFilter.MinFilter(3)).filter(ImageFilter.MaxFilter(5)))[..., None] > 0
    out = np.where(ink, 20, np.asarray(flat)).astype(np.uint8)
    return Image.fromarray(out).resize((64, 64), Image.LANCZOS)


def build_cartoons(folder: Path, n: int) -> Path:
    if folder.is_dir() and len(list(folder.glob("*.png"))) >= n:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    faces = gankit.data.load_dataset("fairface", resolution=128, max_images=n).data
    for i, face in enumerate(faces):
        cartoon(Image.fromarray(face.permute(1, 2, 0).numpy())).save(folder / f"{i:04d}.png")
    return folder


def fine_tune(base: Path, data: Path, out: Path, steps: int) -> dict:
    if (out / "tune.json").is_file():
        return json.loads((out / "tune.json").read_text())
    started = time.perf_counter()
    result = gankit.train("stylegan2", data=str(data), out=out, preset="small", init=base, steps=steps,
                          quiet=True, overrides={"snapshot_every": 100, "checkpoint_every": 500})
    info = {"steps": result.step, "images": result.step * 8, "train_s": round(time.perf_counter() - started, 1)}
    (out / "tune.json").write_text(json.dumps(info))
    return info


def domain_images(name: str, data: Path) -> torch.Tensor:
    return gankit.data.load_dataset(str(data), resolution=64, channels=3).data.float() / 127.5 - 1


def measure(models: dict, ws: torch.Tensor, domain: torch.Tensor, faces: torch.Tensor) -> dict:
    from gankit.metrics.identity import identity_distance
    from gankit.metrics.swd import swd

    base_images = None
    rows = {}
    for label, model in models.items():
        images = torch.cat([blend_rows([model], chunk) for chunk in ws.split(100)])
        if base_images is None:
            base_images = images
        ident = identity_distance(base_images, images)
        rows[label] = {"swd_to_domain": round(swd(domain, images)["swd"], 2),
                       "swd_to_fairface": round(swd(faces, images)["swd"], 2),
                       "identity_to_base_mean": round(float(ident.mean()), 3),
                       "same_person_rate": round(float((ident < 0.6).float().mean()), 3)}
        print(label, rows[label], flush=True)
    return rows


def project_photo(base_model, photo: torch.Tensor, steps: int):
    """The photo's W+ latent and noise maps found with the base model (``gankit project``)."""
    from gankit.explore.project import project

    result = project(base_model, photo, space="w+", steps=steps)
    return result.w, result.noise


@torch.no_grad()
def grid(models: dict, photo: torch.Tensor, photo_w: torch.Tensor, noise: dict, ws: torch.Tensor) -> torch.Tensor:
    """One row per model: the real photo (first row only), the photo's latent rendered with its
    projected noise maps (the toonified portrait), then the seeds' ws."""
    from gankit.explore.project import noise_maps

    cells = []
    for r, model in enumerate(models.values()):
        with noise_maps(model, noise):
            portrait = model.synthesis(photo_w, noise="const").clamp(-1, 1).float().cpu()
        cells += [photo if r == 0 else torch.ones_like(photo), portrait, blend_rows([model], ws)]
    return torch.cat(cells)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, default=ROOT / "runs" / "bench_faces" / "stylegan2_all_v2")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "toonify")
    ap.add_argument("--steps", type=int, default=400, help="fine-tuning steps (batch 8) per domain")
    ap.add_argument("--n", type=int, default=200, help="seeds measured per model")
    ap.add_argument("--domains", nargs="+", default=["cartoon", "hubble"])
    ap.add_argument("--project-steps", type=int, default=300)
    ap.add_argument("--grid-only", action="store_true", help="redraw the figures; keep the measured rows")
    args = ap.parse_args()
    torch.set_num_threads(1)
    base = gankit.load(args.base)
    faces = gankit.data.load_dataset("fairface", resolution=64).data[:500].float() / 127.5 - 1
    z = torch.randn(args.n, base.latent_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ws = base.mapping(z, truncation=0.7)
    from gankit.metrics.face_classifier import held_out_split, labels_from_dataset

    ds = gankit.data.load_dataset("fairface", resolution=64)
    _, held = held_out_split(labels_from_dataset(ds))
    photo = ds.data[held[:1]].float() / 127.5 - 1
    started = time.perf_counter()
    photo_w, photo_noise = project_photo(base, photo, args.project_steps)
    project_s = time.perf_counter() - started
    doc = {"base": str(args.base.resolve().relative_to(ROOT)) if args.base.resolve().is_relative_to(ROOT) else str(args.base),
           "steps": args.steps, "n": args.n, "truncation": 0.7,
           "project_steps": args.project_steps, "project_s": round(project_s, 1), "domains": {},
           "environment": {**environment(), "cpu": cpu_name()}}
    if RESULTS.exists():
        doc["domains"] = json.loads(RESULTS.read_text()).get("domains", {})
    for name in args.domains:
        data = build_cartoons(args.work / "cartoon_faces", 1000) if name == "cartoon" else HUBBLE
        tuned_dir = args.work / f"tuned_{name}"
        tune = fine_tune(args.base, data, tuned_dir, args.steps)
        tuned = gankit.load(tuned_dir)
        models = {"base": base, "tuned": tuned}
        for swap in (8, 16, 32):
            models[f"swap{swap}"] = blend_models(base, tuned, swap)
        models["smooth16_w0.5"] = blend_models(base, tuned, 16, width=0.5)
        domain = domain_images(name, data)
        rows = doc["domains"][name]["rows"] if args.grid_only else measure(models, ws, domain, faces)
        from gankit.viz import render_samples, save_image

        out = IMAGES / f"toonify_{name}.png"
        save_image(render_samples(grid(models, photo, photo_w, photo_noise, ws[:7]), nrow=9), out)
        Image.open(out).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)  # < 300 KB
        doc["domains"][name] = {"data": os.path.relpath(data, ROOT), "fine_tune": tune, "rows": rows, "grid": str(out.relative_to(ROOT)),
                                "grid_rows": list(models)}
        RESULTS.write_text(json.dumps(doc, indent=2))
    print(json.dumps(doc["domains"], indent=1)[:3000])


if __name__ == "__main__":
    main()
