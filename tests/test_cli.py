"""The command line as a user meets it: outputs, files and exit codes."""

from __future__ import annotations

import json

import imageio.v3 as iio
import pytest
from PIL import Image


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory):
    from tests.conftest import run_cli

    run = tmp_path_factory.mktemp("cli") / "cgan"
    done = run_cli("train", "cgan", "--data", "mnist", "--out", run, "--preset", "tiny", "--steps", "6")
    assert done.returncode == 0, done.stderr
    return run, done


def test_families_lists_each_with_a_description(cli):
    done = cli("families")
    assert done.returncode == 0
    lines = dict(line.split(None, 1) for line in done.stdout.strip().splitlines())
    assert {"gan", "dcgan", "cgan"} <= set(lines) and all(len(v) > 20 for v in lines.values())


def test_every_command_has_help(cli):
    for command in ("families", "train", "sample", "interpolate", "info", "export", "evaluate", "neighbors",
                    "report"):
        done = cli(command, "--help")
        assert done.returncode == 0 and "Usage" in done.stdout, command


def test_train_prints_where_files_are_and_what_to_try_next(cgan_run):
    run, done = cgan_run
    assert "done: step 6" in done.stdout
    assert "timelapse" in done.stdout and "gankit sample" in done.stdout and str(run) in done.stdout


def test_sample_writes_a_grid_and_a_class_row_grid(cgan_run, tmp_path, cli):
    run, _ = cgan_run
    done = cli("sample", run, "--n", "16", "--out", tmp_path / "g.png", "--seed", "3", "--class", "4")
    assert done.returncode == 0, done.stderr
    grid = Image.open(tmp_path / "g.png")
    assert grid.size == (4 * 16 + 5 * 2, 4 * 16 + 5 * 2)  # 4x4 tiles of 16 px, 2 px padding
    done = cli("sample", run, "--n", "20", "--class-grid", "--out", tmp_path / "rows.png")
    assert done.returncode == 0, done.stderr
    rows = Image.open(tmp_path / "rows.png")
    assert rows.size == (2 * 16 + 3 * 2, 10 * 16 + 11 * 2)  # one row per class, 2 per row
    done = cli("sample", run, "--n", "4", "--class", "12", "--out", tmp_path / "x.png")
    assert done.returncode == 2 and "0..9" in done.stderr


def test_interpolate_writes_a_looping_gif(cgan_run, tmp_path, cli):
    run, _ = cgan_run
    done = cli("interpolate", run, "--out", tmp_path / "walk.gif", "--frames", "8", "--n", "4",
               "--method", "lerp")
    assert done.returncode == 0, done.stderr
    frames = iio.imread(tmp_path / "walk.gif", index=None)
    assert frames.shape[0] == 8
    bad = cli("interpolate", run, "--out", tmp_path / "walk.gif", "--method", "cubic")
    assert bad.returncode == 2 and "cubic" in bad.stderr


def test_info_json_is_one_object(cgan_run, cli):
    run, _ = cgan_run
    done = cli("info", run, "--json")
    assert done.returncode == 0
    doc = json.loads(done.stdout)
    assert doc["family"] == "cgan" and doc["step"] == 6 and doc["data"]["source"] == "mnist"
    assert doc["data"]["classes"] == [str(i) for i in range(10)] and "loss/d" in doc["latest_metrics"]
    text = cli("info", run)
    assert text.returncode == 0 and "steps      6 of 6" in text.stdout


def test_export_then_sample_from_the_export(cgan_run, tmp_path, cli):
    run, _ = cgan_run
    done = cli("export", run, "--out", tmp_path / "exp")
    assert done.returncode == 0, done.stderr
    config = json.loads((tmp_path / "exp" / "config.json").read_text())
    assert config["family"] == "cgan" and config["config"]["num_classes"] == 10
    a = cli("sample", tmp_path / "exp", "--n", "4", "--out", tmp_path / "a.png", "--class", "1")
    b = cli("sample", run, "--n", "4", "--out", tmp_path / "b.png", "--class", "1")
    assert a.returncode == b.returncode == 0
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    shown = cli("info", tmp_path / "exp")  # was "no checkpoint found" for every export and import
    assert shown.returncode == 0 and "steps      6 (exported)" in shown.stdout and "family     cgan" in shown.stdout
    doc = json.loads(cli("info", tmp_path / "exp", "--json").stdout)
    assert doc["kind"] == "export" and doc["step"] == 6 and doc["config"]["num_classes"] == 10


