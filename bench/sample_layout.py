"""Sampling from a loaded model (``gankit.load``, as ``gankit sample`` and the studio do) in NCHW
against the same model in NHWC (``channels_last``).

``gankit.load`` gives a model the layout its run trained in (NHWC for the families whose config
has ``channels_last``); an imported StyleGAN2 is NCHW, so it reproduces the authors' code bit for
bit (``tests/test_import.py``), which NHWC's other summation order does not. Each family's ``small``
preset trains one step (its checkpoint is all that is needed), is loaded twice per repeat, and
samples 64 images (SRGAN upscales 16 fixed 24x24 inputs) five times after one warm-up; median
over ``--repeats``. The two layouts' outputs are compared too (they agree to float rounding).

    python bench/sample_layout.py --families stylegan2 sagan biggan progan dcgan srgan --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
from _environment import cpu_name, environment, write_json  # noqa: E402

import gankit  # noqa: E402
from gankit.model import load  # noqa: E402

CALLS = 5


def sample_ms(model, family: str) -> tuple[float, torch.Tensor]:
    def run():
        if family == "srgan":
            x = torch.rand(16, 3, 24, 24, generator=torch.Generator().manual_seed(0)) * 2 - 1
            return model.translate(x)
        return model.sample(64, seed=1)

    run()
    start = time.perf_counter()
    for _ in range(CALLS):
        out = run()
    return (time.perf_counter() - start) / CALLS * 1000, out


def measure(family: str, repeats: int) -> dict:
    run = Path(tempfile.mkdtemp()) / "run"
    gankit.train(family, out=run, steps=1, preset="small", quiet=True,
                 overrides=["snapshot_every=100000", "checkpoint_every=1"])
    times: dict[str, list[float]] = {"nchw": [], "nhwc": []}
    outputs = {}
    for _ in range(repeats):
        for layout in times:
            model = load(run)
            if layout == "nhwc":
                model.generator.to(memory_format=torch.channels_last)
            ms, outputs[layout] = sample_ms(model, family)
            times[layout].append(ms)
    median = {k: statistics.median(v) for k, v in times.items()}
    return {"family": family, "trains_channels_last": bool(getattr(model.config, "channels_last", False)),
            "ms": times, "median_ms": median, "speedup": median["nchw"] / median["nhwc"],
            "max_abs_diff": (outputs["nchw"] - outputs["nhwc"]).abs().max().item()}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--families", nargs="+", default=["stylegan2", "sagan", "biggan", "progan", "dcgan", "srgan"])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "sample_layout.json")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for family in args.families:
        row = measure(family, args.repeats)
        rows.append(row)
        print(f"{family:10s} NCHW {row['median_ms']['nchw']:8.1f} ms   NHWC "
              f"{row['median_ms']['nhwc']:8.1f} ms   x{row['speedup']:.2f}   max diff {row['max_abs_diff']:.1e}")
    result = {"cpu": cpu_name(), "environment": environment(), "threads": torch.get_num_threads(), "rows": rows}
    write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
