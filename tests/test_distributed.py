"""Two CPU processes under torchrun (gloo): DDP trains, rank 0 checkpoints, weights stay in sync."""

from __future__ import annotations

import subprocess
import sys

import pytest

import gankit
from gankit.engine import checkpoint as ckpt


def torchrun(run, family: str, steps: int, *extra: str):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "gankit", "train", family, "--data", "mnist", "--out", str(run), "--preset", "tiny",
           "--steps", str(steps), "--batch-size", "4", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={
        **__import__("os").environ, "OMP_NUM_THREADS": "1"})


def test_torchrun_two_processes(tmp_path):
    run = tmp_path / "ddp"
    done = torchrun(run, "dcgan", 6, "--set", "checkpoint_every=3")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("done: step 6") == 1  # rank 0 alone reports
    tensors, meta = ckpt.load_checkpoint(ckpt.latest_checkpoint(run))
    assert meta["step"] == 6 and meta["world_size"] == 2
    assert meta["ranks_in_sync"] is True
    assert meta["batches_seen"] == 6  # one global batch of 2 x 4 images per step
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["step_00000003", "step_00000006"]
    assert gankit.load(run).sample(4, seed=0).shape == (4, 1, 16, 16)


@pytest.mark.parametrize("family, steps", [
    ("progan", 12),  # through a fade: the blocks of later stages get no gradient (find_unused_parameters)
    ("stylegan2", 5),  # lazy R1 and path length (a double backward through the DDP-wrapped G) at step 0 and 4
])
def test_torchrun_trains_the_growing_and_style_based_families(tmp_path, family, steps):
    done = torchrun(tmp_path / family, family, steps)
    assert done.returncode == 0, done.stderr[-3000:]
    _, meta = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / family))
    assert meta["step"] == steps and meta["ranks_in_sync"] is True
