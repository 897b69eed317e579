"""Does a faster setting cost quality? (issue 18)

Trains one family on one dataset for the same steps with each variant's overrides, over
several seeds, and scores every run with FID (``gankit.metrics.evaluate``, the dataset's own
features: the digit classifier on MNIST). A speed setting is the default only when its FID is
within the seed-to-seed spread of the baseline's.

    python bench/quality_parity.py --variant base --seeds 0 1 2
    python bench/quality_parity.py --variant reuse+channels_last --seeds 0 1 2
    python bench/quality_parity.py --variant bf16 --seeds 0 1 2   # slow where bf16 is emulated
    python bench/quality_parity.py --variant fp32 --seeds 0 1 2   # the preset as it is, in fp32
    python bench/quality_parity.py --variant auto --seeds 0 1 2   # precision=auto (bf16 on AMX / AVX512-BF16)
    python bench/quality_parity.py --data fairface --set resolution=64 --steps 800 --variant auto

Each call adds its rows to ``bench/results/quality_parity_<family>_<data>.json`` (so variants
can run side by side, one per core, and be compared in one file).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _environment import cpu_name, environment, write_json  # noqa: E402

VARIANTS = {
    "base": {"reuse_fakes": False, "channels_last": False, "precision": "fp32"},
    "reuse": {"reuse_fakes": True, "channels_last": False, "precision": "fp32"},
    "reuse+channels_last": {"reuse_fakes": True, "channels_last": True, "precision": "fp32"},
    "bf16": {"reuse_fakes": False, "channels_last": False, "precision": "bf16"},
    # the preset's own settings, in fp32 and in precision=auto (the default): the bf16 parity check
    "fp32": {"precision": "fp32"},
    "auto": {"precision": "auto"},
    # candidates for `make demo` (DCGAN small, 1,500 steps): faster learning rates
    "lr4e-4": {"channels_last": True, "precision": "fp32", "lr_g": 4e-4, "lr_d": 4e-4},
    "ttur": {"channels_last": True, "precision": "fp32", "lr_g": 1e-4, "lr_d": 4e-4},
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", default="dcgan")
    parser.add_argument("--data", default="mnist")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--steps", type=int, default=None, help="the preset's when left out")
    parser.add_argument("--variant", choices=sorted(VARIANTS), required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n", type=int, default=5000, help="samples for FID")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra config overrides for every variant (e.g. resolution=64)")
    args = parser.parse_args()
    out = args.out or Path(__file__).parent / "results" / f"quality_parity_{args.family}_{args.data}.json"

    import gankit
    from gankit.metrics import evaluate

    rows = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            run = Path(tmp) / "run"
            started = time.perf_counter()
            result = gankit.train(args.family, data=args.data, out=run, preset=args.preset, steps=args.steps,
                                  seed=seed, quiet=True,
                                  overrides=[*args.set, *(f"{k}={v}" for k, v in VARIANTS[args.variant].items())])
            seconds = time.perf_counter() - started
            fid = evaluate(run, metrics="fid", n=args.n)
            used = json.loads((run / "config.json").read_text()).get("precision_used")
            rows.append({"variant": args.variant, "seed": seed, "steps": result.step, "train_s": round(seconds, 1),
                         "fid": round(fid["fid"], 3), "features": fid["features"], "n": args.n,
                         "precision_used": used, "overrides": args.set})
            print(rows[-1], flush=True)
    doc = json.loads(out.read_text()) if out.exists() else {"bench": "quality_parity", "family": args.family,
                                                            "data": args.data, "preset": args.preset, "rows": []}
    doc["rows"] = [r for r in doc["rows"] if r["variant"] != args.variant] + rows
    doc.setdefault("environment", {})[args.variant] = {**environment(), "cpu": cpu_name()}
    write_json(out, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
