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


@pytest.fixture(scope="session")
def studio_runs(tmp_path_factory):
    """Tiny runs of the families the studio's tests serve: name -> run directory."""
    import gankit

    root = tmp_path_factory.mktemp("studio")
    small = dict(preset="tiny", quiet=True, overrides={"max_images": 64})
    gankit.train("stylegan2", data="mnist", out=root / "sg2", steps=2, **small)
    gankit.train("cgan", data="mnist", out=root / "cgan", steps=1, **small)
    gankit.train("stargan", data="mnist-attributes", out=root / "stargan", steps=1, **small)
    gankit.train("srgan", out=root / "srgan", steps=2, preset="tiny", quiet=True)
    gankit.train("stylegan2", data="mnist", out=root / "toon", steps=1, preset="tiny", quiet=True,
                 overrides={"max_images": 64, "seed": 1})
    gankit.train("singan", data="china", out=root / "singan", preset="tiny", quiet=True)
    gankit.train("gan", data="ring8", out=root / "points", steps=1, preset="tiny", quiet=True)
    return {p.name: p for p in sorted(root.iterdir())}
