"""Where a Stacked-MNIST run's KL comes from: each channel's digit histogram (docs/benchmarks.md).

Draws the mode benchmark's 26,000 samples (seed = the run's seed), reads every channel with the
shipped MNIST classifier and writes, per run, the per-channel digit shares, their KL to uniform
(the part of the triple KL that the digit counts alone explain) and the triple KL itself; and how
surely the classifier reads the digits: its mean top probability, the share of digits read with
less than 0.9 (malformed or ambiguous ones), and the digit shares among the sure reads. ``real``
in place of a run scores the built-in data's first 26,000 images the same way (the floor).

    python bench/stacked_marginals.py real runs/bench-modes/10000-steps/dcgan-stacked-mnist-s{0,1,2}
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from _environment import environment, write_json  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]
SURE = 0.9  # a digit is read surely when the classifier's top probability is at least this


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run directories, or `real` for the data itself")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "stacked_marginals.json")
    args = ap.parse_args(argv)

    import gankit
    from gankit.data import load_dataset
    from gankit.data.dataset import to_signed
    from gankit.metrics.mnist_classifier import load_mnist_classifier
    from gankit.metrics.modes import DEFAULT_N, STACKED, kl_to_uniform, stacked_digit_probs

    classifier = load_mnist_classifier()
    rows = []
    for run in args.runs:
        if str(run) == "real":
            images = to_signed(load_dataset(STACKED, max_images=DEFAULT_N[STACKED]).data)
        else:
            model = gankit.load(run)
            images = model.sample(DEFAULT_N[STACKED], seed=model.config.seed)
        top, digits = stacked_digit_probs(images, classifier).max(dim=2)  # (N, 3) each
        top, digits = top.numpy(), digits.numpy()
        labels = digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]
        sure = digits[top >= SURE]
        counts = [np.bincount(digits[:, c], minlength=10) for c in range(3)]
        row = {
            "run": str(run),
            "kl": kl_to_uniform(np.bincount(labels, minlength=1000)),
            "channel_kl": [kl_to_uniform(c) for c in counts],
            "channel_shares": [(c / c.sum()).round(4).tolist() for c in counts],
        }
        row["channel_kl_sum"] = sum(row["channel_kl"])
        row["mean_confidence"] = float(top.mean())
        row["unsure_share"] = float((top < SURE).mean())
        row["sure_digit_shares"] = (np.bincount(sure, minlength=10) / max(sure.size, 1)).round(4).tolist()
        row["unsure_digit_counts"] = np.bincount(digits[top < SURE], minlength=10).tolist()
        rows.append(row)
        print(json.dumps({k: row[k] for k in ("run", "kl", "channel_kl_sum", "mean_confidence", "unsure_share")}),
              flush=True)
    doc = {"benchmark": "stacked_marginals", "results": rows, "environment": environment()}
    write_json(args.out, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
