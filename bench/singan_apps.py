"""SinGAN's applications on trained runs: the pictures of docs/families/singan.md and their numbers.

    python bench/singan_apps.py scene RUN        # harmonise, edit, paint, animate on a run of `china`
    python bench/singan_apps.py sr RUN HR.png    # super-resolution: RUN trained on HR shrunk 4x

`scene` builds its inputs from the built-in `china` picture, deterministically: a blue-tinted copy
of the pagoda pasted to the right (harmonisation), the pagoda's roof copied higher (editing), and a
flat-colour clip-art painting drawn with PIL (paint-to-image). Each input, its mask and the outputs
go to docs/images/singan_<app>.png. `sr` upscales RUN's training picture 4x and scores it
against HR (PSNR/SSIM, and bicubic's), into bench/results/singan_sr.json.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw

import gankit
from gankit.explore import singan as S
from gankit.viz import make_grid, render_samples, save_image

ROOT = Path(__file__).resolve().parents[1]
IMAGES, RESULTS = ROOT / "docs" / "images", ROOT / "bench" / "results"


def to_tensor(im: Image.Image) -> torch.Tensor:
    import numpy as np

    return torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1)[None].float().div(127.5).sub(1)


def pasted_pagoda(real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The pagoda (the picture's left third) tinted blue and pasted at the right: (image, mask)."""
    _, _, h, w = real.shape
    y0, y1, x0, x1 = int(0.1 * h), int(0.75 * h), int(0.06 * w), int(0.3 * w)
    patch = real[:, :, y0:y1, x0:x1].clone()
    patch = (patch * torch.tensor([0.6, 0.8, 1.3]).view(1, 3, 1, 1) + torch.tensor([-0.2, 0.0, 0.25]).view(1, 3, 1, 1))
    out, mask = real.clone(), torch.zeros(1, 1, h, w)
    dx, dy = int(0.6 * w), int(0.05 * h)
    out[:, :, y0 + dy:y1 + dy, dx:dx + x1 - x0] = patch.clamp(-1, 1)
    mask[:, :, y0 + dy:y1 + dy, dx:dx + x1 - x0] = 1
    return out, mask


def copied_roof(real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Editing: the pagoda's lower half copied a tenth of the width to the right, a crude cut and paste."""
    _, _, h, w = real.shape
    y0, y1, x0, x1, dx = int(0.45 * h), int(0.8 * h), int(0.05 * w), int(0.3 * w), int(0.1 * w)
    out, mask = real.clone(), torch.zeros(1, 1, h, w)
    out[:, :, y0:y1, x0 + dx:x1 + dx] = real[:, :, y0:y1, x0:x1]
    mask[:, :, y0:y1, x0 + dx:x1 + dx] = 1
    return out, mask


def clipart(h: int, w: int) -> torch.Tensor:
    """A flat-colour painting of the scene: sky, lake, a pagoda of three storeys, trees."""
    im = Image.new("RGB", (w, h), (150, 190, 230))
    d = ImageDraw.Draw(im)
    d.rectangle([0, int(0.62 * h), w, h], fill=(120, 150, 150))  # lake
    d.ellipse([int(0.55 * w), int(0.55 * h), int(1.2 * w), int(1.3 * h)], fill=(40, 90, 40))  # trees right
    d.ellipse([-int(0.2 * w), int(0.6 * h), int(0.35 * w), int(1.3 * h)], fill=(50, 100, 40))
    cx = int(0.2 * w)
    for i, (top, bottom) in enumerate([(0.12, 0.3), (0.3, 0.5), (0.5, 0.72)]):
        half = int((0.06 + 0.025 * i) * w)
        d.rectangle([cx - half, int(top * h), cx + half, int(bottom * h)], fill=(150, 40, 30))
        d.polygon([(cx - half - 8, int(top * h) + 6), (cx, int(top * h) - 8), (cx + half + 8, int(top * h) + 6)],
                  fill=(60, 50, 40))
    return to_tensor(im)


def strip(images: list[torch.Tensor]) -> torch.Tensor:
    """Images side by side; a (1, 1, H, W) mask in [0, 1] shown in grey levels."""
    return make_grid(torch.cat([(x * 2 - 1).expand(-1, 3, -1, -1) if x.shape[1] == 1 else x for x in images]),
                     nrow=len(images))


def scene(run: Path) -> dict:
    model = gankit.load(run)
    G = model.generator
    real = G.real(len(G) - 1).cpu()
    n = len(G) - 1
    out = {"run": str(run), "scales": len(G)}
    pasted, mask = pasted_pagoda(real)
    edited, emask = copied_roof(real)
    painting = clipart(*real.shape[-2:])
    inputs = IMAGES / "singan_inputs"  # the same inputs as files, for the CLI commands on the family page
    for name, x in (("pasted", pasted), ("mask", mask * 2 - 1), ("edited", edited), ("edit_mask", emask * 2 - 1),
                    ("clipart", painting)):
        save_image(make_grid(x, nrow=1, padding=0), inputs / f"{name}.png")
    for k in (max(1, n - 3), max(1, n - 2)):
        h = S.harmonize(model, pasted, mask, start_scale=k)
        save_image(strip([pasted, h["mask"], h["output"]]), IMAGES / f"singan_harmonize_k{k}.png")
    e = S.harmonize(model, edited, emask, start_scale=max(1, n - 2), mode="editing")
    save_image(strip([edited, e["unmasked"], e["output"]]), IMAGES / "singan_edit.png")
    paints = [painting] + [S.paint(model, painting, start_scale=k) for k in (max(1, n - 4), max(1, n - 3))]
    save_image(strip(paints), IMAGES / "singan_paint.png")
    t = time.perf_counter()
    paints_q = S.paint(model, painting, start_scale=max(1, n - 4), quantize=True)
    out["paint_quantize_retrain_s"] = round(time.perf_counter() - t, 1)
    save_image(strip([painting, paints[1], paints_q]), IMAGES / "singan_paint_quantize.png")
    frames = S.animate(model, frames=30, start_scale=min(2, n))
    save_image(render_samples(frames[::5], nrow=6), IMAGES / "singan_animate_frames.png")
    from gankit.viz.animation import save_animation

    save_animation([make_grid(f[None], nrow=1, padding=0) for f in frames], IMAGES / "singan_animate.gif", fps=10)
    wide = S.sample(model, 3, scale_w=2.0, seed=3)
    save_image(render_samples(wide, nrow=1), IMAGES / "singan_wide.png")
    return out


def sr(run: Path, hr_path: Path) -> dict:
    model = gankit.load(run)
    G = model.generator
    lowres = G.real(len(G) - 1).cpu()
    hr = S.as_image(str(hr_path), G.channels)
    size = S.upscaled_size(lowres.shape[-2:], 4)
    hr = S._resize(hr, size) if tuple(hr.shape[-2:]) != size else hr
    t = time.perf_counter()
    up = S.upscale(model, scale=4)
    scores = S.upscale_scores(up, hr, lowres)
    save_image(strip([S.bicubic(lowres, size), up, hr]), IMAGES / "singan_sr.png")
    record = {"run": str(run), "reference": str(hr_path), "lowres": list(lowres.shape[-2:]), "size": list(size),
              "upscale_s": round(time.perf_counter() - t, 2), **{k: round(v, 4) for k, v in scores.items()}}
    (RESULTS / "singan_sr.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


if __name__ == "__main__":
    what = sys.argv[1]
    result = scene(Path(sys.argv[2])) if what == "scene" else sr(Path(sys.argv[2]), Path(sys.argv[3]))
    print(json.dumps(result))
