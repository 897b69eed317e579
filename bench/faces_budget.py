"""Faces on a CPU budget: one family's ``small`` preset on FairFace at 64x64, trained for the same
wall-clock minutes as the others and scored at each budget.

For each budget (default 15, 30, 60 minutes of training time, cumulative) the run is trained
until its training time reaches the budget, checkpointed and stopped (the next budget resumes
it: a resumed run continues exactly), then scored: SWD (x1e3, pixel pyramid, no network) and
FID / KID in the feature space of gankit's FairFace network when it is present
(``--features faces``), and a sample grid saved beside the JSON. After the last budget the
memorisation check (nearest training images) runs. Evaluation time is not counted in the budget.

    python bench/faces_budget.py stylegan2 --where "race=East Asian" --budgets 15 30 60
    python bench/faces_budget.py dcgan --where "race=East Asian" --set augment=diffaugment

Writes ``bench/results/faces_budget_<family>_<subset>.json`` and
``docs/images/faces_budget_<family>_<subset>_<minutes>m.png``; the runs go under ``runs/bench_faces/``.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import torch

import gankit
from gankit.engine import checkpoint as ckpt

from _environment import cpu_name  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
IMAGES = ROOT / "docs" / "images"


def slug(where: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", where.lower()).strip("-") or "all"


class Budget:
    """``on_step`` callback: stop (checkpoint and return "interrupted") once the training time of
    this call plus ``already`` seconds reaches ``seconds``."""

    def __init__(self, seconds: float, already: float):
        self.seconds, self.already, self.start = seconds, already, time.perf_counter()

    def elapsed(self) -> float:
        return self.already + time.perf_counter() - self.start

    def __call__(self, trainer, step: int) -> None:
        if self.elapsed() >= self.seconds and trainer.stop_signal is None:
            trainer.stop_signal = 15  # SIGTERM's number: the loop saves and stops after this step


def score(run: Path, n: int, features: str) -> dict:
    from gankit.metrics.evaluate import evaluate

    out = {"swd": evaluate(run, metrics="swd", n=n, seed=0)["swd"]}
    try:
        result = evaluate(run, metrics="fid,kid", features=features, n=n, seed=0, kid_subsets=20,
                          kid_subset_size=min(500, n))
        out.update(fid=result["fid"], kid=result["kid"], features=result["features"])
    except gankit.GankitError as exc:  # no face network yet: SWD only
        out["fid_error"] = str(exc)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("family")
    parser.add_argument("--where", default="")
    parser.add_argument("--budgets", type=float, nargs="+", default=[15, 30, 60], help="minutes, cumulative")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="key=value for the family")
    parser.add_argument("--name", default="", help="suffix of the run and result names")
    parser.add_argument("--n", type=int, default=2000, help="generated images per score")
    parser.add_argument("--features", default="faces")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tag = f"{args.family}_{slug(args.where)}" + (f"_{args.name}" if args.name else "")
    run = ROOT / "runs" / "bench_faces" / tag
    result_path = RESULTS / f"faces_budget_{tag}.json"
    doc = json.loads(result_path.read_text()) if result_path.exists() and ckpt.list_checkpoints(run) else {}
    doc.update(family=args.family, where=args.where, resolution=args.resolution, overrides=args.overrides,
               cpu=cpu_name(), threads=torch.get_num_threads(), torch=torch.__version__)
    rows = {row["minutes"]: row for row in doc.get("rows", [])}
    trained = max((row["train_seconds"] for row in rows.values()), default=0.0)
    for minutes in sorted(args.budgets):
        if minutes in rows:
            continue
        budget = Budget(minutes * 60, trained)
        common = dict(steps=10_000_000, quiet=True, on_step=budget, overrides=list(args.overrides))
        if ckpt.list_checkpoints(run):
            result = gankit.train(resume=run, **common)
        else:
            common["overrides"] += [f"where={args.where}"] if args.where else []
            result = gankit.train(args.family, data="fairface", out=run, preset="small", resolution=args.resolution,
                                  **common)
        trained = budget.elapsed()
        if trained < budget.seconds:  # stopped by a signal (Ctrl-C, kill) before the budget: no row
            raise SystemExit(f"{run} stopped at {trained / 60:.1f} of {minutes:g} minutes; run again to resume")
        model = gankit.load(run)
        grid = IMAGES / f"faces_budget_{tag}_{int(minutes)}m.png"
        from gankit.viz import render_samples, save_image

        save_image(render_samples(model.sample(16, seed=0), nrow=8), grid)
        row = {"minutes": minutes, "train_seconds": trained, "step": result.step,
               "images_seen": result.step * model.config.batch_size,
               "img_per_s": result.step * model.config.batch_size / max(trained, 1e-9),
               "grid": str(grid.relative_to(ROOT)), **score(run, args.n, args.features)}
        print(json.dumps(row), flush=True)
        rows[minutes] = row
        doc["rows"] = [rows[m] for m in sorted(rows)]
        result_path.parent.mkdir(parents=True, exist_ok=True)
        result_path.write_text(json.dumps(doc, indent=2) + "\n")
    from gankit.metrics.memorisation import nearest_neighbours

    nn = nearest_neighbours(gankit.load(run), n=8, k=4, features=args.features if "fid" in rows[max(rows)] else "pixel")
    doc["memorisation"] = {k: v for k, v in nn.items() if isinstance(v, (int, float, str, bool))}
    result_path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {result_path}")


if __name__ == "__main__":
    main()
