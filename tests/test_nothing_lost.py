"""Nothing lost: a diverged run stops before writing a non-finite checkpoint, and a damaged newest
checkpoint falls back to the newest intact one (issue 17)."""

from __future__ import annotations

import os
import pickle
import struct

import pytest
import torch

import gankit
from gankit.engine import checkpoint as ckpt
from gankit.errors import DivergedError


def poison_at(step: int):
    """An on_step callback that sets G's first weight to NaN after ``step`` (a loss blowing up)."""
    def callback(trainer, current: int) -> None:
        if current == step:
            with torch.no_grad():
                next(trainer.family.nets["G"].parameters()).fill_(float("nan"))
    return callback


def all_finite(path) -> bool:
    tensors, _ = ckpt.load_checkpoint(path)
    return all(bool(t.isfinite().all()) for t in tensors.values() if t.is_floating_point())


def test_a_diverged_run_stops_and_keeps_its_good_checkpoints(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(DivergedError) as info:
        gankit.train("dcgan", data="mnist", out=run, preset="tiny", steps=40, quiet=True, on_step=poison_at(6),
                     overrides={"max_images": 64, "log_every": 2, "checkpoint_every": 2, "keep_checkpoints": 2})
    message = str(info.value)
    assert "diverged at step 8" in message and "nan" in message and "step_00000006" in message
    assert "lower learning rates" in message and len(message.splitlines()) == 1
    found = ckpt.list_checkpoints(run)
    assert [p.name for p in found] == ["step_00000004", "step_00000006"]  # never rotated away
    assert all(all_finite(p) for p in found)
    assert bool(gankit.load(run).sample(4).isfinite().all())
    # the NaN losses are in the log, so the curve shows where it blew up
    assert "NaN" in (run / "metrics.jsonl").read_text()


def test_non_finite_weights_are_never_checkpointed(tmp_path):
    """Caught by the check before a checkpoint even when no log step came between."""
    run = tmp_path / "run"
    with pytest.raises(DivergedError, match="non-finite weights in G"):
        gankit.train("dcgan", data="mnist", out=run, preset="tiny", steps=40, quiet=True, on_step=poison_at(4),
                     overrides={"max_images": 64, "log_every": 100, "checkpoint_every": 4})
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["step_00000004"]  # saved before the poison


def test_the_cli_exits_with_code_3_on_divergence(tmp_path, cli):
    r = cli("train", "wgan", "--data", "mnist", "--preset", "tiny", "--steps", "40", "--out", tmp_path / "w",
            "--set", "lr_d=1e30", "--set", "lr_g=1e30", "--set", "max_images=64", "--set", "log_every=2", "-q")
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert r.stderr.startswith("error: training diverged at step") and len(r.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("lost") / "run"
    gankit.train("dcgan", data="mnist", out=path, preset="tiny", steps=6, quiet=True,
                 overrides={"max_images": 64, "checkpoint_every": 2, "keep_checkpoints": 3})
    return path


def lying_header(size: int) -> bytes:
    header = b'{"x":{"dtype":"F32","shape":[1000000],"data_offsets":[0,4000000]}}'
    return struct.pack("<Q", len(header)) + header + b"\0" * min(size, 64)


DAMAGE = {
    "truncated": lambda data: data[: len(data) // 2],
    "zero bytes": lambda data: b"",
    "random bytes": lambda data: os.urandom(len(data)),
    "a pickle": lambda data: pickle.dumps({"net.G.x": [1, 2, 3]}),
    "a header that lies about sizes": lambda data: lying_header(len(data)),
    "a header that lies about dtypes": lambda data: data.replace(b'"dtype":"F32"', b'"dtype":"F64"'),
}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_a_damaged_newest_checkpoint_falls_back_to_the_newest_intact_one(run, tmp_path, kind, capsys):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    newest = ckpt.list_checkpoints(copy)[-1]
    state = newest / ckpt.STATE_FILE
    state.write_bytes(DAMAGE[kind](state.read_bytes()))
    model = gankit.load(copy)
    assert model.step == 4
    err = capsys.readouterr().err
    assert f"checkpoint {newest} is damaged" in err and "kept as damaged_step_00000006" in err
    assert (copy / "checkpoints" / "damaged_step_00000006" / ckpt.STATE_FILE).exists()  # kept, not deleted
    result = gankit.train(resume=copy, steps=8, quiet=True)  # resumes from step 4
    assert result.step == 8 and [p.name for p in ckpt.list_checkpoints(copy)][-1] == "step_00000008"


def test_damaged_metadata_and_no_readable_checkpoint(run, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    found = ckpt.list_checkpoints(copy)
    (found[-1] / ckpt.META_FILE).write_text("[1, 2")
    assert gankit.load(copy).step == 4
    for path in ckpt.list_checkpoints(copy):
        (path / ckpt.STATE_FILE).write_bytes(b"")
    with pytest.raises(gankit.GankitError, match="no checkpoint in .* reads"):
        gankit.load(copy)


@pytest.mark.parametrize("errno_, text", [(28, "No space left on device"), (13, "Permission denied")])
def test_a_failing_checkpoint_write_keeps_the_earlier_ones(run, tmp_path, monkeypatch, errno_, text):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    before = {p.name: (p / ckpt.STATE_FILE).read_bytes() for p in ckpt.list_checkpoints(copy)}

    def failing(*args, **kwargs):
        raise OSError(errno_, text)

    monkeypatch.setattr(ckpt, "save_file", failing)
    with pytest.raises(gankit.GankitError, match=f"cannot write checkpoint step 8 .*{text}.*intact, newest step_00000006"):
        gankit.train(resume=copy, steps=8, quiet=True)
    after = {p.name: (p / ckpt.STATE_FILE).read_bytes() for p in ckpt.list_checkpoints(copy)}
    assert after == before  # nothing rotated, nothing touched
    assert not list((copy / "checkpoints").glob(".tmp_*"))  # no half-written leftovers


def test_no_space_is_refused_before_writing(run, tmp_path, monkeypatch, capsys):
    import collections
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10, 10, 1000))
    with pytest.raises(gankit.GankitError, match="KiB needed, 1 KiB free"):
        gankit.train(resume=copy, steps=8, quiet=True)
    need = (ckpt.list_checkpoints(copy)[-1] / ckpt.STATE_FILE).stat().st_size + ckpt.SPACE_MARGIN
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10, 10, int(1.5 * need)))  # fits once, not twice
    gankit.train(resume=copy, steps=10, quiet=True)
    assert "may not fit" in capsys.readouterr().err


