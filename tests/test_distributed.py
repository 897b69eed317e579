"""Two CPU processes under torchrun (gloo): DDP trains, rank 0 checkpoints, weights stay in sync."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import gankit
from gankit.engine import checkpoint as ckpt


def torchrun(run, family: str, steps: int, *extra: str, data: str = "mnist"):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "gankit", "train", family, "--data", data, "--out", str(run), "--preset", "tiny",
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


def test_torchrun_trains_cyclegan_through_the_wrapped_generator_pair(tmp_path):
    """CycleGAN (and DiscoGAN, its subclass) call G.ab / G.ba; under DDP they go through the
    wrapper's forward, which failed with "'DistributedDataParallel' object has no attribute 'ab'"."""
    done = torchrun(tmp_path / "cyc", "cyclegan", 3, data="mnist-negative")
    assert done.returncode == 0, done.stderr[-3000:]
    _, meta = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "cyc"))
    assert meta["step"] == 3 and meta["ranks_in_sync"] is True


def test_torchrun_with_steps_0_writes_the_step_0_checkpoint(tmp_path):
    """save() takes part in collectives on every rank; rank 0 alone calling it waited for a peer
    that had already left (gloo "Connection closed by peer")."""
    done = torchrun(tmp_path / "zero", "dcgan", 0)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "zero")] == ["step_00000000"]


def test_torchrun_stylegan2_resumes_exactly(tmp_path):
    """The path-length regulariser's running mean is averaged over the ranks (it was kept per rank
    and only rank 0's saved, so a resumed job drifted from step 8, its next path-length step)."""
    assert torchrun(tmp_path / "a", "stylegan2", 9).returncode == 0
    assert torchrun(tmp_path / "b", "stylegan2", 5).returncode == 0
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "gankit", "train", "--resume", str(tmp_path / "b"), "--steps", "9"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    a, _ = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "a"))
    b, meta = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "b"))
    assert meta["step"] == 9 and [k for k in a if not torch.equal(a[k], b[k])] == []
