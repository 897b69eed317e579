"""Every past checkpoint format keeps loading (users must not lose runs to an upgrade).

``fixtures/format_v<N>/`` is a tiny run saved by the gankit that introduced format N, with the
samples it drew; add one for each new format, never delete one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import gankit

FIXTURES = sorted((Path(__file__).parent / "fixtures").glob("format_v*"))


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.name)
def test_old_checkpoint_loads_and_samples_as_it_did(fixture):
    expected = torch.tensor(json.loads((fixture / "expected_sample_seed0.json").read_text()))
    model = gankit.load(fixture)
    assert torch.allclose(model.sample(len(expected), seed=0), expected, atol=1e-6)


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.name)
def test_old_checkpoint_resumes(fixture, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(fixture, run)
    result = gankit.train(resume=run, steps=4, quiet=True)
    assert result.status == "finished" and result.step == 4