def poison_once(step: int):
    fired = []

    def callback(trainer, current: int) -> None:
        if current == step and not fired:
            fired.append(current)
            poison_at(step)(trainer, current)
    return callback


def test_rollback_reloads_the_last_good_checkpoint_lowers_the_rates_and_goes_on(tmp_path, capsys):
    import json

    run = tmp_path / "run"
    result = gankit.train("dcgan", data="mnist", out=run, preset="tiny", steps=12, quiet=True, on_step=poison_once(6),
                          overrides={"max_images": 64, "log_every": 2, "checkpoint_every": 2,
                                     "on_divergence": "rollback", "rollback_lr_factor": 0.25})
    assert result.status == "finished" and result.step == 12
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rollbacks = [r for r in records if "rollback" in r]
    assert rollbacks == [{"step": 6, "rollback": 1, "diverged_at": 8, "lr_factor": 0.25}]
    assert not any(r.get("step") == 8 and "rollback" not in r and any(v != v for v in r.values()) for r in records)
    assert "rolled back to step 6, learning rates now x0.25" in capsys.readouterr().err
    _, _, meta = ckpt.load_latest(run)
    base = gankit.api.read_networks(run)[1]
    assert meta["optimizers"]["G"]["param_groups"][0]["lr"] == pytest.approx(base.lr_g * 0.25)
    assert all(all_finite(p) for p in ckpt.list_checkpoints(run))


