"""What R1 costs the Stacked-MNIST protocol: training images/s with and without it (docs/benchmarks.md).

Trains the protocol's recipe (``PROTOCOLS["stacked-mnist"]``) for 120 steps with ``reg=r1`` and
with ``reg=none``, interleaved ``--repeats`` times, times steps 20-120 of each run and
keeps each variant's best repeat.

    OMP_NUM_THREADS=2 .venv/bin/python bench/stacked_r1_speed.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _environment import environment, write_json  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]
STEPS, WARMUP = 120, 20


def images_per_second(options: dict) -> float:
    import gankit

    marks: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as out:
        gankit.train("dcgan", data="stacked-mnist", out=out, preset="small", steps=STEPS, seed=0, quiet=True,
                     overrides={**options, "log_every": 1000, "snapshot_every": 10**6, "checkpoint_every": 10**6},
                     on_step=lambda model, step: marks.__setitem__(step, time.perf_counter()))
    last = max(marks)
    return (last - WARMUP) * options.get("batch_size", 64) / (marks[last] - marks[WARMUP])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "stacked_r1_speed.json")
    args = ap.parse_args(argv)

    import torch

    from gankit.metrics.modes import PROTOCOLS, STACKED

    torch.set_num_threads(args.threads)
    protocol = PROTOCOLS[STACKED].options
    variants = {"r1": protocol, "none": {**protocol, "reg": "none"}}
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, options in variants.items():
            rates[name].append(round(images_per_second(options), 1))
            print(name, rates[name][-1], flush=True)
    best = {name: max(v) for name, v in rates.items()}  # the least disturbed repeat of each
    doc = {"benchmark": "stacked_r1_speed", "options": protocol, "steps_timed": STEPS - WARMUP,
           "images_per_s": rates, "best": best, "none_over_r1": round(best["none"] / best["r1"], 2),
           "environment": environment()}
    write_json(args.out, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
