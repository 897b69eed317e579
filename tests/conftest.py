"""Shared fixtures: every test writes under its own tmp_path and the dataset cache too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "dataset-cache"))


def run_cli(*args: str, timeout: float = 300, env: dict | None = None, cwd: Path | None = None):
    """Run ``python -m gankit ...`` as a user would; returns the CompletedProcess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "gankit", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=cwd)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def gankit_main(capsys):
    """``gankit ARGS...`` in-process (a subprocess costs seconds of imports per call): returns
    (exit code, stdout, stderr)."""
    from gankit.cli import main

    def run(*args) -> tuple[int, str, str]:
        capsys.readouterr()
        with pytest.raises(SystemExit) as done:
            main([str(a) for a in args])
        out, err = capsys.readouterr()
        return done.value.code or 0, out, err

    return run


@pytest.fixture(scope="session")
def dcgan_run(tmp_path_factory):
    """A tiny DCGAN run (a family without a mapping network: the style tools refuse it)."""
    import gankit

    path = tmp_path_factory.mktemp("dcgan") / "run"
    gankit.train("dcgan", data="mnist", out=path, preset="tiny", steps=1, quiet=True, overrides={"max_images": 32})
    return path