def test_rollback_gives_up_after_max_rollbacks(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(DivergedError, match="after 1 rollbacks of the 1 allowed"):  # step 7 blows up every time
        gankit.train("dcgan", data="mnist", out=run, preset="tiny", steps=40, quiet=True, on_step=poison_at(7),
                     overrides={"max_images": 64, "log_every": 2, "checkpoint_every": 2,
                                "on_divergence": "rollback", "max_rollbacks": 1})
    with pytest.raises(DivergedError, match="no checkpoint to roll back to"):
        gankit.train("dcgan", data="mnist", out=tmp_path / "r2", preset="tiny", steps=40, quiet=True,
                     overrides={"max_images": 64, "log_every": 2, "lr_d": 1e30, "lr_g": 1e30,
                                "on_divergence": "rollback"})


def test_a_checkpoint_of_another_family_or_with_foreign_tensors_is_set_aside(run, tmp_path, capsys):
    import shutil

    other = tmp_path / "other"
    gankit.train("gan", data="ring8", out=other, preset="tiny", steps=8, quiet=True,
                 overrides={"checkpoint_every": 8})
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    shutil.copytree(ckpt.list_checkpoints(other)[-1], copy / "checkpoints" / "step_00000008")  # gan, in a dcgan run
    assert gankit.load(copy).step == 6
    assert "is a gan checkpoint in a dcgan run" in capsys.readouterr().err
    newest = ckpt.list_checkpoints(copy)[-1]
    shutil.copy(ckpt.list_checkpoints(copy)[0] / ckpt.STATE_FILE, newest / ckpt.STATE_FILE)  # step 2's tensors
    assert gankit.load(copy).step == 4
    assert "holds the tensors of step 2, its meta.json says 6" in capsys.readouterr().err
    assert sorted(p.name for p in (copy / "checkpoints").glob("damaged_*")) == ["damaged_step_00000006",
                                                                               "damaged_step_00000008"]


def test_info_reads_past_a_damaged_newest_checkpoint(run, tmp_path, gankit_main):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (ckpt.list_checkpoints(copy)[-1] / ckpt.META_FILE).write_bytes(os.urandom(200))
    code, out, err = gankit_main("info", copy)
    assert code == 0 and "step_00000006 is damaged" in err
    assert gankit.info(copy)["step"] == 4


# A real training process killed with SIGKILL inside its second checkpoint write (at step 8), at
# each stage of the write; the resumed run must end bit for bit where an uninterrupted one does.
def run_killer(tmp_path, fault: str, *args) -> "subprocess.CompletedProcess":
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "gankit._faults", fault, "--", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)


TRAIN_12 = ["train", "gan", "--data", "ring8", "--preset", "tiny", "--steps", "12", "-q",
            "--set", "checkpoint_every=4", "--set", "keep_checkpoints=1"]


@pytest.fixture(scope="module")
def straight_12(tmp_path_factory):
    path = tmp_path_factory.mktemp("straight") / "run"
    done = run_killer(path.parent, "none", *TRAIN_12, "--out", path)
    assert done.returncode == 0, done.stderr
    return path


@pytest.mark.parametrize("stage", ["state", "meta", "rename", "rotate"])
def test_kill_9_inside_a_checkpoint_write_then_resume_equals_the_straight_run(straight_12, tmp_path, stage):
    from tests.test_engine import assert_same_state

    run = tmp_path / "run"
    killed = run_killer(tmp_path, f"{stage}:{1 if stage == 'rotate' else 2}", *TRAIN_12, "--out", run)
    assert killed.returncode == -9, killed.stderr
    steps = [p.name for p in ckpt.list_checkpoints(run)]
    assert steps[-1] == ("step_00000008" if stage in ("rename", "rotate") else "step_00000004")
    resumed = run_killer(tmp_path, "none", "train", "--resume", run, "-q")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_state(straight_12, run)
    assert not list((run / "checkpoints").glob(".tmp_*"))  # the killed write's leftovers are cleared


