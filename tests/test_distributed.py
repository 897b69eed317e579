"""Two CPU processes under torchrun (gloo): DDP trains, rank 0 checkpoints, weights stay in sync."""

from __future__ import annotations

import subprocess
import sys

import gankit
from gankit.engine import checkpoint as ckpt


def test_torchrun_two_processes(tmp_path):
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "gankit", "train", "dcgan", "--data", "mnist", "--out", str(run), "--preset", "tiny",
           "--steps", "6", "--batch-size", "4", "--set", "checkpoint_every=3"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={
        **__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("done: step 6") == 1  # rank 0 alone reports
    tensors, meta = ckpt.load_checkpoint(ckpt.latest_checkpoint(run))
    assert meta["step"] == 6 and meta["world_size"] == 2
    assert meta["ranks_in_sync"] is True
    assert meta["batches_seen"] == 6  # one global batch of 2 x 4 images per step
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["step_00000003", "step_00000006"]
    assert gankit.load(run).sample(4, seed=0).shape == (4, 1, 16, 16)
