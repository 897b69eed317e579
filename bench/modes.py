"""Mode-coverage benchmark over several seeds: the rows of docs/benchmarks.md.

For each seed, trains ``FAMILY`` on ``DATASET`` through
``gankit.metrics.modes.run_mode_benchmark`` (what ``gankit bench modes`` runs) into
``<runs>/<steps>-steps/<family>-<dataset>-s<seed>``, scores it (VEEGAN / PacGAN protocol) and
writes ``bench/results/modes_<family>_<dataset>_<steps>.json`` with every run and the mean / std / standard error.
A seed whose run directory already holds a finished run is scored again, not retrained, so an
interrupted sweep can be continued and a run can be rescored (e.g. once the MNIST classifier
weights exist) with the same command.

    python bench/modes.py gan ring8 --steps 1500 --seeds 0 1 2
    python bench/modes.py gan grid25 --steps 1500 --seeds 0 1 2
    python bench/modes.py dcgan stacked-mnist --steps 1000 --seeds 0
    python bench/modes.py gan ring8 --steps 5000 --set pack=2      # PacGAN2

On ring8 / grid25 a family trains with its ``toy`` preset (MLPs made for 2-D points) when it
has one, else ``small``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from _environment import environment  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("family")
    ap.add_argument("dataset", help="ring8 | grid25 | stacked-mnist")
    ap.add_argument("--steps", type=int, default=None, help="training steps per run (default: the bench default)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--n", type=int, default=None, help="samples scored (default 2,500 / 26,000)")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "bench-modes",
                    help="where the run directories go (runs/ is git-ignored)")
    ap.add_argument("--out", type=Path, default=None, help="JSON path (default bench/results/modes_<label>_<dataset>_<steps>.json)")
    ap.add_argument("--preset", default=None, help="default: toy on ring8/grid25 when the family has it, else small")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="training option (repeatable), e.g. --set pack=2 for PacGAN")
    args = ap.parse_args(argv)


    from gankit.config import parse_overrides
    from gankit.engine import checkpoint as ckpt
    from gankit.metrics.modes import (
        DEFAULT_STEPS,
        bench_preset,
        check_dataset,
        run_label,
        run_mode_benchmark,
        summarize,
    )
    from gankit.registry import get_family

    dataset = check_dataset(args.dataset)
    steps = args.steps or DEFAULT_STEPS[dataset]
    overrides = parse_overrides(get_family(args.family).Config, args.sets) or None
    label = run_label(args.family, overrides)
    out = args.out or ROOT / "bench" / "results" / f"modes_{label}_{dataset}_{steps}.json"
    runs = args.runs / f"{steps}-steps"
    results = []
    for seed in args.seeds:
        run_dir = runs / f"{label}-{dataset}-s{seed}"
        existing = run_dir if ckpt.list_checkpoints(run_dir) else None
        started = time.perf_counter()
        stats = run_mode_benchmark(args.family, dataset, steps=steps, seed=seed, out_dir=runs, run=existing,
                                   n=args.n, overrides=overrides, preset=args.preset, on_log=lambda line: print(line, flush=True))
        elapsed = time.perf_counter() - started
        for key in ("run", "plot"):  # repository-relative in the JSON, like the command
            if stats.get(key) and Path(stats[key]).resolve().is_relative_to(ROOT):
                stats[key] = str(Path(stats[key]).resolve().relative_to(ROOT))
        stats["score_seconds"] = round(elapsed if existing is not None else elapsed - stats["train_seconds"], 1)
        results.append(stats)
        keys = ("modes", "high_quality", "reverse_kl", "kl", "steps", "train_seconds")
        print(json.dumps({k: stats[k] for k in keys if k in stats}), flush=True)
    doc = {
        "benchmark": "modes",
        "family": args.family,
        "dataset": dataset,
        "steps": steps,
        "seeds": args.seeds,
        "label": label,
        "overrides": overrides or {},
        "preset": args.preset or bench_preset(args.family, dataset),
        "command": f"python bench/modes.py {args.family} {dataset} --steps {steps} --seeds "
                   + " ".join(map(str, args.seeds)) + "".join(f" --set {s}" for s in args.sets)
                   + (f" --preset {args.preset}" if args.preset else ""),
        "summary": summarize(results),
        "results": results,
        "environment": environment(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
