"""Training throughput of every preset of the face families (``stylegan2``, ``progan``, and
``dcgan`` as their baseline) on this machine, through gankit's own Trainer on random data of the
preset's shape.

Each phase of the family's update (StyleGAN2: D, lazy R1, G, lazy path length; ProGAN: D, G) is
timed on its own after one warm-up step (``--no-warmup``: none, for presets whose step takes
minutes), ``--repeats`` times (median), and the sustained step
time is the sum of phase times over their intervals (R1 counts 1/16, path length 1/4): a
``paper1024`` step takes minutes on a CPU, so running 16 of them to meet every lazy phase is not
an option. Paper presets train at ``--paper-batch`` images per step (their own batches, 32-64,
need tens of GiB on a CPU); the batch is written beside every figure. ProGAN is timed at its
last stage (full resolution, faded in), its most expensive one. Writes
``bench/results/preset_throughput.json`` (``--out``) with the CPU model and thread count, and
each row's seconds per 1,000 images (``s_per_kimg``, the unit of stylegan2-ada's published speeds).
On a GPU (``--device cuda``) every phase is timed between two device synchronisations.

    python bench/preset_throughput.py --repeats 2
    python bench/preset_throughput.py --only stylegan2:small progan:small
    python bench/preset_throughput.py --device cuda --paper-batch 64 --only stylegan2:paper256 --out /tmp/gpu.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _environment import cpu_name, device_sync, write_json  # noqa: E402

from gankit.config import build_config  # noqa: E402
from gankit.data import Dataset  # noqa: E402
from gankit.engine.runtime import Runtime, resolve_device  # noqa: E402
from gankit.engine.trainer import Trainer  # noqa: E402
from gankit.registry import get_family  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "preset_throughput.json"
PRESETS = {"stylegan2": ["tiny", "small", "paper256", "paper512", "paper1024"], "progan": ["tiny", "small", "paper"],
           "dcgan": ["tiny", "small", "paper"]}  # DCGAN: the baseline of the faces benchmark


def measure(family_name: str, preset: str, paper_batch: int, repeats: int, warmup: bool = True,
            device: torch.device = torch.device("cpu"), precision: str | None = None) -> dict:
    family = get_family(family_name)
    published = build_config(family.Config, preset=preset, overrides={"data": "random"})  # its own batch
    overrides = {"data": "random", **({"precision": precision} if precision else {})}
    # DCGAN's paper preset is 64 px: its own batch; the others at --paper-batch (the minibatch-stddev
    # group no larger than the batch)
    if preset.startswith("paper") and family_name != "dcgan" and paper_batch != published.batch_size:
        overrides["batch_size"] = paper_batch
        overrides["mbstd_group"] = min(paper_batch, getattr(published, "mbstd_group", 4))
    config = build_config(family.Config, preset=preset, overrides=overrides)
    config.family = family.name
    config.device = str(device)
    r, n = config.resolution, config.batch_size
    data = torch.randint(0, 256, (max(2 * n, 8), 3, r, r), dtype=torch.uint8)
    trainer = Trainer(family, config, Dataset(data=data, source="random", kind="image"),
                      Path("/tmp/preset_throughput"), Runtime(device), quiet=True)
    # ProGAN: the last stage, reached after the preset's images (steps x its own batch, so a
    # smaller paper batch does not leave the run at an early stage); the others do not depend on the step
    last = max(published.steps * published.batch_size // n - 1, 0)
    trainer.step = last
    if warmup:  # every phase once (skip it where one step takes minutes: allocation is noise there)
        trainer.train_step()
    times: dict[str, list[float]] = {p.name: [] for p in trainer.phases}
    for _ in range(repeats):
        trainer.step = last
        trainer.family.begin_step(last)
        trainer.last_batch = None
        for phase in trainer.phases:
            device_sync(device)
            start = time.perf_counter()
            trainer.run_phase(phase, {})
            device_sync(device)
            times[phase.name].append(time.perf_counter() - start)
    phase_s = {name: statistics.median(t) for name, t in times.items()}
    step_s = sum(phase_s[p.name] / p.interval for p in trainer.phases)
    nets = trainer.family.nets
    return {"family": family_name, "preset": preset, "resolution": r, "batch_size": n,
            "device": str(device), "precision": trainer.precision,
            "img_per_s": n / step_s, "s_per_step": step_s, "s_per_kimg": 1000 * step_s / n,
            "phases": {p.name: {"seconds": phase_s[p.name], "interval": p.interval} for p in trainer.phases},
            "params": {k: sum(p.numel() for p in v.parameters()) for k, v in nets.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paper-batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--only", nargs="*", default=[], help="family:preset pairs")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--precision", nargs="*", default=[None], help="fp32 | auto | bf16 | fp16 (default: the preset's)")
    parser.add_argument("--no-warmup", action="store_true", help="time the first step (for presets whose step takes minutes)")
    args = parser.parse_args()
    todo = [tuple(x.split(":")) for x in args.only] or [(f, p) for f, ps in PRESETS.items() for p in ps]
    device = resolve_device(args.device)
    out = args.out
    doc = json.loads(out.read_text()) if out.exists() else {"rows": {}}
    doc.update(cpu=cpu_name(), threads=torch.get_num_threads(), torch=torch.__version__)
    if device.type == "cuda":
        doc["gpu"] = torch.cuda.get_device_name(device)
    for (family_name, preset), precision in itertools.product(todo, args.precision):
        row = measure(family_name, preset, args.paper_batch, args.repeats, warmup=not args.no_warmup, device=device,
                      precision=precision)
        row["warmup"] = not args.no_warmup
        doc["rows"][f"{family_name}:{preset}" + (f":{precision}" if precision else "")] = row
        print(json.dumps(row), flush=True)
        write_json(out, doc)  # after every row: a long run keeps what it measured


if __name__ == "__main__":
    main()
