"""StyleGAN2 speed on this machine: training images/s of candidate ``small`` widths (and of the
tiny and small presets), and sampling images/s of the ``paper256`` generator at batch 16.

Each candidate trains a few warm-up steps on random 64x64 faces-shaped data through gankit's own
Trainer (every phase: D, lazy R1, G, lazy path length), then ``--steps`` timed steps; the
lazy phases run at their real rate, so the figure is the sustained rate. Writes
``bench/results/stylegan2_speed.json`` with the CPU model and thread count beside every figure.

    python bench/stylegan2_speed.py --steps 8
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from gankit.config import build_config
from gankit.data import Dataset
from gankit.engine.runtime import Runtime
from gankit.engine.trainer import Trainer
from gankit.families.stylegan2 import StyleGAN2

from _environment import cpu_name, write_json  # bench/ is on sys.path when a script runs

OUT = Path(__file__).resolve().parent / "results" / "stylegan2_speed.json"
# channel_base / channel_max candidates for `small` at 64x64 (channels: 4..32 px, 64 px)
CANDIDATES = {
    "c128": dict(channel_base=4096, channel_max=128),   # 128 up to 32 px, 64 at 64 px
    "c64": dict(channel_base=2048, channel_max=64),     # 64 up to 32 px, 32 at 64 px (small until stop 15)
    "c16": dict(channel_base=1024, channel_max=64),     # 64 up to 16 px, 32 at 32, 16 at 64 px (small now)
    "c256": dict(channel_base=8192, channel_max=256),   # 256 up to 32 px, 128 at 64 px
}


def train_rate(overrides: dict, steps: int, warmup: int = 2, family=StyleGAN2) -> dict:
    config = build_config(family.Config, preset="small", overrides={"data": "random", "resolution": 64, **overrides})
    config.family = family.name
    r = config.resolution
    data = torch.randint(0, 256, (256, 3, r, r), dtype=torch.uint8)  # speed does not depend on content
    dataset = Dataset(data=data, source="random", kind="image")
    trainer = Trainer(family, config, dataset, Path("/tmp/stylegan2_speed"), Runtime(torch.device("cpu")), quiet=True)
    for _ in range(warmup):
        trainer.train_step()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    seconds = time.perf_counter() - start
    G, D = trainer.family.nets["G"], trainer.family.nets["D"]
    return {"img_per_s": steps * config.batch_size / seconds, "s_per_step": seconds / steps,
            "batch_size": config.batch_size, "resolution": r,
            "G_params": sum(p.numel() for p in G.parameters()), "D_params": sum(p.numel() for p in D.parameters())}


@torch.no_grad()
def sampling_rate(preset: str = "paper256", batch: int = 16, repeats: int = 3) -> dict:
    config = build_config(StyleGAN2.Config, preset=preset)
    G = StyleGAN2.build_generator(config, (3, config.resolution, config.resolution)).eval()
    z = torch.randn(batch, config.nz)
    G(z)
    start = time.perf_counter()
    for _ in range(repeats):
        G(z)
    seconds = (time.perf_counter() - start) / repeats
    return {"preset": preset, "batch": batch, "img_per_s": batch / seconds, "s_per_batch": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--candidates", nargs="*", default=list(CANDIDATES))
    parser.add_argument("--no-sampling", action="store_true")
    parser.add_argument("--no-dcgan", action="store_true", help="skip the DCGAN small (64 px) baseline")
    args = parser.parse_args()
    doc = {"cpu": cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__, "train": {}}
    for name in args.candidates:
        doc["train"][name] = {**CANDIDATES[name], **train_rate(CANDIDATES[name], args.steps)}
        print(name, json.dumps(doc["train"][name]), flush=True)
    if not args.no_dcgan:  # the baseline of the faces benchmark, same data and resolution
        from gankit.families.dcgan import DCGAN

        doc["train"]["dcgan_small_64"] = train_rate({}, args.steps * 4, family=DCGAN)
        print("dcgan", json.dumps(doc["train"]["dcgan_small_64"]), flush=True)
    if not args.no_sampling:
        doc["sample_paper256"] = sampling_rate()
        print("paper256 sampling", json.dumps(doc["sample_paper256"]), flush=True)
    write_json(OUT, doc)


if __name__ == "__main__":
    main()
