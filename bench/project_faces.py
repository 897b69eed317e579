"""Projection of real faces into the FairFace StyleGAN2 (docs/toolbox.md, "Projecting a real photo").

Model: ``runs/bench_faces/stylegan2_all_v2`` (64x64, trained on all 2,000 built-in FairFace faces).
Faces: the held-out 400 of the face classifier's ``held_out_split`` (first ``--n``). The GAN saw
these faces in training; the ``unseen`` stage projects faces it never saw: the CelebA sample in
``../shared/data/celeba_attr_sample`` (numbers only: its licence forbids redistribution) and two
public-domain photos (skimage's astronaut if installed, matplotlib's Grace Hopper), aligned as
FairFace's faces are (dlib's 5 landmarks, ``get_face_chip`` with padding 0.25).

Stages, merged into ``bench/results/project_faces.json``:

* ``study``: candidate offline losses on the first ``--study-n`` faces in W (PSNR, SSIM, dlib
  identity distance), ranked by the mean of their three ranks;
* ``main``: W and W+ with the chosen loss on ``--n`` faces; seconds per image batched and alone
  (one core); the grid ``docs/images/toolbox/project_faces.png`` (targets / W / W+);
* ``unseen``: the same on faces the GAN never saw;
* ``steps``: 100, 200 and 400 steps on ``--probe-n`` faces (is the step count enough?).

    OMP_NUM_THREADS=1 taskset -c 1 python bench/project_faces.py --stages study main unseen
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

import gankit
from gankit.explore.project import DEFAULT_LOSS, project

from _environment import cpu_name, environment  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "runs" / "bench_faces" / "stylegan2_all_v2"
OUT = ROOT / "bench" / "results" / "project_faces.json"
GRID = ROOT / "docs" / "images" / "toolbox" / "project_faces.png"
CELEBA = ROOT.parent / "shared" / "data" / "celeba_attr_sample" / "images"
CANDIDATES = ("mse", "l1", "msssim", "dfeat", "mse+dfeat", "mse+msssim", "mse+face", "mse+msssim+dfeat",
              "l1+msssim", "msssim+0.1*face", "msssim+face")


def held_out_faces(n: int) -> tuple[torch.Tensor, list[int]]:
    from gankit.data.loader import load_dataset
    from gankit.metrics.face_classifier import held_out_split, labels_from_dataset

    ds = load_dataset("fairface", resolution=64)
    _, held = held_out_split(labels_from_dataset(ds))
    idx = held[:n]
    return ds.data[idx].float() / 127.5 - 1, [int(i) for i in idx]


def scores(pred: torch.Tensor, target: torch.Tensor) -> dict:
    """Means over images: PSNR, SSIM, dlib identity distance, share of faces dlib calls the same person."""
    from gankit.metrics.identity import SAME_PERSON, identity_distance
    from gankit.metrics.translation import paired_scores

    s = paired_scores(pred, target)
    ident = identity_distance(pred, target)
    return {"psnr": round(s["psnr"], 3), "ssim": round(s["ssim"], 4), "identity": round(float(ident.mean()), 4),
            "same_person": round(float((ident < SAME_PERSON).float().mean()), 3)}


def baselines(model, target: torch.Tensor) -> dict:
    """The mean-w image for every face, and each real face against the next one (another person)."""
    with torch.no_grad():
        mean = model.synthesis(model.w_avg[None]).clamp(-1, 1).expand_as(target)
    return {"mean_w_image": scores(mean, target), "another_real_face": scores(target.roll(1, 0), target)}


def run_projection(model, target, *, space, steps, loss, **kw) -> tuple[dict, torch.Tensor]:
    t = time.perf_counter()
    result = project(model, target, space=space, steps=steps, loss=loss, **kw)
    seconds = time.perf_counter() - t
    out = {"space": space, "loss": result.loss, "steps": steps, **scores(result.image, target),
           "seconds": round(seconds, 1), "seconds_per_image": round(seconds / target.shape[0], 2)}
    print(json.dumps(out), flush=True)
    return out, result.image


def stage_study(model, args, previous: dict | None = None) -> dict:
    """Rows already measured on the same faces and steps are kept; only new candidates run."""
    target, idx = held_out_faces(args.study_n)
    same = previous and previous.get("faces") == idx and previous.get("steps") == args.study_steps
    done = {r["loss"]: r for r in (previous or {}).get("rows", [])} if same else {}
    rows = [done.get(loss) or run_projection(model, target, space="w", steps=args.study_steps, loss=loss)[0]
            for loss in CANDIDATES]
    for key, sign in (("psnr", -1), ("ssim", -1), ("identity", 1)):
        order = sorted(range(len(rows)), key=lambda i: sign * rows[i][key])
        for rank, i in enumerate(order, 1):
            rows[i][f"rank_{key}"] = rank
    for r in rows:
        r["mean_rank"] = round((r["rank_psnr"] + r["rank_ssim"] + r["rank_identity"]) / 3, 2)
    best = min(rows, key=lambda r: r["mean_rank"])
    no_d = min((r for r in rows if "dfeat" not in r["loss"]), key=lambda r: r["mean_rank"])
    return {"faces": idx, "steps": args.study_steps, "space": "w", "rows": rows, "best": best["loss"],
            "best_without_discriminator": no_d["loss"], "baselines": baselines(model, target)}


def stage_main(model, args) -> dict:
    target, idx = held_out_faces(args.n)
    out = {"faces": idx, "loss": args.loss, "steps": args.steps, "baselines": baselines(model, target)}
    images = {}
    for space in ("w", "w+"):
        out[space], images[space] = run_projection(model, target, space=space, steps=args.steps, loss=args.loss)
        alone = [run_projection(model, target[i:i + 1], space=space, steps=args.steps, loss=args.loss)[0]["seconds"]
                 for i in range(args.alone)]
        out[space]["seconds_per_image_alone"] = round(sum(alone) / len(alone), 1)
    write_grid(target[:8], images["w"][:8], images["w+"][:8])
    return out


def write_grid(target, w, wplus) -> None:
    from gankit.viz import make_grid, save_image

    rows = torch.cat([target, w, wplus])
    rows = torch.nn.functional.interpolate(rows, scale_factor=2, mode="nearest")
    save_image(make_grid(rows, nrow=target.shape[0]), GRID)
    print(f"wrote {GRID} ({GRID.stat().st_size // 1024} KB)")


def aligned_unseen_faces(n_celeba: int) -> tuple[torch.Tensor, list[str]]:
    """Faces the GAN never saw, cut as FairFace's were: dlib 5-point landmarks, get_face_chip
    (padding 0.25) at 256 px, then Lanczos down to 64. The first ``n_celeba`` CelebA photos with a
    face found, then the public-domain photos."""
    from PIL import Image

    from gankit.data.faces import load_models

    models = load_models("hog", 5)
    photos: list = sorted(CELEBA.glob("*.jpg"))[:n_celeba + 4]  # a few spare: HOG misses some
    try:
        import skimage.data

        photos.append(("astronaut", skimage.data.astronaut()))
    except ImportError:
        pass
    import matplotlib

    photos.append(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg")
    faces, names = [], []
    for item in photos:
        name, img = item if isinstance(item, tuple) else (item.name, np.asarray(Image.open(item).convert("RGB")))
        dets = models.detector(img, 1)
        if not len(dets) or (name[0].isdigit() and sum(n[0].isdigit() for n in names) >= n_celeba):
            print(f"left out {name}" + ("" if len(dets) else ": no face found"))
            continue
        det = max(dets, key=lambda d: d.area())
        chip = models.dlib.get_face_chip(img, models.predictor(img, det), size=256, padding=0.25)
        small = np.asarray(Image.fromarray(chip).resize((64, 64), Image.Resampling.LANCZOS))
        faces.append(torch.from_numpy(small.copy()).permute(2, 0, 1).float() / 127.5 - 1)
        names.append(name)
    return torch.stack(faces), names


def stage_unseen(model, args) -> dict:
    target, names = aligned_unseen_faces(args.unseen_n)
    out = {"faces": names, "loss": args.loss, "steps": args.steps, "baselines": baselines(model, target)}
    for space in ("w", "w+"):
        out[space], _ = run_projection(model, target, space=space, steps=args.steps, loss=args.loss)
    return out


def stage_steps(model, args) -> dict:
    """How the result improves with the step count (a few faces, the chosen loss)."""
    target, idx = held_out_faces(args.probe_n)
    return {"faces": idx, "rows": [run_projection(model, target, space=space, steps=steps, loss=args.loss)[0]
                                   for space in ("w", "w+") for steps in (100, 200, 400)]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stages", nargs="+", default=["study", "main", "unseen", "steps"], choices=["study", "main", "unseen", "steps"])
    p.add_argument("--n", type=int, default=50)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--study-n", type=int, default=10)
    p.add_argument("--study-steps", type=int, default=100)
    p.add_argument("--unseen-n", type=int, default=15, help="CelebA faces in the unseen stage")
    p.add_argument("--probe-n", type=int, default=4, help="faces in the steps stage")
    p.add_argument("--alone", type=int, default=2, help="faces projected one at a time for the per-image time")
    p.add_argument("--loss", default=DEFAULT_LOSS)
    args = p.parse_args()
    torch.manual_seed(0)
    model = gankit.load(RUN)
    doc = json.loads(OUT.read_text()) if OUT.exists() else {}
    doc.update({"model": str(RUN.relative_to(ROOT)), "cpu": cpu_name(), "environment": environment(),
                "note": "timed on one pinned core while other jobs ran on the machine"})
    for stage in args.stages:
        fn = {"study": stage_study, "main": stage_main, "unseen": stage_unseen, "steps": stage_steps}[stage]
        result = fn(model, args, doc.get("study")) if stage == "study" else fn(model, args)
        doc[stage] = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), **result}
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {OUT} ({stage})", flush=True)


if __name__ == "__main__":
    main()
