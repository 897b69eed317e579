"""The engine's promises: exact resume, stop on signals, checkpoints, outputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import gankit
from gankit.engine import checkpoint as ckpt

TINY = dict(preset="tiny", quiet=True)


def final_state(run):
    tensors, meta = ckpt.load_checkpoint(ckpt.latest_checkpoint(run))
    return tensors, meta


def assert_same_state(run_a, run_b):
    ta, ma = final_state(run_a)
    tb, mb = final_state(run_b)
    assert ma["step"] == mb["step"] and ma["batches_seen"] == mb["batches_seen"]
    assert ta.keys() == tb.keys()
    different = [k for k in ta if not torch.equal(ta[k], tb[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    """dcgan, 40 steps without interruption (shared by the resume tests)."""
    run = tmp_path_factory.mktemp("straight") / "run"
    gankit.train("dcgan", data="mnist", out=run, steps=40, **TINY)
    return run


def test_resumed_run_equals_an_uninterrupted_one(straight_run, tmp_path):
    gankit.train("dcgan", data="mnist", out=tmp_path / "r", steps=20, **TINY)
    result = gankit.train(resume=tmp_path / "r", steps=40, quiet=True)
    assert result.step == 40 and result.status == "finished"
    assert_same_state(straight_run, tmp_path / "r")


def test_resume_with_another_architecture_is_refused_by_name_and_keeps_the_config(tmp_path, cli):
    """Was a cut-off "Error(s) in loading state_dict for DCGANGenerator:", with config.json
    already rewritten to the refused ngf."""
    run = tmp_path / "r"
    gankit.train("dcgan", data="mnist", out=run, steps=2, **TINY)
    before = (run / "config.json").read_text()
    done = cli("train", "--resume", run, "--steps", "4", "--set", "ngf=32", "-q")
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0
    assert "--set ngf" in done.stderr and "ngf=8" in done.stderr and "architecture stays" in done.stderr
    assert (run / "config.json").read_text() == before
    assert cli("train", "--resume", run, "--steps", "4", "--set", "lr_g=1e-4", "-q").returncode == 0
    assert json.loads((run / "config.json").read_text())["config"]["lr_g"] == 1e-4
    behind = cli("train", "--resume", run, "--steps", "3", "-q")  # was a silent "done: step 4"
    assert behind.returncode == 2 and "already at step 4" in behind.stderr


@pytest.mark.parametrize("stop_at", [1, 13, 39])
def test_sigterm_at_any_step_then_resume_equals_uninterrupted(straight_run, tmp_path, stop_at):
    def kill_at(trainer, step):
        if step == stop_at:
            os.kill(os.getpid(), signal.SIGTERM)

    result = gankit.train("dcgan", data="mnist", out=tmp_path / "r", steps=40, on_step=kill_at, **TINY)
    assert result.status == "interrupted" and result.step == stop_at + 1
    assert result.stop_signal == signal.SIGTERM
    assert final_state(tmp_path / "r")[1]["step"] == stop_at + 1  # the checkpoint written on the signal
    gankit.train(resume=tmp_path / "r", quiet=True)  # config keeps steps=40
    assert_same_state(straight_run, tmp_path / "r")


def test_cli_run_killed_by_sigterm_resumes_exactly(tmp_path, cli):
    """A real SIGTERM from outside at an unknown step, through the CLI, with the exit code."""
    run = tmp_path / "killed"
    cmd = [sys.executable, "-m", "gankit", "train", "gan", "--data", "ring8", "--out", str(run),
           "--preset", "tiny", "--steps", "1000000", "--set", "log_every=1", "--set", "checkpoint_every=100000",
           "--set", "snapshot_every=100000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = run / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not metrics.exists() or len(metrics.read_text().splitlines()) < 5):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "--resume" in out
    stopped = final_state(run)[1]["step"]
    assert 5 <= stopped < 1_000_000
    resumed = cli("train", "--resume", run, "--steps", stopped + 3, "-q")
    assert resumed.returncode == 0, resumed.stderr
    fresh = cli("train", "gan", "--data", "ring8", "--out", tmp_path / "fresh", "--preset", "tiny",
                "--steps", stopped + 3, "-q", "--set", "log_every=1")
    assert fresh.returncode == 0, fresh.stderr
    assert_same_state(run, tmp_path / "fresh")


def test_run_directory_holds_what_a_user_looks_at(straight_run):
    names = {p.name for p in straight_run.iterdir()}
    assert {"samples", "timelapse.gif", "losses.png", "metrics.jsonl", "tensorboard", "checkpoints",
            "config.json"} <= names
    assert any(p.name.startswith("events.out.tfevents") for p in (straight_run / "tensorboard").iterdir())
    snaps = sorted(p.name for p in (straight_run / "samples").glob("*.png"))
    assert snaps[0] == "step_00000000.png" and snaps[-1] == "step_00000040.png" and len(snaps) == 5
    records = [json.loads(line) for line in (straight_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [5, 10, 15, 20, 25, 30, 35, 40]
    assert all(r["img_per_s"] > 0 and "loss/d" in r and "loss/g" in r for r in records)
    kept = ckpt.list_checkpoints(straight_run)
    assert [p.name for p in kept] == ["step_00000020", "step_00000030", "step_00000040"]  # keep 3


def test_existing_run_is_never_overwritten(straight_run):
    with pytest.raises(gankit.GankitError, match="--resume"):
        gankit.train("dcgan", data="mnist", out=straight_run, steps=2, **TINY)


def test_half_written_checkpoints_are_ignored(tmp_path):
    gankit.train("gan", data="ring8", out=tmp_path / "r", steps=4, **TINY)
    root = ckpt.checkpoint_dir(tmp_path / "r")
    (root / ".tmp_step_00000009_123").mkdir()  # a save cut off by a crash
    (root / "step_00000008").mkdir()  # a directory without its files
    (root / "step_00000008" / "meta.json").write_text("{")
    assert ckpt.latest_checkpoint(tmp_path / "r").name == "step_00000004"
    assert gankit.load(tmp_path / "r").step == 4


def test_optimizer_state_survives_the_tensor_json_split():
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.5, 0.99))
    net(torch.randn(4, 3)).sum().backward()
    opt.step()
    tensors, meta = ckpt.flatten_optimizer(opt, "opt.G")
    meta = json.loads(json.dumps(meta))
    other = torch.optim.Adam(net.parameters(), lr=1.0)
    other.load_state_dict(ckpt.unflatten_optimizer(tensors, meta, "opt.G"))
    a, b = opt.state_dict(), other.state_dict()
    assert a["param_groups"][0]["lr"] == b["param_groups"][0]["lr"] == 1e-3
    for pid in a["state"]:
        for key in a["state"][pid]:
            assert torch.equal(a["state"][pid][key], b["state"][pid][key])


def test_newer_checkpoint_format_is_refused_with_a_clear_message(tmp_path):
    gankit.train("gan", data="ring8", out=tmp_path / "r", steps=2, **TINY)
    meta_path = ckpt.latest_checkpoint(tmp_path / "r") / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["format_version"] = ckpt.FORMAT_VERSION + 1
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(gankit.GankitError, match="upgrade gankit"):
        gankit.load(tmp_path / "r")


def test_ema_follows_the_generator_with_warmup():
    from gankit.engine.ema import ema_beta, make_ema, update_ema

    net = torch.nn.Linear(2, 2)
    ema = make_ema(net)
    with torch.no_grad():
        net.weight.add_(1.0)
    before = ema.weight.clone()
    update_ema(ema, net, 0.9)
    assert torch.allclose(ema.weight, 0.9 * before + 0.1 * net.weight)
    assert ema_beta(0.999, 1) == pytest.approx(2 / 11) and ema_beta(0.999, 10**6) == 0.999


def test_eval_every_logs_metric_curves(tmp_path):
    result = gankit.train("dcgan", data="mnist", out=tmp_path / "r", steps=4, quiet=True, preset="tiny",
                          overrides={"eval_every": 2, "eval_n": 64, "eval_metrics": "fid,pr,swd"})
    records = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if "metric/fid" in r]
    assert [r["step"] for r in evals] == [2, 4]
    assert all(r["metric/fid"] > 0 and 0 <= r["metric/precision"] <= 1 and r["metric/swd"] > 0 for r in evals)
    assert result.outputs["losses"].exists()


def test_eval_every_fails_before_training_when_metrics_need_missing_weights(tmp_path):
    with pytest.raises(gankit.GankitError, match="inception"):
        gankit.train("dcgan", data="mnist", out=tmp_path / "r", steps=4, quiet=True, preset="tiny",
                     overrides={"eval_every": 2, "eval_features": "inception"})
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_losses_of_a_phase_run_every_kth_step_are_averaged_over_its_own_steps(tmp_path, monkeypatch):
    """StarGAN's G steps run every d_steps-th step: its logged losses are the mean over G steps,
    not the sum divided by every step of the window (which showed them d_steps times too small)."""
    from gankit.families.stargan import StarGAN

    real_step = StarGAN.generator_step

    def probed(self, batch):
        loss, logs = real_step(self, batch)
        return loss, logs | {"loss/probe": torch.tensor(3.0)}

    monkeypatch.setattr(StarGAN, "generator_step", probed)
    gankit.train("stargan", data="mnist-attributes", out=tmp_path / "r", steps=12, quiet=True, preset="tiny",
                 overrides={"d_steps": 3, "log_every": 6, "max_images": 64})
    records = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    probes = [r["loss/probe"] for r in records if "loss/probe" in r]
    assert len(probes) == 2 and probes == pytest.approx([3.0, 3.0])


@pytest.mark.parametrize("flags, expected", [({"avx2"}, "fp32"), ({"avx2", "avx512_bf16"}, "bf16"),
                                             ({"amx_bf16", "amx_tile"}, "bf16")])
def test_precision_auto_is_bf16_only_where_the_cpu_multiplies_bf16(monkeypatch, flags, expected):
    from gankit.engine import runtime

    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset(flags))
    cpu = torch.device("cpu")
    assert runtime.resolve_precision("auto", cpu) == expected
    assert runtime.resolve_precision("fp32", cpu) == "fp32" and runtime.resolve_precision("bf16", cpu) == "bf16"


def test_a_run_records_the_precision_auto_chose(tmp_path):
    from gankit.engine.runtime import resolve_precision

    gankit.train("dcgan", data="mnist", out=tmp_path / "r", preset="tiny", steps=2, quiet=True,
                 overrides={"max_images": 64})
    used = resolve_precision("auto", torch.device("cpu"))
    assert json.loads((tmp_path / "r" / "config.json").read_text())["precision_used"] == used
    _, meta = final_state(tmp_path / "r")
    assert meta["config"]["precision"] == "auto" and meta["precision"] == used


@pytest.mark.parametrize("family,data", [("singan", "china"), ("srgan", "pictures"), ("stackgan", "mnist-captions")])
def test_the_families_outside_the_mixin_train_under_bf16(tmp_path, family, data):
    """FamilyTests checks bf16 training for the others (tests/families/common.py)."""
    result = gankit.train(family, data=data, out=tmp_path / "r", preset="tiny", steps=2, quiet=True,
                          overrides={"precision": "bf16"})
    assert result.status == "finished" and result.step == 2
    assert json.loads((tmp_path / "r" / "config.json").read_text())["precision_used"] == "bf16"


def test_precision_auto_stays_fp32_on_the_cpu_for_a_family_measured_slower_in_bf16(monkeypatch, tmp_path):
    from gankit.engine import runtime
    from gankit.registry import get_family

    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"amx_bf16"}))
    cpu = torch.device("cpu")
    assert runtime.resolve_precision("auto", cpu, bf16_on_cpu=False) == "fp32"
    assert runtime.resolve_precision("bf16", cpu, bf16_on_cpu=False) == "bf16"  # asked for: kept
    assert not get_family("pix2pix").bf16_on_cpu and get_family("dcgan").bf16_on_cpu
    for family, data in (("pix2pix", "mnist-edges"), ("gan", "ring8"), ("dcgan", "mnist")):
        gankit.train(family, data=data, out=tmp_path / family, preset="tiny", steps=1, quiet=True,
                     overrides={"max_images": 64})
        used = json.loads((tmp_path / family / "config.json").read_text())["precision_used"]
        assert used == ("bf16" if family == "dcgan" else "fp32")  # 2-D points: never bf16 under auto