@pytest.mark.parametrize("what", ["grid", "export", "report"])
def test_a_failing_write_of_a_picture_export_or_report_keeps_the_old_file(run, tmp_path, gankit_main, monkeypatch,
                                                                          what):
    """Disk full half-way through writing: one line, exit code 2, the file from before untouched."""
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    args, target = {
        "grid": (["sample", copy, "--out", tmp_path / "grid.png", "--n", "4"], tmp_path / "grid.png"),
        "export": (["export", copy, "--out", tmp_path / "model"], tmp_path / "model" / "model.safetensors"),
        "report": (["report", copy, "--out", tmp_path / "report.html"], tmp_path / "report.html"),
    }[what]
    assert gankit_main(*args)[0] == 0
    before = target.read_bytes()
    real_replace = os.replace

    def full_disk(src, dst):
        with open(src, "r+b") as f:  # the temporary file got half-way
            f.truncate(os.path.getsize(src) // 2)
        raise OSError(28, "No space left on device", str(dst))

    monkeypatch.setattr(os, "replace", full_disk)
    code, _, err = gankit_main(*args)
    monkeypatch.setattr(os, "replace", real_replace)
    assert code == 2 and err.startswith("error: No space left on device") and len(err.strip().splitlines()) == 1
    assert target.read_bytes() == before
    assert not [p for p in target.parent.iterdir() if ".tmp" in p.name]  # no leftovers


def test_resume_with_a_new_learning_rate_uses_it(tmp_path):
    run = tmp_path / "run"
    gankit.train("gan", data="ring8", out=run, preset="tiny", steps=4, quiet=True)
    gankit.train(resume=run, steps=8, quiet=True, overrides={"lr_g": 0.123})
    _, _, meta = ckpt.load_latest(run)
    assert meta["optimizers"]["G"]["param_groups"][0]["lr"] == pytest.approx(0.123)
    assert meta["optimizers"]["D"]["param_groups"][0]["lr"] == pytest.approx(meta["config"]["lr_d"])


def test_a_rollback_lowers_the_rates_of_a_family_with_a_schedule_and_survives_a_resume(tmp_path):
    """pix2pix sets its rates every step (linear decay): the rollback factor must stay applied,
    and a resumed run keeps it (and its rollback count)."""
    run = tmp_path / "run"
    gankit.train("pix2pix", data="mnist-edges", out=run, preset="tiny", steps=8, quiet=True, on_step=poison_once(4),
                 overrides={"max_images": 32, "log_every": 2, "checkpoint_every": 2, "decay_from": 1,
                            "on_divergence": "rollback", "rollback_lr_factor": 0.25})
    _, _, meta = ckpt.load_latest(run)
    assert meta["lr_scale"] == 0.25 and meta["rollbacks"] == 1
    for opt in meta["optimizers"].values():
        assert opt["param_groups"][0]["lr"] == pytest.approx(meta["config"]["lr"] * 0.25)
    gankit.train(resume=run, steps=10, quiet=True)
    _, _, meta = ckpt.load_latest(run)
    assert meta["step"] == 10 and meta["lr_scale"] == 0.25 and meta["rollbacks"] == 1
    assert meta["optimizers"]["G"]["param_groups"][0]["lr"] == pytest.approx(meta["config"]["lr"] * 0.25)


def test_a_rollback_that_diverges_again_goes_one_checkpoint_further_back(tmp_path):
    """Step 7 blows up every time it is reached: the rollbacks go to step 6, then 4 (step 6 kept
    aside as abandoned), with the rates lowered each time."""
    import json

    run = tmp_path / "run"
    with pytest.raises(DivergedError, match="after 2 rollbacks of the 2 allowed"):
        gankit.train("dcgan", data="mnist", out=run, preset="tiny", steps=40, quiet=True, on_step=poison_at(7),
                     overrides={"max_images": 64, "log_every": 2, "checkpoint_every": 2, "keep_checkpoints": 3,
                                "on_divergence": "rollback", "max_rollbacks": 2, "rollback_lr_factor": 0.5})
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["lr_factor"]) for r in records if "rollback" in r] == [(6, 0.5), (4, 0.25)]
    assert (run / "checkpoints" / "abandoned_step_00000006" / ckpt.STATE_FILE).exists()
    # from step 4 it wrote step 6 again (finite), then step 7 blew up once more: no rollbacks left
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["step_00000002", "step_00000004", "step_00000006"]
    assert all(all_finite(p) for p in ckpt.list_checkpoints(run))


def test_a_resave_killed_between_its_two_renames_keeps_the_checkpoint(run, tmp_path):
    """Re-saving step 6 moves the old copy aside first; a kill before the new one is renamed in
    leaves only `.old_step_...`: reading the run puts it back, a later save does not delete it."""
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    root = ckpt.checkpoint_dir(copy)
    for p in ckpt.list_checkpoints(copy)[:-1]:
        shutil.rmtree(p)  # keep_checkpoints=1: step 6 is the only one
    os.replace(root / "step_00000006", root / ".old_step_00000006_12345")
    assert gankit.load(copy).step == 6
    assert [p.name for p in ckpt.list_checkpoints(copy)] == ["step_00000006"]


def test_written_files_get_the_mode_of_a_plain_open_or_keep_the_replaced_ones(tmp_path):
    """safetensors creates its files 0600: exports and checkpoints could not be read by others
    while every JSON and PNG beside them could."""
    from gankit.files import UMASK

    out = tmp_path / "w.safetensors"
    ckpt.save_tensors_atomic({"x": torch.zeros(2)}, out)
    assert out.stat().st_mode & 0o777 == 0o666 & ~UMASK
    out.chmod(0o640)  # a mode the user chose stays when the file is rewritten
    ckpt.save_tensors_atomic({"x": torch.ones(2)}, out)
    assert out.stat().st_mode & 0o777 == 0o640 and torch.equal(ckpt.read_tensors(out)["x"], torch.ones(2))
