"""Every family's ``small`` preset on this machine, in one table (issue 18, "Speed"): training
images/s and the latency of sampling 64 images, at precision fp32 and auto.

Training: gankit's own Trainer on the family's natural built-in data (the config's default
``data``; ``fairface`` for stylegan2, whose small preset is for 64 px faces), ``--warmup`` untimed
steps then ``--steps`` timed ``train_step()`` calls, ``--repeats`` times (median, min, max).
"Images" are real training images drawn, as the training log's img/s counts them:
``Trainer.batches_seen x batch_size``, so a WGAN step (5 critic steps) reads 5 batches, and a
two-domain batch is ``batch_size`` items of domain A (with as many of domain B). The timed steps
are rounded up to whole cycles of the lazy phases (StyleGAN2's R1 every 16 steps, StarGAN's G
every 5) and sit at the end of the preset's schedule, where ProGAN trains at full resolution;
ADA's probability starts above 0 (at 0 it skips the augmentation a real run soon does).

Sampling: ``Model.sample(64)`` (``Model.translate`` of 64 data images for the image-to-image
families) as gankit does it: eval mode, no_grad, no autocast; median of 5 after one warm-up.
``precision=auto`` is resolved by ``gankit.engine.runtime.resolve_precision``; where it resolves
to a precision already timed (fp32 on AVX2 CPUs) that row is copied and marked ``same_as``.

    python bench/family_speed.py                                  # every family, fp32 and auto
    python bench/family_speed.py --families dcgan stylegan2 --steps 20 --repeats 3 --threads 4
    python bench/family_speed.py --families dcgan --data stacked-mnist --set ngf=64 --set reg=r1  # a recipe
    python bench/family_speed.py --families gan --preset toy --data ring8 --precisions fp32 --threads 1  # 2-D MLPs

Writes ``bench/results/family_speed.json`` (``--out``) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import functools
import math
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
from _environment import cpu_name, device_sync, environment, write_json  # noqa: E402

from gankit.config import build_config, parse_overrides  # noqa: E402
from gankit.engine.runtime import Runtime, resolve_device, resolve_precision  # noqa: E402
from gankit.engine.trainer import Trainer  # noqa: E402
from gankit.families.base import sample_images  # noqa: E402
from gankit.families.translation import translate_images  # noqa: E402
from gankit.registry import families  # noqa: E402

PRESET = "small"
# the others: their config's default data (mnist, mnist-edges, pictures, mnist-captions, ...)
DATA = {"stylegan2": "fairface", "singan": "china"}
ADA_P = 0.1  # ADA's augmentation probability while timed
N_SAMPLE, SAMPLE_REPEATS = 64, 5


def make_trainer(fam, precision: str, args, device: torch.device, run_dir: Path) -> Trainer:
    """The family's small preset (with ``--set``) on its built-in data (or ``--data``), as
    ``gankit train`` builds it."""
    config = build_config(fam.Config, preset=getattr(args, "preset", PRESET), overrides={
        **parse_overrides(fam.Config, args.sets), "data": args.data or DATA.get(fam.name, fam.Config.data),
        "max_images": args.images, "precision": precision, "device": str(device), "seed": 0})
    config.family = fam.name
    dataset = fam.load_data(config)
    fam.check_config(config, dataset.kind)
    return Trainer(fam, config, dataset, run_dir, Runtime(device), quiet=True)


def time_training(trainer: Trainer, args, sync) -> dict:
    cycle = math.lcm(*(phase.interval for phase in trainer.phases))
    steps = -(-args.steps // cycle) * cycle  # whole cycles: every lazy phase runs its share
    start = max(trainer.config.steps - args.warmup - steps, 0)  # end of the schedule
    augment = trainer.family.aux.get("augment")
    if augment is not None and hasattr(augment, "p") and float(augment.p) == 0:
        augment.p.fill_(ADA_P)
    rates, per_step, batches = [], [], []
    for _ in range(args.repeats):
        trainer.step = start
        for _ in range(args.warmup):
            trainer.train_step()
        sync()
        before, t = trainer.batches_seen, time.perf_counter()
        for _ in range(steps):
            trainer.train_step()
        sync()
        elapsed = time.perf_counter() - t
        drawn = trainer.batches_seen - before
        rates.append(drawn * trainer.config.batch_size / elapsed)
        per_step.append(elapsed / steps)
        batches.append(drawn / steps)
    return {"img_per_s": summary(rates), "sec_per_step": summary(per_step), "batches_per_step": batches[0],
            "timed_steps": steps, "warmup_steps": args.warmup, "first_step": start,
            "lazy_cycle": cycle}


def time_sampling(trainer: Trainer) -> dict:
    fam, config, G, ds = trainer.family_cls, trainer.config, trainer.sampling_generator(), trainer.dataset
    if fam.translates:
        src = ds.data_b if ds.data_b is not None and getattr(config, "direction", "AtoB") == "BtoA" else ds.data
        x = src[:N_SAMPLE]
        attrs = None if ds.attributes is None else ds.attributes[:N_SAMPLE].roll(1, 0)  # another item's

        def run():
            return translate_images(fam, G, config, x, attrs=attrs)
    else:
        def run():
            return sample_images(fam, G, config, N_SAMPLE, seed=0)
    run()  # warm-up
    times = []
    for _ in range(SAMPLE_REPEATS):
        t = time.perf_counter()
        out = run()  # a CPU tensor: the device is synchronised
        times.append((time.perf_counter() - t) * 1000)
    return {"sample_ms_64": summary(times), "sampled": "translate" if fam.translates else "sample",
            "sample_shape": list(out.shape)}


def summary(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3)}


def measure(fam, args, device: torch.device, sync) -> list[dict]:
    rows, done = [], {}  # precision used -> its row
    for asked in args.precisions:
        used = resolve_precision(asked, device, bf16_on_cpu=fam.bf16_on_cpu)
        if used in done:
            rows.append({**done[used], "precision": asked, "same_as": done[used]["precision"]})
            continue
        row = {"family": fam.name, "preset": args.preset, "precision": asked, "precision_used": used}
        print(f"{fam.name} {asked} ({used}) ...", flush=True)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                t = time.perf_counter()
                trainer = make_trainer(fam, asked, args, device, Path(tmp))
                c = trainer.config
                row.update(dataset=c.data, data_shape=list(trainer.dataset.shape), resolution=c.resolution,
                           batch_size=c.batch_size, setup_s=round(time.perf_counter() - t, 2))
                row.update(time_training(trainer, args, sync))
                row.update(time_sampling(trainer))
            print(f"  {row['img_per_s']['median']:.1f} img/s, {row['sec_per_step']['median']:.3f} s/step, "
                  f"sample 64: {row['sample_ms_64']['median']:.1f} ms", flush=True)
        except Exception as exc:  # noqa: BLE001 - one family failing must not stop the others
            row["error"] = f"{type(exc).__name__}: {exc}"
            row["traceback"] = traceback.format_exc(limit=-3)
            print(f"  failed: {row['error']}", flush=True)
        done[used] = row
        rows.append(row)
    return rows


def table(rows: list[dict], precisions: list[str]) -> str:
    head = ["family", "dataset", "resolution", "batch"] + [f"{p} img/s" + (" (used)" if p != "fp32" else "")
                                                          for p in precisions] + ["sample 64 ms"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in dict.fromkeys(r["family"] for r in rows):
        mine = {r["precision"]: r for r in rows if r["family"] == name}
        ok = next((r for r in mine.values() if "error" not in r), None)
        cells = [name, ok["dataset"] if ok else "-", str(ok["resolution"]) if ok else "-",
                 str(ok["batch_size"]) if ok else "-"]
        for p in precisions:
            r = mine[p]
            cell = "failed" if "error" in r else f"{r['img_per_s']['median']:.1f}"
            cells.append(cell if p == "fp32" else f"{cell} ({r['precision_used']})")
        cells.append(f"{ok['sample_ms_64']['median']:.1f}" if ok else "failed")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    with_small = [name for name, fam in families().items() if PRESET in fam.Config.PRESETS]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--families", nargs="+", default=with_small, choices=sorted(families()), metavar="FAMILY",
                   help=f"default: all with a small preset ({', '.join(with_small)})")
    p.add_argument("--preset", default=PRESET, help="preset to time (default small; e.g. toy for the 2-D MLPs "
                                                   "with --data ring8)")
    p.add_argument("--precisions", nargs="+", default=["fp32", "auto"], choices=["fp32", "auto", "bf16", "fp16"])
    p.add_argument("--steps", type=int, default=10, help="timed steps per repeat, rounded up to whole lazy cycles")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps before each repeat")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--images", type=int, default=512, help="dataset size (max_images; at least 64)")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (default: torch's own)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto")
    p.add_argument("--data", default=None, help="built-in dataset or folder for every family (default: each its own)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="training option on top of the small preset (repeatable)")
    p.add_argument("--out", default=str(BENCH_DIR / "results" / "family_speed.json"))
    args = p.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.repeats < 1 or args.images < N_SAMPLE:
        p.error(f"need --steps >= 1, --warmup >= 0, --repeats >= 1, --images >= {N_SAMPLE}")
    missing = [name for name in args.families if args.preset not in families()[name].Config.PRESETS]
    if missing:
        p.error(f"no {args.preset!r} preset in {', '.join(missing)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    sync = functools.partial(device_sync, device)
    all_families = families()
    rows = [row for name in args.families for row in measure(all_families[name], args, device, sync)]
    result = {"issue": 18, "preset": args.preset, "cpu": cpu_name(), "environment": environment(str(device)),
              "settings": {k: getattr(args, k) for k in ("steps", "warmup", "repeats", "images", "precisions", "data",
                                                         "sets")},
              "images_mean": "real training images drawn (Trainer.batches_seen x batch_size, as the training "
                             "log's img/s): a WGAN step reads d_steps batches; a two-domain batch is batch_size "
                             "items of domain A with as many of B",
              "sampling": f"{N_SAMPLE} images by Model.sample (Model.translate of {N_SAMPLE} data images for "
                          "image-to-image families): eval mode, no_grad, fp32 (no autocast at any precision)",
              "rows": rows}
    print(table(rows, args.precisions) + "\n")
    write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
