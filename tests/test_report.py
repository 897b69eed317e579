"""``gankit report``: one self-contained, offline HTML page about a run."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from html.parser import HTMLParser

import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from gankit.errors import GankitError
from gankit.viz.report import render_report, write_report


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    import gankit

    run = tmp_path_factory.mktemp("report") / "r"
    gankit.train("dcgan", data="mnist", out=run, preset="tiny", steps=2, quiet=True)
    return run


@pytest.fixture
def run(tiny_run, tmp_path):
    """A private copy, so tests can add eval.json / nn.json without touching each other."""
    copy = tmp_path / "run"
    shutil.copytree(tiny_run, copy)
    return copy


def _data_uris(page: str, mime: str) -> list[bytes]:
    return [base64.b64decode(b64) for b64 in re.findall(rf'src="data:{re.escape(mime)};base64,([A-Za-z0-9+/=]+)"', page)]


class _Srcs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.refs += [v for k, v in attrs if k in ("src", "href") and v is not None]


def test_report_is_self_contained_and_shows_the_run(run, tmp_path):
    out = write_report(run, tmp_path / "out" / "report.html")
    assert out == tmp_path / "out" / "report.html"
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "dcgan" in page and "step 2" in page and "2 of 2" in page and "mnist" in page
    assert "<details>" in page and "&quot;lr_g&quot;" in page  # the full config, escaped JSON
    pngs = _data_uris(page, "image/png")
    # loss curves + two snapshots in the strip + the latest large
    assert len(pngs) >= 4 and all(p.startswith(b"\x89PNG\r\n\x1a\n") for p in pngs)
    for raw in pngs:
        with Image.open(io.BytesIO(raw)) as im:
            assert im.format == "PNG" and im.size[0] > 0
    gifs = _data_uris(page, "image/gif")
    assert len(gifs) == 1 and gifs[0] == (run / "timelapse.gif").read_bytes()
    assert "http://" not in page and "https://" not in page
    parser = _Srcs()
    parser.feed(page)
    assert parser.refs and all(ref.startswith("data:") for ref in parser.refs)  # nothing fetched from anywhere
    assert "<script" not in page and "@import" not in page and "url(" not in page
    assert "not evaluated yet" in page and "gankit evaluate" in page
    assert "gankit neighbors" in page  # the memorisation check not run yet: say how
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # atomic: no temp file left


def test_report_shows_eval_and_the_neighbour_check(run):
    (run / "eval.json").write_text(json.dumps({"fid": 41.25, "kid": 0.0123, "is": {"mean": 2.5, "std": 0.1},
                                               "<b>odd</b>": "x<y"}))


    from gankit.data import load_dataset
    from gankit.metrics.memorisation import nearest_neighbours, write_outputs

    import gankit

    model = gankit.load(run)
    data = load_dataset("mnist", channels=1, resolution=model.config.resolution, max_images=500)
    result = nearest_neighbours(model, data, n=3, k=2, features="pixel", n_compare=30)
    write_outputs(result, run / "nn.png")
    out = write_report(run)
    assert out == run / "report.html"
    page = out.read_text()
    assert "not evaluated yet" not in page
    assert "fid" in page and "41.25" in page and "0.0123" in page and "is.mean" in page and "2.5" in page
    assert "&lt;b&gt;odd&lt;/b&gt;" in page and "x&lt;y" in page and "<b>odd</b>" not in page  # escaped
    assert result["verdict"].split(":")[0] in page and "held-out" in page
    nn_png, hist_png = (run / "nn.png").read_bytes(), (run / "nn_hist.png").read_bytes()
    pngs = _data_uris(page, "image/png")
    assert nn_png in pngs and hist_png in pngs
    assert "http://" not in page and "https://" not in page


def test_unreadable_or_partial_files_do_not_break_the_report(run):
    (run / "eval.json").write_text("{not json")
    (run / "timelapse.gif").unlink()
    for snap in (run / "samples").iterdir():
        snap.unlink()
    (run / "metrics.jsonl").unlink()
    page = render_report(run)
    assert "eval.json could not be read" in page and "no sample snapshots yet" in page
    assert "no losses or metrics logged yet" in page and "image/gif" not in page


def test_missing_or_foreign_directory_is_a_user_error(tmp_path):
    with pytest.raises(GankitError, match="no such run"):
        write_report(tmp_path / "nope", tmp_path / "r.html")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GankitError, match="not a gankit run"):
        write_report(tmp_path / "empty", tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_report_command(run, tmp_path):
    from gankit.cli_explore import report_cmd

    app = typer.Typer()
    app.command("report")(report_cmd)
    app.command("other")(lambda: None)
    out = tmp_path / "page.html"
    done = CliRunner().invoke(app, ["report", str(run), "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert out.is_file() and str(out) in done.output and "offline" in done.output
    done = CliRunner().invoke(app, ["report", str(tmp_path / "missing")])
    assert isinstance(done.exception, GankitError)
    done = CliRunner().invoke(app, ["report", str(run), "--out", str(tmp_path / "page.png")])
    assert isinstance(done.exception, GankitError)
