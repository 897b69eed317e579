"""Mode-coverage benchmark over several seeds: the rows of docs/benchmarks.md.

For each seed, trains ``FAMILY`` on ``DATASET`` through
``gankit.metrics.modes.run_mode_benchmark`` (what ``gankit bench modes`` runs) into
``<runs>/<steps>-steps/<family>-<dataset>-s<seed>``, scores it (VEEGAN / PacGAN protocol) and
writes ``bench/results/modes_<family>_<dataset>_<steps>.json`` with every run and the mean / std / standard error.
A seed whose run directory already holds a finished run is scored again, not retrained, so an
interrupted sweep can be continued, seeds trained by separate processes can be gathered into one
file, and a run can be rescored (e.g. once the MNIST classifier weights exist) with the same
command; the ``--every`` trajectory, kept in the run directory, comes along.

    python bench/modes.py gan grid25                    # the protocol, seeds 0 1 2
    python bench/modes.py gan ring8 --every 4000        # ... plus the statistics every 4,000 steps
    python bench/modes.py wgan-gp ring8 --seeds 0       # another family, the protocol's budget
    python bench/modes.py gan grid25 --steps 5000 --short --set pack=1   # a short run, marked so

Without options a family trains the dataset's protocol (``gankit.metrics.modes.PROTOCOLS``: its
recipe and budget); another family trains with its ``toy`` preset on ring8 / grid25 when it has
one, else ``small``. Fewer steps than the protocol's need ``--short``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from _environment import environment, write_json  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]
TRAJECTORY = "modes_trajectory.json"  # --every's rows, written into the run directory


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("family", nargs="?", default=None, help="default: the dataset's protocol family")
    ap.add_argument("dataset", help="ring8 | grid25 | stacked-mnist")
    ap.add_argument("--steps", type=int, default=None, help="training steps per run (default: the protocol's)")
    ap.add_argument("--short", action="store_true", help="allow fewer steps than the protocol's")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--n", type=int, default=None, help="samples scored (default 2,500 / 26,000)")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "bench-modes",
                    help="where the run directories go (runs/ is git-ignored)")
    ap.add_argument("--out", type=Path, default=None, help="JSON path (default bench/results/modes_<label>_<dataset>_<steps>.json)")
    ap.add_argument("--preset", default=None, help="default: toy on ring8/grid25 when the family has it, else small")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="training option (repeatable), e.g. --set pack=2 for PacGAN")
    ap.add_argument("--every", type=int, default=0, metavar="K",
                    help="also score the generator and its EMA every K steps while training (a trajectory)")
    args = ap.parse_args(argv)


    from gankit.config import parse_overrides
    from gankit.engine import checkpoint as ckpt
    from gankit.metrics.modes import (
        PAPER_STEPS,
        PROTOCOLS,
        bench_setup,
        check_dataset,
        recipe_differences,
        run_label,
        run_mode_benchmark,
        summarize,
    )
    from gankit.registry import get_family

    dataset = check_dataset(args.dataset)
    steps = args.steps or PROTOCOLS[dataset].steps
    family = args.family or PROTOCOLS[dataset].family
    overrides = parse_overrides(get_family(family).Config, args.sets) or None
    _, preset, options = bench_setup(family, dataset, overrides, args.preset)
    label = run_label(family, overrides)
    out = args.out or ROOT / "bench" / "results" / f"modes_{label}_{dataset}_{steps}.json"
    runs = args.runs / f"{steps}-steps"
    results = []
    for seed in args.seeds:
        run_dir = runs / f"{label}-{dataset}-s{seed}"
        existing = run_dir if ckpt.list_checkpoints(run_dir) else None
        differences = recipe_differences(run_dir, family, preset, options) if existing is not None else []
        if differences:  # a run of another recipe would be reported under this one's options
            print(f"error: {run_dir} was trained with {', '.join(differences)}: move it away or pass --runs",
                  file=sys.stderr)
            return 2
        started = time.perf_counter()
        trajectory: list[dict] = []
        on_step = scorer(dataset, args.every, args.n, trajectory) if args.every and existing is None else None
        stats = run_mode_benchmark(family, dataset, steps=steps, seed=seed, out_dir=runs, run=existing, n=args.n,
                                   overrides=overrides, preset=args.preset, short=args.short,
                                   on_log=lambda line: print(line, flush=True), on_step=on_step)
        saved = run_dir / TRAJECTORY  # kept with the run, so that a rescore keeps it too
        if trajectory:
            saved.write_text(json.dumps(trajectory) + "\n")
        elif existing is not None and saved.exists():
            trajectory = json.loads(saved.read_text())
        if trajectory:
            stats["trajectory"] = trajectory
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
        "family": family,
        "dataset": dataset,
        "steps": steps,
        "seeds": args.seeds,
        "label": label,
        "overrides": overrides or {},
        "options": options,
        "preset": preset,
        "protocol_steps": PROTOCOLS[dataset].steps,
        "paper_steps": PAPER_STEPS[dataset],
        "command": f"python bench/modes.py {family} {dataset} --steps {steps} --seeds "
                   + " ".join(map(str, args.seeds)) + "".join(f" --set {s}" for s in args.sets)
                   + (f" --preset {args.preset}" if args.preset else "") + (" --short" if args.short else ""),
        "summary": summarize(results),
        "results": results,
        "environment": environment(),
    }
    write_json(out, doc, sort_keys=True)
    return 0


def scorer(dataset: str, every: int, n: int | None, rows: list[dict]):
    """A trainer callback appending, every ``every`` steps, the statistics of the raw generator
    and of its EMA (the same samples ``gankit bench modes`` scores: seed = the run's seed)."""
    from gankit.families.base import sample_images
    from gankit.metrics.modes import DEFAULT_N, mode_coverage

    keys = ("modes", "high_quality", "reverse_kl", "kl")

    def on_step(trainer, step: int) -> None:
        if step % every and step != trainer.config.steps:
            return
        row: dict = {"step": step}
        for name, G in (("raw", trainer.family.nets[trainer.family_cls.generator_key]), ("ema", trainer.ema)):
            if G is not None:
                samples = sample_images(trainer.family_cls, G, trainer.config, n or DEFAULT_N[dataset],
                                        seed=trainer.config.seed)
                stats = mode_coverage(samples, dataset)
                row[name] = {k: stats[k] for k in keys if k in stats}
        rows.append(row)
        print(json.dumps(row), flush=True)

    return on_step


if __name__ == "__main__":
    sys.exit(main())
