"""Editing faces along InterFaceGAN directions, judged by a predictor that did not fit them.
The numbers and figures of docs/toolbox.md, "Editing: directions in W".

Model: ``runs/bench_faces/stylegan2_all_v2`` (64x64 StyleGAN2, 60 min on the 2,000 FairFace faces).

Predictors. The built-in ``fairface`` faces are split into two halves of 1,000, stratified on the
labels (``held_out_split(labels, held_out=1000, seed=1)``). On each half gankit's labelled-data
path (:func:`gankit.explore.predictors.train_classifier`, what ``gankit directions --images``
runs) trains a binary classifier per attribute: **A** (half 1, seed 1) labels the samples that
the directions are fitted on; **B** (half 2, seed 2) judges the edits. Neither saw the other's
faces, each one's balanced accuracy is measured on the other half. The direction fitted with the
shipped face CNN (the command's default predictor) is judged by B too; that CNN was trained on
1,600 of the 2,000 faces, so it shares faces with B, which makes its row the weaker test.

Directions (:func:`gankit.explore.directions.interfacegan`): 5,000 sampled ws (psi 1), the top and
bottom 20% of A's scores, a linear SVM; ``age`` is 40+ vs under 30, ``gender`` + Male. Also
age | gender and gender | age (the held attribute's normal projected out) and a random unit
direction as the control.

Edits: 200 fresh samples, each moved *towards the other side* of B's call (a face B reads as
young is aged, an old one made younger) by strength 1, 2, 3, in stds of the sampled w along the
direction, on all layers. Per strength: the share whose B label flips, the share whose B
probability moves the intended way, the mean signed change of B's probability for the edited
attribute, the mean absolute change of B's probability for the other attribute and the mean
change (total variation) of the face CNN's race distribution, and dlib's identity distance
between the original and the edited face (median, and the share under 0.6; for scale, the same
for pairs of *different* generated faces is recorded as ``identity_different_faces``).

Figures (``--figures``): ``edit_age.png`` and ``edit_gender.png`` (seeds 0-3, the same as
``gankit edit --seed 0-3``, not picked; strengths -3..3) and ``sefa_top5.png`` (SeFa on all
layers, top 5 directions, seeds 0 and 1, strengths -3..3).

    python bench/edit_faces.py                      # ~25 CPU minutes on one thread
    python bench/edit_faces.py --test-n 40 --samples 1000 --epochs 3 --out /tmp/e.json --figures /tmp/fig
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _environment import cpu_name, environment  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "runs" / "bench_faces" / "stylegan2_all_v2"
STRENGTHS = (1.0, 2.0, 3.0)
ATTRS = ("age", "gender")


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def classifiers(epochs: int) -> tuple[dict, dict, dict]:
    """Predictors A (half 1) and B (half 2) per attribute, and their facts."""
    import torch

    from gankit.data import load_dataset
    from gankit.explore.predictors import subset, train_classifier
    from gankit.metrics.face_classifier import held_out_split, labels_from_dataset

    ds = load_dataset("fairface", resolution=64)
    half_b, half_a = held_out_split(labels_from_dataset(ds), held_out=1000, seed=1)
    halves = {"A": (subset(ds, half_a), subset(ds, half_b), 1), "B": (subset(ds, half_b), subset(ds, half_a), 2)}
    out: dict = {"A": {}, "B": {}}
    facts: dict = {"A": {}, "B": {}}
    for key, (train, other, seed) in halves.items():
        for attr in ATTRS:
            torch.manual_seed(seed)
            p, f = train_classifier(train, attr, seed=seed, epochs=epochs, val_dataset=other, log=_log)
            out[key][attr], facts[key][attr] = p, f
            _log(f"classifier {key} {attr}: balanced accuracy {f['val_balanced_accuracy']:.3f} on the other half")
    return out["A"], out["B"], facts


def small_png(array, path: Path, limit: int = 300_000) -> None:
    """Write a PNG; over ``limit`` bytes, as a 256-colour palette image (median cut, no dither)."""
    from PIL import Image

    im = Image.fromarray(array)
    im.save(path, optimize=True)
    if path.stat().st_size > limit:
        im.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=RUN)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--test-n", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "edit_faces.json")
    parser.add_argument("--figures", type=Path, default=ROOT / "docs" / "images" / "toolbox")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    import gankit
    from gankit.explore.directions import (angle_degrees, condition, direction_scale, interfacegan, random_direction,
                                           sample_ws, score_ws, sefa)
    from gankit.explore.edit import apply_direction, edit_strip
    from gankit.explore.predictors import face_predictor
    from gankit.explore.styles import seed_latents
    from gankit.metrics.face_classifier import predict_attributes
    from gankit.metrics.identity import SAME_PERSON, identity_embeddings
    from gankit.viz import make_grid

    started = time.perf_counter()
    model = gankit.load(args.run)
    pa, pb, cls_facts = classifiers(args.epochs)
    cnn = {a: face_predictor(a) for a in ATTRS}

    # ---- fit the directions ----
    ws = sample_ws(model, args.samples, seed=0)
    fitters = [pa["age"], pa["gender"], cnn["age"], cnn["gender"]]
    scores = score_ws(model, ws, fitters)
    bounds = {"age": interfacegan(ws, scores[:, 0]), "gender": interfacegan(ws, scores[:, 1]),
              "age (face CNN)": interfacegan(ws, scores[:, 2]), "gender (face CNN)": interfacegan(ws, scores[:, 3])}
    vectors = {k: b.normal for k, b in bounds.items()}
    vectors["age | gender"] = condition(vectors["age"], vectors["gender"])
    vectors["gender | age"] = condition(vectors["gender"], vectors["age"])
    vectors["random"] = random_direction(ws.shape[1], seed=0)
    target = {k: k.split()[0] if k != "random" else None for k in vectors}
    scales = {k: float(direction_scale(ws, v[None])[0]) for k, v in vectors.items()}
    _log(f"directions fitted ({time.perf_counter() - started:.0f}s)")

    # ---- edit fresh samples, judge with B, the face CNN's race head and dlib ----
    test_ws = sample_ws(model, args.test_n, seed=1)

    def judge(w):
        with torch.no_grad():
            img = model.synthesis(w).clamp(-1, 1)
        return {"age": pb["age"](img), "gender": pb["gender"](img), "race": predict_attributes(img)["race"],
                "A": {a: pa[a](img) for a in ATTRS}, "cnn": {a: cnn[a](img) for a in ATTRS},
                "id": identity_embeddings(img)}

    base = judge(test_ws)
    others = (base["id"] - base["id"].roll(1, dims=0)).norm(dim=1)  # pairs of different generated faces
    baseline = {"identity_median": round(float(others.median()), 4),
                "same_person": round(float((others < SAME_PERSON).float().mean()), 4)}
    results: dict = {}
    for name, v in vectors.items():
        t = target[name]
        fit = "cnn" if "face CNN" in name else "A"
        sign = torch.ones(len(test_ws)) if t is None else torch.where(base[t] > 0.5, -1.0, 1.0)
        rows = []
        for s in STRENGTHS:
            got = judge(apply_direction(test_ws, v, sign * s, scale=scales[name]))
            dist = (got["id"] - base["id"]).norm(dim=1)
            row = {"strength": s, "identity_median": round(float(dist.median()), 4),
                   "identity_mean": round(float(dist.mean()), 4),
                   "same_person": round(float((dist < SAME_PERSON).float().mean()), 4),
                   "race_tv": round(float(0.5 * (got["race"] - base["race"]).abs().sum(1).mean()), 4)}
            for a in ATTRS:
                row[f"abs_dp_{a}"] = round(float((got[a] - base[a]).abs().mean()), 4)
            if t is not None:
                other = "gender" if t == "age" else "age"
                change = sign * (got[t] - base[t])
                row.update(flip=round(float(((got[t] > 0.5) != (base[t] > 0.5)).float().mean()), 4),
                           moved=round(float((change > 0).float().mean()), 4), dp_target=round(float(change.mean()), 4),
                           abs_dp_other=row[f"abs_dp_{other}"],
                           flip_by_fit_predictor=round(float(((got[fit][t] > 0.5) != (base[fit][t] > 0.5))
                                                              .float().mean()), 4))
            rows.append(row)
            _log(f"{name} s={s:g}: " + "  ".join(f"{k}={v}" for k, v in row.items() if k != "strength"))
        results[name] = {"target": t, "scale": round(scales[name], 4), "edits": rows}

    # ---- figures (seeds 0-3, not picked) ----
    args.figures.mkdir(parents=True, exist_ok=True)
    seeds_ws = model.mapping(seed_latents(model, [0, 1, 2, 3]))
    strengths = [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]
    for name, file in (("age", "edit_age.png"), ("gender", "edit_gender.png")):
        images, cols = edit_strip(model, seeds_ws, vectors[name], strengths, scale=scales[name])
        small_png(make_grid(images, nrow=cols), args.figures / file)
    top, values = sefa(model.generator, None, k=5)
    sefa_scales = direction_scale(ws, top)
    rows = []
    for v, sc in zip(top, sefa_scales):
        images, cols = edit_strip(model, seeds_ws[:2], v, strengths, scale=float(sc))
        groups = list(images.view(2, cols, *images.shape[1:]))
        blank = torch.ones_like(groups[0][:1])
        rows.append(torch.cat([torch.cat([g, blank]) for g in groups])[:-1])
    small_png(make_grid(torch.cat(rows), nrow=rows[0].shape[0]), args.figures / "sefa_top5.png")
    name_of = lambda f: str(f.relative_to(ROOT)) if f.is_relative_to(ROOT) else str(f)  # noqa: E731
    figures = {k: name_of(args.figures / f) for k, f in
               (("age", "edit_age.png"), ("gender", "edit_gender.png"), ("sefa", "sefa_top5.png"))}

    angle = lambda a, b: round(angle_degrees(a, b), 2)  # noqa: E731
    doc = {
        "what": "InterFaceGAN edits on a 64px FairFace StyleGAN2, judged by a classifier trained on the other half "
                "of FairFace; strengths in stds of the sampled w along each direction",
        "run": str(args.run.relative_to(ROOT)) if args.run.is_relative_to(ROOT) else str(args.run),
        "model_step": model.step, "samples": args.samples, "test_samples": args.test_n,
        "fraction": 0.2, "classifier_epochs": args.epochs,
        "classifiers": cls_facts,
        "boundaries": {k: {"val_accuracy": round(b.val_accuracy, 4), "c": b.info["c"],
                           "all_samples_accuracy": b.info["all_samples_accuracy"],
                           "positive_rate": b.info["positive_rate"]} for k, b in bounds.items()},
        "angles_deg": {"age vs gender": angle(vectors["age"], vectors["gender"]),
                       "age: A vs face CNN": angle(vectors["age"], vectors["age (face CNN)"]),
                       "gender: A vs face CNN": angle(vectors["gender"], vectors["gender (face CNN)"])},
        "identity_different_faces": baseline,
        "base_positive_rate_B": {a: round(float((base[a] > 0.5).float().mean()), 4) for a in ATTRS},
        "results": results,
        "sefa_top5_eigenvalues": [round(float(v), 3) for v in values],
        "figures": figures,
        "seconds": round(time.perf_counter() - started, 1),
        "cpu": cpu_name(),
        "environment": environment(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    _log(f"wrote {args.out} ({doc['seconds']:.0f}s)")


if __name__ == "__main__":
    main()
