"""CoGAN pair agreement: do the two halves of a CoGAN sample show the same digit?

Scores ``cogan`` runs trained on the unpaired two-domain built-ins (``mnist-edges``,
``mnist-negative``; Liu & Tuzel 2016, §5.1). For each run, draws ``--n`` samples (2,000), reads
both halves as digits and classifies them with the shipped MNIST classifier
(``gankit.metrics.mnist_classifier``): the left half (domain A) is a digit; the right half is
the negative ``255 - x`` of one, negated back (``-x`` in [-1, 1]), or the edge map of one,
decoded back to a digit by :func:`decode_edges`. ``agreement`` is the share of samples whose two
classes agree: ~10% for unrelated halves, and the training data's halves are unrelated. As
samples that all look alike (early in training, or a collapsed G) agree trivially, the JSON also
gives ``chance_agreement`` (sum_k p_left(k) p_right(k), from the two class histograms) and
Cohen's ``kappa`` = (agreement - chance) / (1 - chance): 0 for unrelated halves, 1 for pairs
that always agree.

Each score comes with two references computed the same way on real digits: ``unpaired`` (the
dataset's own items, a digit beside the transform of a different digit: chance) and ``paired``
(a digit beside the transform of itself: the ceiling that classifier plus decoder allow), and
per run ``agreement_if_paired``, the same ceiling for its own left halves. Also
the paper's own measure, ``pixel_agreement`` (§5.1): the share of pixels where the right half
matches the known transform of the left half, both thresholded at mid-grey.

A run directory without a checkpoint is trained first (``small`` preset, the data named by
``--data`` or guessed from the directory name); one that has a checkpoint is scored as it is,
its training time read from its log.

    python bench/cogan_pairs.py runs/cogan-edges runs/cogan-neg
    python bench/cogan_pairs.py runs/bench-cogan/ablation --data mnist-edges --set private_g_blocks=3
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from _environment import environment, write_json  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "cogan_pairs.json"


def decode_edges(edges, iters: int = 200, lr: float = 0.1):
    """Edge maps (N, 1, H, W) in [0, 1] -> digits in [0, 1]: the x for which the forward
    transform ``dilate3x3(x) - x`` (``gankit.data.builtin.edge_map``) best reproduces the edges,
    by Adam on the squared error, from the ring's interior (5x5 closing minus the ring). The
    transform loses information (a thick stroke and a thin one can share an outline), so this is
    an estimate: the classifier reads ~93% of the digits decoded from real edge maps as the digit
    itself (the ``paired`` reference), ~75% of those from a CoGAN's own digits
    (``agreement_if_paired``), against 17% for the raw edge maps."""
    import torch
    import torch.nn.functional as F

    def dilate(x, k=3):
        return F.max_pool2d(x, k, 1, k // 2)

    def erode(x, k=3):
        return -F.max_pool2d(-x, k, 1, k // 2)

    x = (erode(dilate(edges, 5), 5) - edges).clamp(0, 1).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    for _ in range(iters):
        v = x.clamp(0, 1)
        loss = (dilate(v) - v - edges).square().sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return x.detach().clamp(0, 1)


def as_digits(pairs, data: str):
    """Pairs (N, 1, R, 2R) in [-1, 1] -> (left digits, right halves read as digits), in [-1, 1]."""
    import torch

    r = pairs.shape[-1] // 2
    left, right = pairs[..., :r], pairs[..., r:]
    if data == "mnist-negative":
        return left, -right
    return left, torch.cat([decode_edges((c + 1) / 2) for c in right.split(500)]) * 2 - 1


def transform(left, data: str):
    """The known domain-B transform of left halves in [-1, 1] (through uint8, as the data)."""
    import torch

    from gankit.data.builtin import edge_map, negative

    u8 = ((left + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
    out = negative(u8) if data == "mnist-negative" else edge_map(u8)
    return torch.from_numpy(out).float() / 127.5 - 1


def score_pairs(pairs, data: str, classifier) -> dict:
    """Class agreement and pixel agreement of side-by-side pairs (N, 1, R, 2R) in [-1, 1]."""
    import torch

    left, right = as_digits(pairs, data)
    with torch.no_grad():
        a = torch.cat([classifier(c).argmax(1) for c in left.split(500)])
        b = torch.cat([classifier(c).argmax(1) for c in right.split(500)])
    r = pairs.shape[-1] // 2
    pixels = (transform(pairs[..., :r], data) > 0) == (pairs[..., r:] > 0)
    pa, pb = (torch.bincount(c, minlength=10).float() / len(c) for c in (a, b))
    observed, chance = float((a == b).float().mean()), float((pa * pb).sum())
    return {"agreement": round(observed, 4),
            "chance_agreement": round(chance, 4),
            "kappa": round((observed - chance) / (1 - chance), 4),
            "pixel_agreement": round(float(pixels.float().mean()), 4),
            "left_classes": torch.bincount(a, minlength=10).tolist(),
            "right_classes": torch.bincount(b, minlength=10).tolist()}


def real_references(data: str, resolution: int, n: int, classifier) -> dict:
    """The scores on real digits: unpaired (the dataset's items) and paired (digit | T(itself))."""
    import torch

    from gankit.data import load_dataset, to_signed

    unpaired = to_signed(load_dataset(data, resolution=resolution).data[:n])
    left = unpaired[..., :resolution]
    paired = torch.cat([left, transform(left, data)], dim=3)
    return {"unpaired": score_pairs(unpaired, data, classifier), "paired": score_pairs(paired, data, classifier)}


def train_seconds_from_log(run: Path, batch_size: int) -> float | None:
    """Seconds spent in training steps, from the logged img/s (excludes snapshots and saves)."""
    path = run / "metrics.jsonl"
    if not path.is_file():
        return None
    total, last = 0.0, 0
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        if "img_per_s" in rec:
            total += (rec["step"] - last) * batch_size / rec["img_per_s"]
            last = rec["step"]
    return round(total, 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs="+", help="cogan run directories (trained first when empty)")
    ap.add_argument("--data", default=None, help="mnist-edges | mnist-negative (default: from the run)")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="key=value for runs trained here")
    ap.add_argument("--n", type=int, default=2000, help="samples scored per run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)

    import torch

    import gankit
    from gankit.engine import checkpoint as ckpt
    from gankit.metrics.mnist_classifier import load_mnist_classifier

    classifier = load_mnist_classifier()
    results, references = [], {}
    for run in args.runs:
        trained_here = None
        if not ckpt.list_checkpoints(run):
            data = args.data or ("mnist-negative" if "neg" in run.name else "mnist-edges")
            print(f"training {run} on {data}", flush=True)
            result = gankit.train("cogan", data=data, out=run, preset="small", quiet=True, overrides=args.sets)
            trained_here = round(result.seconds, 1)
        model = gankit.load(run)
        config = model.config
        data = config.data
        started = time.perf_counter()
        pairs = model.sample(args.n, seed=args.seed)
        stats = score_pairs(pairs, data, classifier)
        # the ceiling for these samples: each generated left digit beside its own true transform
        left = pairs[..., :config.resolution]
        stats["agreement_if_paired"] = score_pairs(torch.cat([left, transform(left, data)], dim=3), data,
                                                   classifier)["agreement"]
        key = f"{data}@{config.resolution}"
        if key not in references:
            references[key] = real_references(data, config.resolution, args.n, classifier)
        row = {
            "run": str(run.resolve().relative_to(ROOT)) if run.resolve().is_relative_to(ROOT) else str(run),
            "data": data,
            "steps": model.step,
            "preset": config.preset,
            "private_g_blocks": config.private_g_blocks,
            "private_d_blocks": config.private_d_blocks,
            "ema": model.ema,
            "n": args.n,
            **stats,
            "reference": key,
            "train_seconds": trained_here if trained_here is not None
            else train_seconds_from_log(run, config.batch_size),
            "train_seconds_source": "measured" if trained_here is not None else "metrics.jsonl img/s",
            "score_seconds": round(time.perf_counter() - started, 1),
        }
        results.append(row)
        print(json.dumps({k: row[k] for k in ("run", "data", "agreement", "kappa", "agreement_if_paired",
                                              "pixel_agreement", "train_seconds")}),
              flush=True)
    doc = {
        "benchmark": "cogan_pairs",
        "what": "share of CoGAN samples whose left half and right half (read back as a digit) the MNIST "
                "classifier puts in the same class; chance ~0.1",
        "command": "python bench/cogan_pairs.py " + " ".join(str(r) for r in args.runs)
                   + "".join(f" --set {s}" for s in args.sets),
        "results": results,
        "references": references,
        "environment": environment(),
    }
    write_json(args.out, doc, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
