"""Which learning-rate factor should ``on_divergence=rollback`` use? (issue 17)

Two ways a run blows up, each tried with every factor in ``--factors``:

* **too high a learning rate** (``shock``): a DCGAN trained 100 healthy steps on MNIST is
  resumed with learning rates from a little to far above the largest that stays finite (fresh
  runs: 3e7 ran 300 steps, 5e7 overflowed by step 10 on our machine; Adam bounds each step by the
  rate, so the weights grow until they overflow). A rollback reloads the last checkpoint with
  the rates times the factor (one checkpoint further back when it diverges again before the next
  checkpoint): does the run recover within ``max_rollbacks`` (3), after how many rollbacks, how
  many steps were redone? (Training is deterministic, so a factor of 1 diverges again.)
* **a one-off blow-up** (``transient``): a sane run whose weights are set to NaN once, half-way
  (a bad batch, a flipped bit): every factor recovers with one rollback, and the price of a small
  factor is a slower rest of the run: FID (MNIST classifier features, 2,000 samples) at the end,
  against the same run with no fault, over ``--seeds``. (A factor of 1 replays the run exactly
  here, because the NaN was put in once; a real divergence would come back.)

    python bench/rollback.py            # ~5 minutes on 2 cores
    python bench/rollback.py --factors 0.5 0.1 --shock-lrs 3e6 --steps 200

Writes ``bench/results/rollback.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _environment import cpu_name, environment  # noqa: E402

BASE = {"max_images": 2048, "checkpoint_every": 10, "log_every": 5, "snapshot_every": 100_000,
        "on_divergence": "rollback", "max_rollbacks": 3}
HEALTHY_STEPS = 100


def poison_once(step: int):
    """An on_step callback: G's weights become NaN once, after ``step``."""
    import torch

    fired = []

    def callback(trainer, current: int) -> None:
        if current == step and not fired:
            fired.append(step)
            with torch.no_grad():
                for p in trainer.family.nets["G"].parameters():
                    p.fill_(float("nan"))
    return callback


def attempt(out: Path, steps: int, overrides: dict, on_step=None, fid: bool = False, resume: bool = False) -> dict:
    import gankit
    from gankit.errors import DivergedError

    started = time.perf_counter()
    try:
        if resume:
            result = gankit.train(resume=out, steps=steps, quiet=True, overrides=overrides)
        else:
            result = gankit.train("dcgan", data="mnist", out=out, preset="tiny", steps=steps, quiet=True,
                                  on_step=on_step, overrides={**BASE, **overrides})
        finished, error = result.status == "finished", ""
    except DivergedError as exc:
        finished, error = False, str(exc)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rollbacks = [r for r in records if "rollback" in r]
    row = {"finished": finished, "rollbacks": len(rollbacks),
           "steps_redone": sum(r["diverged_at"] - r["step"] for r in rollbacks),
           "rolled_back_to": [r["step"] for r in rollbacks],
           "first_divergence": rollbacks[0]["diverged_at"] if rollbacks else None,
           "seconds": round(time.perf_counter() - started, 1), **({"error": error[:200]} if error else {})}
    if fid and finished:
        from gankit.metrics import evaluate

        row["fid"] = round(evaluate(out, metrics="fid", n=2000)["fid"], 2)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--factors", type=float, nargs="+", default=[1.0, 0.5, 0.25, 0.1])
    parser.add_argument("--shock-lrs", type=float, nargs="+", default=[1e8, 1e9, 1e10, 1e11])
    parser.add_argument("--shock-steps", type=int, default=200)
    parser.add_argument("--steps", type=int, default=1000, help="steps of the one-off runs (NaN at half-way)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the one-off runs")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "rollback.json")
    args = parser.parse_args()
    result: dict = {"bench": "rollback", "family": "dcgan", "data": "mnist", "preset": "tiny", "steps": args.steps,
                    "shock_steps": args.shock_steps,
                    "max_rollbacks": BASE["max_rollbacks"], "checkpoint_every": BASE["checkpoint_every"],
                    "environment": {**environment(), "cpu": cpu_name()}, "shock": [], "transient": []}
    with tempfile.TemporaryDirectory(prefix="gankit-rollback-") as tmp:
        work = Path(tmp)
        healthy = work / "healthy"
        attempt(healthy, HEALTHY_STEPS, {})
        for lr in args.shock_lrs:
            for f in args.factors:
                run = work / f"shock_{lr:g}_{f:g}"
                shutil.copytree(healthy, run)
                row = {"lr": lr, "factor": f, **attempt(run, HEALTHY_STEPS + args.shock_steps,
                                                         {"lr_d": lr, "lr_g": lr, "rollback_lr_factor": f},
                                                         resume=True)}
                row["lr_after"] = lr * f ** row["rollbacks"]
                result["shock"].append(row)
                print(f"shock lr={lr:g} factor={f:g}: {row}", flush=True)
        result["transient_baseline"] = []
        for seed in args.seeds:
            clean = attempt(work / f"clean_{seed}", args.steps, {"seed": seed}, fid=True)
            result["transient_baseline"].append({"seed": seed, **clean})
            print(f"no fault, seed {seed}: {clean}", flush=True)
            for f in args.factors:
                row = {"factor": f, "seed": seed,
                       **attempt(work / f"transient_{f:g}_{seed}", args.steps, {"rollback_lr_factor": f, "seed": seed},
                                 on_step=poison_once(args.steps // 2), fid=True)}
                result["transient"].append(row)
                print(f"one-off NaN at step {args.steps // 2}, factor={f:g}, seed {seed}: {row}", flush=True)
    # a factor that recovers from every shock in the fewest rollbacks, then the best FID after a one-off
    score = {}
    for f in args.factors:
        shocks = [r for r in result["shock"] if r["factor"] == f]
        fids = [r.get("fid", math.inf) for r in result["transient"] if r["factor"] == f]
        score[f] = (sum(not r["finished"] for r in shocks), sum(r["rollbacks"] for r in shocks),
                    round(sum(fids) / len(fids), 1))
    result["ranking"] = [{"factor": f, "shocks_not_recovered": s[0], "rollbacks": s[1], "mean_fid_after_one_off": s[2]}
                         for f, s in sorted(score.items(), key=lambda kv: kv[1])]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["ranking"], indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
