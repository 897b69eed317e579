"""Fault injection: is anything a user had ever lost? (issue 17; minutes, not CI)

Three parts, each against a real ``gankit train`` process:

Every run goes through ``python -m gankit._faults`` (gankit's CLI with a fault installed).

* **kills**: ``--kills`` (20) ``kill -9`` of a DCGAN run on MNIST, half at random moments
  (uniform in a window after the process starts, which lands in start-up, training, snapshot and
  checkpoint writes alike), half inside a checkpoint write at a random stage (half of
  ``state.safetensors`` on disk / tensors written, no ``meta.json`` / renamed but not synced /
  while rotating the oldest away). After each kill the run is resumed; at the end its final
  weights must equal, bit for bit, those of a run never interrupted.
* **full disk**: the same run into a small tmpfs (``mount -t tmpfs -o size=...``; where the
  machine refuses the mount, a child process whose file writes fail with ENOSPC past a byte
  budget): it must stop with one line and exit code 2, every checkpoint left must read, no
  temporary file may remain, and after copying the run to a roomy disk, ``--resume`` must end
  equal to the uninterrupted run.
* **dataset fuzz**: :mod:`fault_data` (1,000 generated good and bad image files).

    python bench/faults.py                      # all three, ~5 minutes on 2 cores
    python bench/faults.py --kills 4 --files 100 --out /tmp/f.json   # a quick look

Writes ``bench/results/faults.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _environment import cpu_name, environment  # noqa: E402

RUN = ["dcgan", "--data", "mnist", "--preset", "tiny", "--set", "max_images=512", "--set", "checkpoint_every=10",
       "--set", "keep_checkpoints=2", "--set", "log_every=5", "--set", "snapshot_every=50", "-q"]
STAGES = ("state", "meta", "rename", "rotate")


def start(fault: str, *argv) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "gankit._faults", fault, "--", *map(str, argv)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def train_args(run: Path, steps: int) -> list[str]:
    from gankit.engine import checkpoint as ckpt

    if ckpt.list_checkpoints(run):
        return ["train", "--resume", run]
    return ["train", *RUN, "--steps", steps, "--out", run]


# ---- checks ---------------------------------------------------------------------------------
def same_state(a: Path, b: Path) -> dict:
    import torch

    from gankit.engine import checkpoint as ckpt

    ta, ma = ckpt.load_checkpoint(ckpt.latest_checkpoint(a))
    tb, mb = ckpt.load_checkpoint(ckpt.latest_checkpoint(b))
    differ = sorted(k for k in ta.keys() | tb.keys() if k not in ta or k not in tb or not torch.equal(ta[k], tb[k]))
    return {"step": [ma["step"], mb["step"]], "tensors": len(ta), "tensors_differing": len(differ),
            "equal": not differ and ma["step"] == mb["step"] and ma["batches_seen"] == mb["batches_seen"]}


def intact(run: Path) -> dict:
    """Every checkpoint left reads; no temporary or damaged leftovers."""
    from gankit.engine import checkpoint as ckpt
    from gankit.errors import GankitError

    unreadable = []
    for path in ckpt.list_checkpoints(run):
        try:
            ckpt.load_checkpoint(path, family="dcgan")
        except GankitError as exc:
            unreadable.append(f"{path.name}: {exc}")
    root = ckpt.checkpoint_dir(run)
    leftovers = sorted(p.name for p in root.iterdir() if p.name.startswith(".")) if root.is_dir() else []
    return {"checkpoints": [p.name for p in ckpt.list_checkpoints(run)], "unreadable": unreadable,
            "leftovers": leftovers}


# ---- the three parts --------------------------------------------------------------------------
def kills(work: Path, straight: Path, n: int, steps: int, rng: random.Random) -> dict:
    from gankit.engine import checkpoint as ckpt

    run, log = work / "killed", []
    for i in range(n):
        targeted = i % 2 == 1
        fault = f"{rng.choice(STAGES)}:{rng.randint(1, 3)}" if targeted else "none"
        before = (ckpt.list_checkpoints(run) or [None])[-1]
        proc = start(fault, *train_args(run, steps))
        delay = rng.uniform(2.0, 8.0)
        try:
            proc.wait(timeout=None if targeted else delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        _, err = proc.communicate()
        root = ckpt.checkpoint_dir(run)
        mid_write = root.is_dir() and any(p.name.startswith((".tmp_step_", ".old_step_")) for p in root.iterdir())
        after = (ckpt.list_checkpoints(run) or [None])[-1]
        log.append({"kill": i + 1, "fault": fault if targeted else f"random after {delay:.2f}s",
                    "returncode": proc.returncode, "killed": proc.returncode == -signal.SIGKILL,
                    "inside_checkpoint_write": targeted or mid_write,
                    "newest_checkpoint": after.name if after else None,
                    "progress": (after.name if after else None) != (before.name if before else None),
                    **({"stderr": err.strip()[-300:]} if proc.returncode not in (0, -signal.SIGKILL) else {})})
        print(f"  kill {i + 1:2d}: {log[-1]['fault']:<18} rc={proc.returncode} newest={log[-1]['newest_checkpoint']}",
              flush=True)
        if proc.returncode == 0:
            break  # the run finished before this kill
    final = start("none", *train_args(run, steps))
    _, err = final.communicate()
    return {"kills": log, "kills_survived": sum(k["killed"] for k in log),
            "inside_checkpoint_writes": sum(k["killed"] and k["inside_checkpoint_write"] for k in log),
            "final_resume_returncode": final.returncode, "final_stderr": err.strip()[-300:],
            "final": intact(run), "vs_uninterrupted": same_state(run, straight)}


def fill(path: Path) -> int:
    """Write zeros into ``path`` until the filesystem is full (another program eating the disk)."""
    written, block = 0, b"\0" * 65536
    try:
        with open(path, "wb") as f:
            while True:
                f.write(block)
                f.flush()
                written += len(block)
    except OSError:
        pass
    return written


def full_disk(work: Path, straight: Path, steps: int, size_kib: int, rng: random.Random) -> dict:
    """Two runs on a small tmpfs: ``tight`` is too small for the third checkpoint (refused before a
    byte is written); ``filled`` has room until another program fills the disk at a random moment
    mid-run. Each must stop with one line and exit 2 and keep every checkpoint readable; the run
    is then rescued (the filler deleted; the tight one copied to a roomy disk) and ``--resume``
    must end equal to the uninterrupted run."""
    from gankit.engine import checkpoint as ckpt

    out = {}
    for case, kib in (("tight", 3 * 144 + 256), ("filled", size_kib)):
        mount = work / f"fs_{case}"
        mount.mkdir()
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(mount)],
                                 capture_output=True).returncode == 0
        run, rescued = mount / "run", work / f"rescued_{case}"
        try:
            fault = "none" if mounted else f"budget:{kib * 1024}"
            proc = start(fault, *train_args(run, steps))
            filled = 0
            if case == "filled":  # once the run has a checkpoint (else there is nothing to lose), at a random moment
                deadline = time.time() + 120
                while not ckpt.list_checkpoints(run) and proc.poll() is None and time.time() < deadline:
                    time.sleep(0.05)
                time.sleep(rng.uniform(0.5, 3.0))
                filled = fill(mount / "other_program.bin") if mounted else 0
            _, err = proc.communicate()
            state = intact(run)
            if case == "filled" and mounted:
                (mount / "other_program.bin").unlink()
                rescued = run  # the space is back: resume in place
            else:
                shutil.copytree(run, rescued)
            resumed = start("none", "train", "--resume", rescued, "-q")
            _, resume_err = resumed.communicate()
            equal = same_state(rescued, straight)
        finally:
            if mounted:
                subprocess.run(["umount", str(mount)], check=False)
        lines = [line for line in err.strip().splitlines() if not line.startswith("warning:")]
        out[case] = {"method": f"tmpfs of {kib} KiB" if mounted else f"ENOSPC past {kib} KiB (monkeypatched)",
                     "filled_by_other_program_kib": filled // 1024, "returncode": proc.returncode,
                     "error_lines": len(lines), "error": lines[-1] if lines else "",
                     "warnings": err.count("warning:"), "left_on_disk": state,
                     "resumed_returncode": resumed.returncode, "resume_stderr": resume_err.strip()[-300:],
                     "vs_uninterrupted": equal}
        print(f"  {case}: exit {proc.returncode}, {out[case]['error'][:120]!r}, "
              f"resumed equal: {equal['equal']}", flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--files", type=int, default=1000, help="dataset fuzz size (0: skip)")
    parser.add_argument("--disk-kib", type=int, default=4096, help="size of the tmpfs another program fills")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "faults.json")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    started = time.time()
    result: dict = {"bench": "faults", "environment": {**environment(), "cpu": cpu_name()}}
    with tempfile.TemporaryDirectory(prefix="gankit-faults-") as tmp:
        work = Path(tmp)
        straight = work / "straight"
        done = start("none", "train", *RUN, "--steps", args.steps, "--out", straight)
        assert done.wait() == 0, done.communicate()[1]
        print(f"kills ({args.kills}):", flush=True)
        result["kills"] = kills(work, straight, args.kills, args.steps, rng)
        print("full disk:", flush=True)
        result["full_disk"] = full_disk(work, straight, args.steps, args.disk_kib, rng)
        if args.files:
            from fault_data import fuzz_dataset

            print(f"dataset fuzz ({args.files} files):", flush=True)
            result["dataset_fuzz"] = fuzz_dataset(args.files, seed=args.seed)
    k, d = result["kills"], result["full_disk"]
    fuzz = result.get("dataset_fuzz", {})
    lost = {
        "kills: final weights differ from the uninterrupted run": not k["vs_uninterrupted"]["equal"],
        "kills: an unreadable checkpoint or leftover": bool(k["final"]["unreadable"] or k["final"]["leftovers"]),
        **{f"full disk ({case}): not one line with exit code 2": c["returncode"] != 2 or c["error_lines"] != 1
           for case, c in d.items()},
        **{f"full disk ({case}): an unreadable checkpoint or leftover": bool(c["left_on_disk"]["unreadable"]
                                                                            or c["left_on_disk"]["leftovers"])
           for case, c in d.items()},
        **{f"full disk ({case}): the rescued run differs": not c["vs_uninterrupted"]["equal"] for case, c in d.items()},
        "dataset fuzz: mismatches": bool(fuzz.get("mismatches")),
    }
    result["lost"] = [what for what, bad in lost.items() if bad]
    result["seconds"] = round(time.time() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"kills survived {k['kills_survived']} ({k['inside_checkpoint_writes']} inside checkpoint writes), "
          f"final weights equal: {k['vs_uninterrupted']['equal']}; full disk: "
          + ", ".join(f"{case} exit {c['returncode']}, rescued equal {c['vs_uninterrupted']['equal']}"
                      for case, c in d.items())
          + (f"; fuzz: {fuzz.get('files')} files" if fuzz else "") + f"; lost: {result['lost'] or 'nothing'}")
    print(f"wrote {args.out}")
    return 1 if result["lost"] else 0


if __name__ == "__main__":
    sys.exit(main())