@pytest.mark.parametrize("args, message", [
    (["train", "dcgan", "--data", "/no/such/folder", "--out", "{tmp}/r"], "/no/such/folder"),
    (["train", "nosuchgan", "--data", "mnist", "--out", "{tmp}/r"], "unknown family"),
    (["train", "dcgan", "--data", "mnist", "--out", "{tmp}/r", "--set", "wings=3"], "unknown option"),
    (["train", "dcgan", "--data", "mnist", "--out", "{tmp}/r", "--preset", "huge"], "preset"),
    (["train", "dcgan", "--data", "mnist", "--out", "{tmp}/r", "--resolution", "48"], "power-of-two"),
    (["train", "dcgan", "--data", "{tmp}/empty", "--out", "{tmp}/r"], "empty"),
    (["train", "--resume", "{tmp}/nothing"], "no checkpoint"),
    (["sample", "{tmp}/nothing", "--out", "{tmp}/x.png"], "nothing"),
    (["info", "{tmp}"], "no checkpoint"),
    (["train", "dcgan", "--data", "mnist"], "--out"),
])
def test_user_errors_are_one_line_and_exit_code_2(args, message, tmp_path, cli):
    (tmp_path / "empty").mkdir()
    done = cli(*[a.format(tmp=tmp_path) for a in args])
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert message.lower() in lines[0].lower()


def test_bad_usage_exits_2(cli):
    done = cli("train", "dcgan", "--steps", "many")
    assert done.returncode == 2


def test_a_folder_with_bad_files_trains_and_reports_them(tmp_path, cli):
    import numpy as np

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(folder / f"im{i}.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "empty.png").write_bytes(b"")
    done = cli("train", "dcgan", "--data", folder, "--out", tmp_path / "r", "--preset", "tiny", "--steps", "2")
    assert done.returncode == 0, done.stderr
    assert "6 images 3x16x16" in done.stdout and "skipped 2 bad files" in done.stdout


def test_sample_with_truncation_and_a_bad_truncation(cgan_run, tmp_path, cli):
    run, _ = cgan_run
    done = cli("sample", run, "--n", "9", "--truncation", "0.5", "--out", tmp_path / "x.png")
    assert done.returncode == 0, done.stderr
    assert Image.open(tmp_path / "x.png").size == (3 * 16 + 4 * 2, 3 * 16 + 4 * 2)
    for bad in ("0", "-0.5"):
        done = cli("sample", run, "--truncation", bad, "--out", tmp_path / "y.png")
        assert done.returncode == 2 and "truncation" in done.stderr, done.stderr


def test_ctrl_c_before_the_loop_says_what_is_left(gankit_main, monkeypatch, tmp_path, dcgan_run):
    """A Ctrl-C that lands before the loop's own handler (loading data, building nets), or a second
    one inside it, exits 130 with one line saying whether there is a checkpoint to resume."""
    import gankit.api

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(gankit.api, "train", interrupted)
    code, _, err = gankit_main("train", "dcgan", "--data", "mnist", "--out", tmp_path / "new", "--preset", "tiny")
    assert code == 130
    assert err.strip() == "interrupted before the first checkpoint: nothing to resume; run the same command again"
    code, _, err = gankit_main("train", "--resume", dcgan_run, "--steps", "5")
    assert code == 130
    assert "the last checkpoint is step_00000001" in err and f"gankit train --resume {dcgan_run}" in err


def test_a_rank_whose_peer_failed_says_so_in_one_line(monkeypatch, capsys):
    """Under torchrun a rank waiting in a collective when another one failed printed gloo's
    traceback (about 50 lines); now one line pointing at the other's error."""
    import gankit.cli as cli

    def peer_gone(*args, **kwargs):
        raise RuntimeError("[../gloo/transport/tcp/pair.cc:534] Connection closed by peer [127.0.0.1]:1234")

    monkeypatch.setattr(cli, "app", peer_gone)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(SystemExit) as done:
        cli.main(["train"])
    err = capsys.readouterr().err
    assert done.value.code == 2 and err.strip() == (
        "error: [rank 0] another process of this torchrun job stopped; its error is above")
    monkeypatch.setenv("WORLD_SIZE", "1")
    with pytest.raises(RuntimeError):  # in one process a RuntimeError is a bug: its traceback stays
        cli.main(["train"])


def test_a_user_error_on_another_rank_says_which(monkeypatch, capsys):
    """Every rank of a torchrun job that hits one mistake prints it; rank 0's line stays as in one
    process, the others name their rank (the lines were identical and looked duplicated)."""
    import gankit.cli as cli
    from gankit.errors import GankitError

    def mistake(*args, **kwargs):
        raise GankitError("dataset not found: nowhere")

    monkeypatch.setattr(cli, "app", mistake)
    for rank, line in (("0", "error: dataset not found: nowhere"), ("1", "error: [rank 1] dataset not found: nowhere")):
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.setenv("RANK", rank)
        with pytest.raises(SystemExit) as done:
            cli.main(["train"])
        assert done.value.code == 2 and capsys.readouterr().err.strip() == line
