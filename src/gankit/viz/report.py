"""``gankit report``: one self-contained HTML page about a run.

Everything is inline (images as base64 ``data:`` URIs, CSS in a ``<style>`` block, no scripts,
fonts or links to anywhere), so the page opens offline and can be mailed or attached as one file.
Sections: summary and full config, training curves, sample grids over time and the timelapse,
the evaluation table (``eval.json`` from ``gankit evaluate``) and the nearest-neighbour
memorisation check (``nn.png`` / ``nn_hist.png`` / ``nn.json`` from ``gankit neighbors``).
"""

from __future__ import annotations

import base64
import datetime as _dt
import io
import json
import math
import os
import re
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GankitError
from gankit.files import atomic_target

SUMMARY_KEYS = ("preset", "resolution", "channels", "batch_size", "nz", "ngf", "ndf", "loss", "lr_g", "lr_d",
                "beta1", "beta2", "ema", "ema_decay", "precision", "seed", "num_classes")
MAX_STRIP = 8  # sample snapshots shown in the strip

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0 auto;max-width:1100px;
padding:1.5em;color:#222;background:#fafafa;line-height:1.45}
h1{margin:.2em 0;font-size:1.6em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em;font-size:1.25em}
.muted{color:#666;font-size:.9em}
table{border-collapse:collapse;margin:.5em 0} td,th{border:1px solid #ddd;padding:.25em .7em;text-align:left;
vertical-align:top;font-size:.92em} th{background:#f0f0f0} td.num{text-align:right;font-variant-numeric:tabular-nums}
pre{background:#f4f4f4;padding:.8em;overflow:auto;font-size:.85em;border-radius:4px}
img{max-width:100%;border:1px solid #ddd;background:#fff} img.px{image-rendering:pixelated}
.strip{display:flex;flex-wrap:wrap;gap:.8em;align-items:flex-end}
.strip figure{margin:0;text-align:center} .strip img{width:150px}
figure.big img{width:min(100%,512px)} figure{margin:.5em 0} figcaption{font-size:.85em;color:#555}
.verdict{padding:.6em .9em;border-radius:4px;margin:.5em 0;font-weight:600}
.ok{background:#e8f5e9;border:1px solid #a5d6a7} .warn{background:#fff3e0;border:1px solid #ffb74d}
.hint{background:#eef3fb;border:1px solid #b6c8e6;padding:.5em .8em;border-radius:4px}
details summary{cursor:pointer;font-weight:600}
"""


# ---------------------------------------------------------------------------- helpers
def _data_uri(raw: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(raw).decode('ascii')}"


def _png_bytes(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _img(raw: bytes, mime: str, alt: str, cls: str = "") -> str:
    c = f' class="{escape(cls)}"' if cls else ""
    return f'<img{c} alt="{escape(alt)}" src="{_data_uri(raw, mime)}">'


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _flatten(doc: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(doc, dict):
        rows: list[tuple[str, Any]] = []
        for key, value in doc.items():
            rows += _flatten(value, f"{prefix}.{key}" if prefix else str(key))
        return rows
    return [(prefix or "value", doc)]


def _table(rows: list[tuple[str, Any]], head: tuple[str, str] | None = None) -> str:
    out = ["<table>"]
    if head:
        out.append(f"<tr><th>{escape(head[0])}</th><th>{escape(head[1])}</th></tr>")
    for key, value in rows:
        num = isinstance(value, (int, float)) and not isinstance(value, bool)
        cls = ' class="num"' if num else ""
        out.append(f"<tr><th>{escape(str(key))}</th><td{cls}>{escape(_fmt(value))}</td></tr>")
    out.append("</table>")
    return "\n".join(out)


def _step_of(path: Path) -> int | None:
    m = re.search(r"(\d+)", path.stem)
    return int(m.group(1)) if m else None


def _pick(items: list, count: int) -> list:
    """``count`` items spread evenly, first and last included."""
    if len(items) <= count:
        return list(items)
    idx = sorted({round(i * (len(items) - 1) / (count - 1)) for i in range(count)})
    return [items[i] for i in idx]


# ---------------------------------------------------------------------------- run facts
def _run_facts(run: Path) -> dict[str, Any]:
    """info() when the run has a checkpoint, else what config.json and metrics.jsonl say."""
    from gankit.model import info

    if not run.is_dir():
        raise GankitError(f"no such run directory: {run}")
    try:
        return info(run)
    except GankitError:
        doc = _read_json(run / "config.json")
        if not isinstance(doc, dict) or "config" not in doc:
            raise GankitError(f"{run} is not a gankit run directory (no checkpoint and no config.json)") from None
        records = _records(run)
        latest: dict[str, Any] = {}
        for rec in records:
            latest.update(rec)
        config = doc["config"]
        return {"run": str(run), "family": doc.get("family", config.get("family", "?")),
                "step": latest.get("step", 0), "steps_planned": config.get("steps"),
                "data": {"source": config.get("data")}, "config": config, "checkpoints": [],
                "latest_metrics": latest}


def _records(run: Path) -> list[dict]:
    from gankit.viz import read_jsonl

    path = run / "metrics.jsonl"
    if not path.exists():
        return []
    try:
        return read_jsonl(path)
    except GankitError:
        return []


# ---------------------------------------------------------------------------- sections
def _summary_section(facts: dict[str, Any]) -> str:
    data = facts.get("data") or {}
    cfg = facts.get("config") or {}
    data_text = str(data.get("source", "?"))
    if cfg.get("where"):  # the --where filter the run trained on (and evaluate/neighbors default to)
        data_text += f" where {cfg['where']}"
    if data.get("count") is not None:
        data_text += f": {data['count']:,} {data.get('kind', 'image')}s"
    if data.get("shape"):
        data_text += " " + "x".join(map(str, data["shape"]))
    if data.get("classes"):
        data_text += f", {len(data['classes'])} classes"
    if data.get("skipped"):
        data_text += f" ({data['skipped']} files skipped)"
    rows: list[tuple[str, Any]] = [
        ("family", facts.get("family")),
        ("step", f"{facts.get('step')} of {facts.get('steps_planned')}"),
        ("data", data_text),
    ]
    rows += [(k, cfg[k]) for k in SUMMARY_KEYS if k in cfg]
    if facts.get("checkpoints"):
        rows.append(("checkpoints", ", ".join(facts["checkpoints"])))
    parts = ["<h2>Summary</h2>", _table(rows)]
    latest = {k: v for k, v in (facts.get("latest_metrics") or {}).items() if k != "step"}
    if latest:
        parts += ["<h3>Latest logged values</h3>", _table(sorted(latest.items()))]
    config_json = json.dumps(cfg, indent=2, sort_keys=True)
    parts.append(f"<details><summary>Full config ({len(cfg)} options)</summary><pre>{escape(config_json)}</pre>"
                 "</details>")
    return "\n".join(parts)


def _curves_section(run: Path, records: list[dict]) -> str:
    from gankit.viz import metrics_figure
    from gankit.viz.plots import _figure_to_array

    head = "<h2>Training curves</h2>"
    fig = metrics_figure(records, title=run.name) if records else None
    if fig is None:
        return head + '<p class="hint">no losses or metrics logged yet (metrics.jsonl)</p>'
    png = _png_bytes(_figure_to_array(fig))
    return head + f"<figure>{_img(png, 'image/png', 'loss and metric curves')}" \
                  "<figcaption>losses (faint: raw, bold: smoothed); metrics below when logged</figcaption></figure>"


def _samples_section(run: Path) -> str:
    head = "<h2>Samples over time</h2>"
    snaps = sorted((run / "samples").glob("step_*.png"))
    parts = [head]
    if not snaps:
        parts.append('<p class="hint">no sample snapshots yet (samples/step_*.png)</p>')
    else:
        parts.append('<p class="muted">fixed-noise snapshots: the same latent vectors at every step</p>')
        parts.append('<div class="strip">')
        for path in _pick(snaps, MAX_STRIP):
            raw = _read_bytes(path)
            if raw is not None:
                step = _step_of(path)
                parts.append(f"<figure>{_img(raw, 'image/png', f'samples at step {step}', 'px')}"
                             f"<figcaption>step {escape(str(step))}</figcaption></figure>")
        parts.append("</div>")
        last = _read_bytes(snaps[-1])
        if last is not None:
            step = _step_of(snaps[-1])
            parts.append(f'<h3>Latest snapshot</h3><figure class="big">{_img(last, "image/png", f"samples at step {step}", "px")}'
                         f"<figcaption>step {escape(str(step))}</figcaption></figure>")
    gif = _read_bytes(run / "timelapse.gif")
    if gif is not None:
        parts.append(f'<h3>Timelapse</h3><figure class="big">{_img(gif, "image/gif", "timelapse of the snapshots", "px")}'
                     "</figure>")
    return "\n".join(parts)


def _stale(doc: Any, step: Any, command: str, run: Path) -> str:
    """A warning line when a check was made at another step than the run's newest checkpoint."""
    made = doc.get("step") if isinstance(doc, dict) else None
    if made is None or step is None or made == step:
        return ""
    return (f'<p class="hint">made at step {escape(str(made))}; the run is now at step {escape(str(step))}: '
            f'run <code>gankit {command} {escape(str(run))}</code> again</p>')


def _eval_section(run: Path, step: Any = None, unscorable: str | None = None) -> str:
    head = "<h2>Evaluation</h2>"
    path = run / "eval.json"
    if not path.exists():
        if unscorable:  # the command would refuse: say why instead of suggesting it
            return head + f'<p class="muted">{escape(unscorable)}</p>'
        return head + f'<p class="hint">not evaluated yet: run <code>gankit evaluate {escape(str(run))}</code></p>'
    doc = _read_json(path)
    if doc is None:
        return head + '<p class="hint">eval.json could not be read; run <code>gankit evaluate</code> again</p>'
    rows = _flatten(doc)
    return (head + '<p class="muted">from eval.json (gankit evaluate)</p>' + _stale(doc, step, "evaluate", run)
            + _table(rows, ("metric", "value")))


def _nn_section(run: Path, step: Any = None, unscorable: str | None = None) -> str:
    head = "<h2>Memorisation check (nearest neighbours)</h2>"
    grid, hist, doc = run / "nn.png", run / "nn_hist.png", _read_json(run / "nn.json")
    if not grid.exists() and doc is None:
        if unscorable:
            return head + f'<p class="muted">{escape(unscorable)}</p>'
        return head + (f'<p class="hint">not run yet: <code>gankit neighbors {escape(str(run))}</code> '
                       "writes nn.png and nn.json here</p>")
    parts = [head, _stale(doc, step, "neighbors", run)]
    if isinstance(doc, dict):
        if doc.get("verdict"):
            cls = "warn" if doc.get("memorisation") else "ok"
            parts.append(f'<div class="verdict {cls}">{escape(str(doc["verdict"]))}</div>')
        rows = []
        for space in ("pixel", "feature"):
            sp = doc.get(space)
            if not isinstance(sp, dict):
                continue
            name = "pixel L2" if space == "pixel" else f"features ({doc.get('features')})"
            g, h = sp.get("generated", {}), sp.get("heldout", {})
            ratio = sp.get("ratio") if isinstance(sp.get("ratio"), dict) else {}
            decides = (f"{_pct(ratio.get('share'))} (flag above {_pct(ratio.get('flag_above'))})" if ratio
                       else f"{_pct(sp.get('share_below_heldout_p5'))} (raw distance)")
            rows.append(f"<tr><th>{escape(name)}</th><td class='num'>{escape(_fmt(g.get('median')))}</td>"
                        f"<td class='num'>{escape(_fmt(h.get('median')))}</td>"
                        f"<td class='num'>{escape(_pct(sp.get('share_below_heldout_p5')))}</td>"
                        f"<td class='num'>{escape(decides)}</td></tr>")
        if rows:
            parts.append("<table><tr><th>space</th><th>median NN distance, generated</th><th>median, held-out</th>"
                         "<th>generated below held-out 5th pct (information)</th>"
                         "<th>samples matching one image far better than any other: the verdict's share</th></tr>"
                         + "".join(rows) + "</table>")
        facts = (f"{doc.get('generated')} generated samples vs {doc.get('heldout_images')} held-out real images; "
                 f"reference set: {doc.get('train_images')} images of {doc.get('data')}")
        parts.append(f'<p class="muted">{escape(facts)}</p>')
        for note in doc.get("notes") or []:
            parts.append(f'<p class="hint">{escape(str(note))}</p>')
    shown = ((grid, "nearest neighbours", "px", "each row: a generated sample, a red bar, then its nearest "
              "training images"),
             (hist, "NN distance histogram", "", "NN distances to the training set: generated vs held-out real"))
    for path, alt, cls, caption in shown:
        raw = _read_bytes(path)
        if raw is not None:
            parts.append(f"<figure>{_img(raw, 'image/png', alt, cls)}<figcaption>{escape(caption)}</figcaption></figure>")
    return "\n".join(parts)


def _unscorable(facts: dict[str, Any]) -> str | None:
    """Why evaluate / neighbors would refuse this run's model (gankit.metrics.scope), from its config."""
    from types import SimpleNamespace

    from gankit.metrics.scope import unscorable_reason
    from gankit.registry import get_family

    try:
        family_cls = get_family(facts.get("family"))
        config = family_cls.Config.from_dict(facts.get("config") or {}, strict=False)
    except (GankitError, TypeError):
        return None
    return unscorable_reason(SimpleNamespace(config=config, family_cls=family_cls, family=family_cls.name))


def _pct(value: Any) -> str:
    return f"{value:.1%}" if isinstance(value, (int, float)) else "?"


# ---------------------------------------------------------------------------- the page
def render_report(run_dir: str | os.PathLike) -> str:
    """The report page of ``run_dir`` as an HTML string (see :func:`write_report`)."""
    run = Path(run_dir)
    facts = _run_facts(run)
    records = _records(run)
    title = f"gankit report: {run.resolve().name} ({facts.get('family')}, step {facts.get('step')})"
    now = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    body = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="muted">run directory {escape(str(run.resolve()))}; report written {escape(now)}</p>',
        _summary_section(facts),
        _curves_section(run, records),
        _samples_section(run),
        _eval_section(run, facts.get("step"), _unscorable(facts)),
        _nn_section(run, facts.get("step"), _unscorable(facts)),
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{escape(title)}</title>"
            f"<style>{_CSS}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_report(run_dir: str | os.PathLike, out_path: str | os.PathLike | None = None) -> Path:
    """Write the self-contained HTML report of a run atomically; returns its path.

    ``out_path`` defaults to ``RUN/report.html``. A missing or non-run directory is a GankitError.
    """
    page = render_report(run_dir)
    out = Path(out_path) if out_path is not None else Path(run_dir) / "report.html"
    if out.is_dir():
        raise GankitError(f"--out {out} is a directory; give a file name such as {out}/report.html")
    with atomic_target(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return out
