"""DCGAN training throughput (training images per second) through gankit's own engine.

The ``dcgan`` family with the ``paper`` preset (64x64, nz=100, ngf=ndf=64, 3 channels), on
synthetic uint8 images held in memory, one ``Trainer.train_step()`` per step (D phase, G phase,
EMA update), in several variants: precision (fp32 / bf16 / fp16 autocast), memory format
(channels_last) and ``torch.compile``; plus the training iteration of the reference PyTorch
DCGAN example (``bench/reference_dcgan_loop.py``) measured the same way, and optionally the
example script itself (``--reference-script``).

Variants are interleaved: every repeat runs each variant in turn (warm-up steps, then timed
steps), the order rotated by one each repeat, so that a shared machine's load drifts over all
of them alike; the JSON keeps every repeat and reports median / min / max.

    python bench/throughput.py                       # defaults for this device
    python bench/throughput.py --steps 8 --repeats 3
    python bench/throughput.py --variants fp32,channels_last,reference-example --repeats 5
    python bench/throughput.py --reference-script /tmp/examples/dcgan/main.py

See bench/README.md for the JSON fields.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from gankit.nn import strided_conv

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

PRESET = "paper"
TOKENS = ("fp32", "bf16", "fp16", "channels_last", "compile", "reuse", "torchconv")
REFERENCE = "reference-example"
SCRIPT = "reference-example-script"
DEFAULT_VARIANTS = {
    "cpu": ["fp32", "channels_last", "channels_last+reuse", "bf16", "bf16+channels_last", "bf16+channels_last+torchconv",
            "bf16+channels_last+compile", "bf16+channels_last+reuse", REFERENCE],
    "cuda": ["fp32", "channels_last", "bf16", "fp16", "bf16+channels_last", "compile",
             "channels_last+compile", "bf16+channels_last+compile", REFERENCE],
}


# ---- variants -------------------------------------------------------------------------------
def parse_variant(name: str) -> dict:
    """``"channels_last+compile"`` -> its settings; ``fp32`` alone is plain eager fp32."""
    if name in (REFERENCE, SCRIPT):
        return {"kind": "reference" if name == REFERENCE else "script", "precision": "fp32",
                "channels_last": False, "compile": False, "reuse_fakes": False}
    parts = name.split("+")
    bad = [p for p in parts if p not in TOKENS]
    precisions = [p for p in parts if p in ("fp32", "bf16", "fp16")]
    if bad or len(precisions) > 1 or len(set(parts)) != len(parts):
        raise SystemExit(f"unknown variant {name!r}: join {', '.join(TOKENS)} with '+', "
                         f"or use {REFERENCE} / {SCRIPT}")
    return {"kind": "gankit", "precision": precisions[0] if precisions else "fp32",
            "channels_last": "channels_last" in parts, "compile": "compile" in parts,
            "reuse_fakes": "reuse" in parts, "torch_conv": "torchconv" in parts}


def flop_key(spec: dict) -> str:
    """Variants that do the same arithmetic share one FLOP count: reuse_fakes does less."""
    return spec["kind"] + ("+reuse" if spec.get("reuse_fakes") else "")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_dataset(n: int, resolution: int, seed: int):
    from gankit.data import Dataset

    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, resolution, resolution), dtype=torch.uint8, generator=gen)
    return Dataset(data=images, kind="image", source="synthetic")


def gankit_config(spec: dict, args, device: torch.device):
    from gankit.config import build_config
    from gankit.registry import get_family

    fam = get_family("dcgan")
    config = build_config(fam.Config, preset=PRESET, overrides={
        "batch_size": args.batch_size, "channels_last": spec["channels_last"], "precision": spec["precision"],
        "compile": spec["compile"], "reuse_fakes": spec.get("reuse_fakes", False), "device": str(device),
        "seed": args.seed})
    config.family = "dcgan"
    config.channels = 3
    return fam, config


class GankitRunner:
    def __init__(self, spec: dict, args, device: torch.device, dataset, run_dir: Path):
        from gankit.engine.runtime import Runtime
        from gankit.engine.trainer import Trainer

        fam, self.config = gankit_config(spec, args, device)
        self.trainer = Trainer(fam, self.config, dataset, run_dir, Runtime(device), quiet=True)
        # "torchconv": torch's own backward in every strided layer (no dilated weight gradient)
        self.small_side = 0 if spec.get("torch_conv") else strided_conv.SMALL_SIDE

    def step(self) -> int:
        before = self.trainer.batches_seen
        default, strided_conv.SMALL_SIDE = strided_conv.SMALL_SIDE, self.small_side
        try:
            self.trainer.train_step()
        finally:
            strided_conv.SMALL_SIDE = default
        return (self.trainer.batches_seen - before) * self.config.batch_size


class ReferenceRunner:
    def __init__(self, spec: dict, args, device: torch.device, dataset, run_dir: Path):
        from reference_dcgan_loop import ReferenceLoop

        self.loop = ReferenceLoop(dataset.data, device, batch_size=args.batch_size, seed=args.seed)

    def step(self) -> int:
        return self.loop.step()


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int = 2048, budget_s: float = 10.0) -> float:
    """GFLOP/s of an n x n x n matrix product in ``dtype`` (the best of a few, within a budget):
    the ceiling the training rates are compared with, measured in the same run."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    best, spent = float("inf"), 0.0
    for i in range(6):
        sync(device)
        t = time.perf_counter()
        torch.mm(a, b)
        sync(device)
        took = time.perf_counter() - t
        spent += took
        if i > 0:  # the first is a warm-up
            best = min(best, took)
        if spent > budget_s and i > 0:
            break
    return 2 * n ** 3 / best / 1e9


