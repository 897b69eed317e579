"""Face vector arithmetic, measured (DCGAN paper §6.3, Fig. 7): does ``old man - young man + young
woman`` give an old woman?

FairFace has no glasses or smile labels, so the equations use what the shipped face predictor
(``gankit.metrics.face_classifier``) reads: age group, gender, race. For each run:

1. seeds ``0..pool-1`` are sampled and classified once; the *base rates* are the shares of these
   random samples predicted as the target (e.g. Female and 50+);
2. per equation, ``--reps`` disjoint exemplar sets: set r takes the matches ranked 3r+1..3r+3 by
   the predictor's confidence for each term (so set 0 is what ``gankit arithmetic`` picks);
3. each set's result latent plus ``--variations`` perturbed copies (uniform noise 0.25, the
   paper's) are generated and classified: the *hit rate* is the share predicted as the target.
   Beside it, the same noise around the last term's average alone (``+ young woman``): the hit
   rate without the arithmetic, i.e. what the age terms add.

Writes ``bench/results/arithmetic_faces.json`` and the figures of exemplar set 0
(``docs/images/toolbox/arithmetic_<family>_<target>.png``).

    python bench/arithmetic_faces.py                      # both FairFace runs, ~3 CPU minutes
    python bench/arithmetic_faces.py --runs runs/bench_faces/dcgan_all --reps 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from _environment import cpu_name, environment, write_json  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
OUT = ROOT / "bench" / "results" / "arithmetic_faces.json"
FIGURES = ROOT / "docs" / "images" / "toolbox"
RUNS = ["runs/bench_faces/dcgan_all", "runs/bench_faces/stylegan2_all_v2"]
OLD, YOUNG = "50-59|60-69|more than 70", "20-29|30-39"
EQUATIONS = {  # name: (terms as (sign, condition), target condition)
    "old woman = old man - young man + young woman": (
        [(1, f"gender=Male,age={OLD}"), (-1, f"gender=Male,age={YOUNG}"), (1, f"gender=Female,age={YOUNG}")],
        f"gender=Female,age={OLD}"),
    "old man = old woman - young woman + young man": (
        [(1, f"gender=Female,age={OLD}"), (-1, f"gender=Female,age={YOUNG}"), (1, f"gender=Male,age={YOUNG}")],
        f"gender=Male,age={OLD}"),
}


def share(probs, where: str) -> float:
    from gankit.explore.arithmetic import condition_scores

    return round(float(condition_scores(probs, where)[0].mean()), 4)


def measure(model, pool_probs, terms, target, *, reps: int, variations: int, pool: int) -> dict:
    import torch

    from gankit.explore.arithmetic import choose_exemplars, latent_arithmetic, render
    from gankit.metrics.face_classifier import HEADS, predict_attributes

    chosen = choose_exemplars(model, [w for _, w in terms], k=3 * reps, pool=pool, probs=pool_probs)
    parts = target.split(",")  # each condition of the target alone, e.g. gender=Female and age=50+
    sets = []
    for r in range(reps):
        seeds = [c["seeds"][3 * r:3 * r + 3] for c in chosen]
        if any(len(s) < 3 for s in seeds):
            break  # too few matches for another disjoint set
        out = latent_arithmetic(model, [(sign, s) for (sign, _), s in zip(terms, seeds)], variations=variations,
                                seed=r)
        result = predict_attributes(out.result_images)
        last = out.means[-1:] + (out.variations - out.result)  # the same noise around the last term alone
        alone = predict_attributes(render(model, torch.cat([out.means[-1:], last]), out.space))
        sets.append({"seeds": seeds, "hit_rate": share(result, target), "last_term_alone": share(alone, target),
                     "by_condition": {w: share(result, w) for w in parts},
                     "last_term_alone_by_condition": {w: share(alone, w) for w in parts},
                     "result_predicted": {h: HEADS[h][int(v[0].argmax())] for h, v in result.items()}})

    def mean(key, sub=None):
        values = [x[key] if sub is None else x[key][sub] for x in sets]
        return round(sum(values) / len(values), 4) if values else None

    return {"terms": [{"sign": "+" if s > 0 else "-", "where": w, "matches": c["matches"]}
                      for (s, w), c in zip(terms, chosen)],
            "target": target, "sets": sets, "hit_rate": mean("hit_rate"),
            "last_term_alone_hit_rate": mean("last_term_alone"), "base_rate": share(pool_probs, target),
            "by_condition": {w: {"hit_rate": mean("by_condition", w),
                                 "last_term_alone": mean("last_term_alone_by_condition", w),
                                 "base_rate": share(pool_probs, w)} for w in parts}}


def figure(model, pool_probs, terms, path: Path, pool: int) -> list[list[int]]:
    from gankit.explore.arithmetic import choose_exemplars, latent_arithmetic
    from gankit.viz import render_samples, save_image

    chosen = choose_exemplars(model, [w for _, w in terms], k=3, pool=pool, probs=pool_probs)
    out = latent_arithmetic(model, [(s, c["seeds"]) for (s, _), c in zip(terms, chosen)], variations=4)
    images, nrow = out.figure()
    save_image(render_samples(images, nrow=nrow), path)
    return [c["seeds"] for c in chosen]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", nargs="+", default=RUNS)
    ap.add_argument("--pool", type=int, default=2000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--variations", type=int, default=32)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--no-figures", action="store_true")
    args = ap.parse_args()

    import gankit
    from gankit.explore.arithmetic import face_predictions

    doc = {"environment": {**environment(), "cpu": cpu_name()}, "pool": args.pool, "reps": args.reps,
           "variations": args.variations, "noise": 0.25, "runs": {}}
    for run in args.runs:
        started = time.perf_counter()
        model = gankit.load(ROOT / run)
        probs = face_predictions(model, list(range(args.pool)))
        entry = {"family": model.family, "step": model.step,
                 "base_rates": {w: share(probs, w) for w in (
                     "gender=Female", f"age={OLD}", f"gender=Female,age={OLD}", f"gender=Male,age={OLD}")},
                 "equations": {}}
        for name, (terms, target) in EQUATIONS.items():
            entry["equations"][name] = measure(model, probs, terms, target, reps=args.reps,
                                               variations=args.variations, pool=args.pool)
            got = entry["equations"][name]
            print(f"{run}: {name}: hit rate {got['hit_rate']} (last term alone {got['last_term_alone_hit_rate']}, "
                  f"base rate {got['base_rate']}); by condition {got['by_condition']}", flush=True)
            if not args.no_figures:
                path = FIGURES / f"arithmetic_{model.family}_{name.split(' =')[0].replace(' ', '-')}.png"
                seeds = figure(model, probs, terms, path, args.pool)
                got["figure"] = {"path": str(path.relative_to(ROOT)), "seeds": seeds}
        entry["seconds"] = round(time.perf_counter() - started, 1)
        doc["runs"][run] = entry
    write_json(args.out, doc)


if __name__ == "__main__":
    main()
