"""What a user sees while training: a progress bar, ``metrics.jsonl`` and TensorBoard."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from gankit.files import write_text_atomic


class MetricsLog:
    """Appends one JSON record per log step to ``metrics.jsonl`` and mirrors scalars to TensorBoard."""

    def __init__(self, run_dir: Path, *, tensorboard: bool = True):
        self.path = Path(run_dir) / "metrics.jsonl"
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # imported lazily: it is slow to import

            self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))

    def truncate_after(self, step: int) -> None:
        """On resume, drop records past the checkpoint's step (logged after it, then lost); the
        ``rollback`` records stay, as the history of what happened to the run."""
        if not self.path.exists():
            return
        keep = []
        for line in self.path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill
            if rec.get("step", 0) <= step or "rollback" in rec:
                keep.append(line)
        write_text_atomic(self.path, "".join(k + "\n" for k in keep))  # a kill here keeps the old log

    def log(self, step: int, values: dict[str, float]) -> None:
        record = {"step": step, **{k: float(v) for k, v in values.items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(key, value, step)

    def image(self, tag: str, array: np.ndarray, step: int) -> None:
        if self.writer is not None:
            self.writer.add_image(tag, array, step, dataformats="HWC")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()


class ProgressBar:
    """A rich progress bar on a terminal; plain periodic lines otherwise (CI logs, pipes)."""

    def __init__(self, total: int, start: int, *, enabled: bool = True, description: str = "training"):
        self.total, self.start, self.enabled = total, start, enabled
        self.interactive = enabled and sys.stderr.isatty()
        self.started = time.perf_counter()
        self.last_print = 0.0
        self._progress = None
        if self.interactive:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
                TimeRemainingColumn

            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                transient=False,
            )
            self._task = self._progress.add_task(description, total=total, completed=start, info="")
            self._progress.start()

    def update(self, step: int, info: dict[str, float]) -> None:
        if not self.enabled:
            return
        text = "  ".join(f"{k.split('/')[-1] if k.startswith('loss/') else k}={v:.3g}" for k, v in info.items())
        if self._progress is not None:
            self._progress.update(self._task, completed=step, info=text)
            return
        now = time.perf_counter()
        if now - self.last_print >= 10.0 or step >= self.total:
            self.last_print = now
            done = max(step - self.start, 1)
            eta = (now - self.started) / done * (self.total - step)
            try:
                print(f"step {step}/{self.total}  {text}  eta {eta:.0f}s", file=sys.stderr, flush=True)
            except OSError:  # stderr piped into `head` that has exited: train on, silently (nothing lost)
                self.enabled = False

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    return f"{seconds // 60}m{seconds % 60:02d}s"