def count_gflop(key: str, args, device: torch.device, dataset) -> float | None:
    """Floating-point operations of one training step (forward + backward of every conv,
    matmul...), counted by ``FlopCounterMode`` on a separate eager fp32 instance. The count
    is the same for channels_last, compile and autocast (same maths, other kernels)."""
    from torch.utils.flop_counter import FlopCounterMode

    spec = parse_variant({"gankit": "fp32", "gankit+reuse": "fp32+reuse"}.get(key, REFERENCE))
    with tempfile.TemporaryDirectory() as tmp:
        runner = (GankitRunner if spec["kind"] == "gankit" else ReferenceRunner)(spec, args, device, dataset,
                                                                                 Path(tmp))
        runner.step()  # first step allocates optimizer state; count a steady one
        with FlopCounterMode(display=False) as counter:
            runner.step()
        sync(device)
    return counter.get_total_flops() / 1e9


# ---- the example script (optional) ----------------------------------------------------------
ITER_LINE = re.compile(r"^\[(\d+)/(\d+)\]\[(\d+)/(\d+)\]")


def run_example_script(script: Path, args, device: torch.device, skip: int) -> dict:
    """Run pytorch/examples' dcgan/main.py for one epoch of its FakeData (1000 random PIL
    images, decoded and converted by its DataLoader each step) and time its progress lines:
    the rate covers iterations ``skip`` .. last full batch, so start-up, worker spawn and the
    first iteration's sample images are excluded; data loading is included."""
    with tempfile.TemporaryDirectory() as outf:
        cmd = [sys.executable, "-u", str(script), "--dataset", "fake", "--niter", "1",
               "--batchSize", str(args.batch_size), "--imageSize", "64", "--workers", str(args.script_workers),
               "--outf", outf, "--manualSeed", str(args.seed + 1)]
        if device.type == "cuda":
            cmd.append("--accel")
        env = dict(os.environ)
        if args.threads:
            env["OMP_NUM_THREADS"] = str(args.threads)
        t_start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                cwd=outf, bufsize=1)
        stamps: dict[int, float] = {}
        total = None
        tail: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            now = time.perf_counter()
            m = ITER_LINE.match(line)
            if m:
                stamps[int(m.group(3))] = now
                total = int(m.group(4))
            else:
                tail = (tail + [line.rstrip()])[-20:]
        rc = proc.wait()
        wall = time.perf_counter() - t_start
    if rc != 0 or total is None:
        raise RuntimeError(f"example script failed (rc={rc}): " + " | ".join(tail[-5:]))
    dataset_size = 1000  # torchvision FakeData's default size, which the example uses
    last_full = total - 1 if dataset_size % args.batch_size == 0 else total - 2
    first = max(skip, 1)
    if last_full <= first:
        raise RuntimeError(f"example script ran only {total} iterations; too few to time")
    seconds = stamps[last_full] - stamps[first - 1]
    iters = last_full - first + 1
    return {"img_per_s": iters * args.batch_size / seconds, "sec_per_step": seconds / iters, "steps": iters,
            "process_wall_s": wall, "startup_s": stamps[0] - t_start, "iterations_run": total,
            "command": ["<script>"] + [("<tmp>" if a == outf else a) for a in cmd[3:]]}


# ---- machine -------------------------------------------------------------------------------
def cpu_info() -> dict:
    info = {"model": platform.processor() or platform.machine(), "flags": []}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and info["model"] in ("", platform.processor() or platform.machine()):
            info["model"] = value.strip()
        elif key == "flags" and not info["flags"]:
            interesting = {"avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16",
                           "amx_tile", "avx_vnni"}
            info["flags"] = sorted(interesting & set(value.split()))
    return info


def machine_info(device: torch.device) -> dict:
    info = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "cpu": cpu_info(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
    return info


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# ---- main ----------------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=10, help="timed steps per variant per repeat (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps before each timed run (default 2)")
    p.add_argument("--repeats", type=int, default=2, help="interleaved rounds over the variants (default 2)")
    p.add_argument("--variants", default="", help="comma list; '+'-joined from fp32,bf16,fp16,channels_last,reuse,torchconv,"
                   f"compile, or {REFERENCE}, {SCRIPT} (default: a set for the device)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--out", default=str(BENCH_DIR / "results" / "throughput.json"))
    p.add_argument("--budget", type=float, default=30.0,
                   help="seconds per timed run: stop before --steps once --min-steps are done and this much "
                        "time is spent (keeps a very slow variant, e.g. bf16 on a CPU without fast bf16, to "
                        "a couple of steps); also drops the 2nd+ warm-up step when the 1st took > budget/4")
    p.add_argument("--min-steps", type=int, default=2, help="timed steps always run (default 2)")
    p.add_argument("--reference-script", type=Path, default=None,
                   help="path to pytorch/examples dcgan/main.py: also time it as reference-example-script")
    p.add_argument("--script-workers", type=int, default=2, help="--workers for the example script (its default 2)")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (default: torch's own)")
    p.add_argument("--dataset-size", type=int, default=2048, help="synthetic images held in memory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cudnn-benchmark", action="store_true",
                   help="CUDA: set torch.backends.cudnn.benchmark = True for every variant (the example "
                        "script does; gankit does not)")
    p.add_argument("--no-flops", action="store_true", help="skip the GFLOP/step count")
    p.add_argument("--keep-inductor-cache", action="store_true",
                   help="compile with the usual on-disk inductor cache (default: a fresh one, so the "
                        "compile time reported is a cold compile)")
    args = p.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.repeats < 1 or args.batch_size < 1 or args.min_steps < 1:
        p.error("need --steps >= 1, --warmup >= 0, --repeats >= 1, --batch-size >= 1, --min-steps >= 1")
    args.min_steps = min(args.min_steps, args.steps)
    return args


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def main(argv=None) -> dict:
    args = parse_args(argv)
    inductor_tmp = None
    if not args.keep_inductor_cache:
        inductor_tmp = tempfile.mkdtemp(prefix="gankit-bench-inductor-")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = inductor_tmp
    if args.threads:
        torch.set_num_threads(args.threads)

    from gankit.engine.runtime import resolve_device

    device = resolve_device(args.device)
    dev_kind = "cuda" if device.type == "cuda" else "cpu"
    names = [v.strip() for v in args.variants.split(",") if v.strip()] or list(DEFAULT_VARIANTS[dev_kind])
    names = list(dict.fromkeys(names))  # drop repeats, keep the order
    if not args.variants and args.reference_script is not None:
        names.append(SCRIPT)
    specs = {name: parse_variant(name) for name in names}
    if SCRIPT in specs and args.reference_script is None:
        raise SystemExit(f"{SCRIPT} needs --reference-script PATH (pytorch/examples dcgan/main.py)")
    if device.type == "cuda" and args.cudnn_benchmark:
        torch.backends.cudnn.benchmark = True  # the example script sets it; gankit leaves the default

    for spec in specs.values():
        spec["warmup"] = max(args.warmup, 1) if spec["compile"] else args.warmup  # never time a compile

    dataset = make_dataset(args.dataset_size, 64, args.seed)
    result = {
        "benchmark": "dcgan-throughput",
        "created": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": [Path(sys.argv[0]).name] + (sys.argv[1:] if argv is None else list(argv)),
        "settings": {
            "family": "dcgan", "preset": PRESET, "resolution": 64, "nz": 100, "ngf": 64, "ndf": 64, "channels": 3,
            "batch_size": args.batch_size, "steps": args.steps, "warmup": args.warmup, "repeats": args.repeats,
            "budget_s": args.budget, "min_steps": args.min_steps, "dataset_size": args.dataset_size,
            "data": "synthetic uint8, in memory", "cudnn_benchmark": bool(args.cudnn_benchmark),
            "inductor_cache": "kept" if args.keep_inductor_cache else "fresh (cold compile)",
        },
        "machine": machine_info(device),
        "load_average_start": load_average(),
    }
    print(f"device {device} | torch {torch.__version__} | {torch.get_num_threads()} threads | "
          f"{result['machine']['cpu']['model']} | batch {args.batch_size} | load {result['load_average_start']}",
          flush=True)

    peaks = {name: round(matmul_peak(device, dtype), 1) for name, dtype in
             (("fp32", torch.float32), ("bf16", torch.bfloat16))}
    result["matmul_2048_gflop_per_s"] = peaks
    print(f"  matrix product 2048^3: fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s", flush=True)
    gflop = {}
    if not args.no_flops:
        kinds = {flop_key(s) for s in specs.values()}
        if "script" in kinds:
            kinds.add("reference")  # the script runs the same networks and iteration
        for kind in sorted(kinds - {"script"}):
            t = time.perf_counter()
            try:
                gflop[kind] = count_gflop(kind, args, device, dataset)
            except Exception as exc:  # noqa: BLE001 - the rates matter more than the count
                print(f"  could not count FLOPs for {kind}: {type(exc).__name__}: {exc}", flush=True)
                continue
            print(f"  counted {gflop[kind]:.1f} GFLOP/step for {kind} ({time.perf_counter() - t:.0f} s)", flush=True)
    if SCRIPT in specs:
        gflop["script"] = gflop.get("reference")

    run_root = Path(tempfile.mkdtemp(prefix="gankit-bench-"))
    runners: dict[str, object] = {}
    records = {name: {"img_per_s_runs": [], "sec_per_step_runs": []} for name in specs}
    for name, spec in specs.items():
        if spec["kind"] == "script":
            continue
        t = time.perf_counter()
        try:
            cls = GankitRunner if spec["kind"] == "gankit" else ReferenceRunner
            runners[name] = cls(spec, args, device, dataset, run_root / name.replace("+", "_"))
        except Exception as exc:  # noqa: BLE001 - a broken variant is reported, the rest still run
            records[name]["error"] = f"{type(exc).__name__}: {exc}"
            print(f"  {name}: setup failed: {records[name]['error']}", flush=True)
        records[name]["setup_s"] = time.perf_counter() - t

    turns = []
    live = [n for n in names if "error" not in records[n]]
    try:
        for r in range(args.repeats):
            order = live[r % len(live):] + live[:r % len(live)] if live else []
            for name in order:
                spec, rec = specs[name], records[name]
                if "error" in rec:
                    continue
                try:
                    if spec["kind"] == "script":
                        out = run_example_script(args.reference_script, args, device, skip=max(args.warmup, 1))
                        rec.setdefault("script_runs", []).append(out)
                        rate, per_step = out["img_per_s"], out["sec_per_step"]
                        rec.setdefault("steps_runs", []).append(out["steps"])
                        rec.setdefault("warmup_runs", []).append(max(args.warmup, 1))
                    else:
                        runner = runners[name]
                        warm_times = []
                        for _ in range(spec["warmup"]):
                            t = time.perf_counter()
                            runner.step()
                            sync(device)
                            warm_times.append(time.perf_counter() - t)
                            if not spec["compile"] and warm_times[0] > args.budget / 4:
                                break  # a very slow variant: one warm-up step is enough
                        if "first_warmup_s" not in rec:
                            rec["first_warmup_s"] = warm_times
                        sync(device)
                        images, steps, t = 0, 0, time.perf_counter()
                        while steps < args.steps:
                            images += runner.step()
                            steps += 1
                            if steps >= args.min_steps and time.perf_counter() - t > args.budget:
                                sync(device)
                                if time.perf_counter() - t > args.budget:
                                    break
                        sync(device)
                        elapsed = time.perf_counter() - t
                        rate, per_step = images / elapsed, elapsed / steps
                        rec.setdefault("steps_runs", []).append(steps)
                        rec.setdefault("warmup_runs", []).append(len(warm_times))
                except Exception as exc:  # noqa: BLE001
                    rec["error"] = f"{type(exc).__name__}: {exc}"
                    print(f"  repeat {r + 1}: {name} failed: {rec['error']}", flush=True)
                    continue
                rec["img_per_s_runs"].append(rate)
                rec["sec_per_step_runs"].append(per_step)
                turns.append({"repeat": r + 1, "variant": name, "img_per_s": round(rate, 2),
                              "load_average": load_average()})
                print(f"  repeat {r + 1}/{args.repeats}  {name:<28} {rate:8.2f} img/s  {per_step:7.3f} s/step",
                      flush=True)
    finally:
        shutil.rmtree(run_root, ignore_errors=True)
        if inductor_tmp:
            shutil.rmtree(inductor_tmp, ignore_errors=True)

    variants = {}
    for name in names:
        rec, spec = records[name], specs[name]
        entry = {"kind": spec["kind"], "precision": spec["precision"], "channels_last": spec["channels_last"],
                 "compile": spec["compile"], "reuse_fakes": spec["reuse_fakes"], "timed_steps": rec.get("steps_runs", []),
                 "warmup_steps": rec.get("warmup_runs", [])}
        if rec["img_per_s_runs"]:
            entry["img_per_s"] = summary([round(x, 3) for x in rec["img_per_s_runs"]])
            entry["sec_per_step"] = summary([round(x, 4) for x in rec["sec_per_step_runs"]])
        g = gflop.get(flop_key(spec))
        if g is not None:
            entry["gflop_per_step"] = round(g, 2)
            if rec["sec_per_step_runs"]:
                entry["gflop_per_s"] = round(g / statistics.median(rec["sec_per_step_runs"]), 2)
                peak = result["matmul_2048_gflop_per_s"].get("bf16" if spec["precision"] == "bf16" else "fp32")
                if peak:
                    entry["share_of_matmul_peak"] = round(entry["gflop_per_s"] / peak, 3)
        if "setup_s" in rec:
            entry["setup_s"] = round(rec["setup_s"], 3)
        if "first_warmup_s" in rec:
            warm = rec["first_warmup_s"]
            entry["first_warmup_step_s"] = [round(x, 3) for x in warm]
            if spec["compile"] and warm and rec["sec_per_step_runs"]:
                steady = statistics.median(rec["sec_per_step_runs"])
                entry["compile_s"] = round(max(0.0, sum(warm) - len(warm) * steady), 2)
        if "script_runs" in rec:
            entry["script"] = rec["script_runs"]
            entry["note"] = ("the example script itself, FakeData decoded by its DataLoader each step "
                             f"(--workers {args.script_workers}): includes data loading")
        if "error" in rec:
            entry["error"] = rec["error"]
        variants[name] = entry
    base = variants.get("fp32", {}).get("img_per_s", {}).get("median")
    if base:
        for entry in variants.values():
            if "img_per_s" in entry:
                entry["speedup_vs_fp32"] = round(entry["img_per_s"]["median"] / base, 3)
    ref = variants.get(REFERENCE, {}).get("img_per_s", {}).get("median")
    if ref:
        for entry in variants.values():
            if "img_per_s" in entry:
                entry["speedup_vs_reference"] = round(entry["img_per_s"]["median"] / ref, 3)
    result.update(variants=variants, turns=turns, load_average_end=load_average())

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(out)
    print_table(result)
    print(f"wrote {out}")
    return result


def print_table(result: dict) -> None:
    head = f"{'variant':<28} {'img/s med':>9} {'min':>7} {'max':>7} {'s/step':>7} {'x fp32':>6} " \
           f"{'compile s':>9} {'GFLOP/st':>8} {'GFLOP/s':>7}"
    print()
    print(head)
    print("-" * len(head))
    for name, e in result["variants"].items():
        if "img_per_s" not in e:
            print(f"{name:<28} {'failed: ' + e.get('error', '?')}")
            continue
        ips = e["img_per_s"]

        def fmt(key, spec):
            return format(e[key], spec) if e.get(key) is not None else "-"

        print(f"{name:<28} {ips['median']:9.2f} {ips['min']:7.2f} {ips['max']:7.2f} "
              f"{e['sec_per_step']['median']:7.3f} {fmt('speedup_vs_fp32', '6.2f'):>6} "
              f"{fmt('compile_s', '9.1f'):>9} {fmt('gflop_per_step', '8.1f'):>8} {fmt('gflop_per_s', '7.1f'):>7}")


if __name__ == "__main__":
    main()
