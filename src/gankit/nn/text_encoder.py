"""A small image-text model for text-to-image GANs: sentence embeddings to condition on, and a
learnt judge of whether an image matches its caption.

StackGAN (Zhang et al. 2017, arXiv:1612.03242, §3.1) conditions on a pretrained sentence
embedding (the char-CNN-RNN of Reed et al. 2016); AttnGAN (Xu et al. 2018, arXiv:1711.10485,
§3.3) trains a bidirectional LSTM over words jointly with an image CNN so that matching image and
sentence embeddings lie close (its DAMSM), and scores generators by R-precision (§4.1) with that
pair of encoders. Here, sized for CPU presets:

- :class:`TextEncoder`: word embeddings -> bidirectional GRU over packed sequences (padding id 0
  never reaches the GRU, so a caption's embedding does not depend on how far it is padded) ->
  the last hidden state of each direction, concatenated and projected to ``out_dim``.
- :class:`ImageEncoder`: 4x4 stride-2 convolutions with LeakyReLU(0.2) down to 4x4, no
  normalisation (an image's embedding does not depend on the rest of its batch), then a linear
  layer to ``out_dim``.
- :func:`contrastive_loss`: the symmetric InfoNCE loss of CLIP (Radford et al. 2021,
  arXiv:2103.00020, §2.3 and Fig. 3) over a batch of pairs, in place of the DAMSM's word-level
  attention terms (one sentence-level term here: the captions are short and templated).
- :func:`r_precision`: AttnGAN's R-precision (§4.1) with R = 1: each image's true caption among
  ``candidates - 1`` random mismatched ones, ranked by cosine similarity.
- :func:`train_text_encoder`: a plain, seeded training loop of the two encoders.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from gankit.data.captions import Vocabulary, tokenize
from gankit.errors import GankitError
from gankit.nn.optim import adam

R_PRECISION_CANDIDATES = 100  # AttnGAN §4.1: the true caption and 99 mismatched ones


# ---- encoders ------------------------------------------------------------------------------------
class TextEncoder(nn.Module):
    """Token ids ``(N, L)`` (padding 0 at the end, as :meth:`Vocabulary.encode_batch` gives) ->
    sentence embeddings ``(N, out_dim)``.

    Embedding (``padding_idx`` 0) -> bidirectional single-layer GRU of ``hidden`` units per
    direction, run on packed sequences of each caption's own length -> [last forward state, last
    backward state] -> linear to ``out_dim``. A caption without words (length 0) runs as one
    padding token (a zero input), so it still gets a fixed embedding.
    """

    def __init__(self, vocab_size: int, embed_dim: int = 32, hidden: int = 64, out_dim: int = 64):
        super().__init__()
        if min(vocab_size, embed_dim, hidden, out_dim) < 1:
            raise GankitError(f"TextEncoder sizes must be positive, got vocab_size={vocab_size}, "
                              f"embed_dim={embed_dim}, hidden={hidden}, out_dim={out_dim}")
        self.vocab_size, self.out_dim = vocab_size, out_dim
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.rnn = nn.GRU(embed_dim, hidden, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(2 * hidden, out_dim)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if ids.dim() != 2 or ids.dtype != torch.long:
            raise GankitError(f"TextEncoder takes int64 token ids (N, L), got {ids.dtype} {tuple(ids.shape)}")
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.vocab_size):
            raise GankitError(f"token ids must lie in [0, {self.vocab_size}), got {int(ids.min())}..{int(ids.max())}")
        if lengths is None:
            lengths = (ids != 0).sum(1)
        lengths = lengths.detach().to("cpu", torch.long).clamp(1, max(ids.shape[1], 1))
        if ids.shape[1] == 0:  # no token at all: one padding step
            ids = ids.new_zeros((ids.shape[0], 1))
        packed = pack_padded_sequence(self.embed(ids), lengths, batch_first=True, enforce_sorted=False)
        _, h = self.rnn(packed)  # (2, N, hidden): the last step of each direction, in input order
        return self.proj(torch.cat([h[0], h[1]], 1))


class ImageEncoder(nn.Module):
    """Images ``(N, channels, R, R)`` -> embeddings ``(N, out_dim)``; float in [-1, 1] or uint8
    (mapped to [-1, 1]), R a power of two >= 8.

    log2(R / 4) 4x4 stride-2 convolutions of ``width`` x 1, 2, 4, 8, 8, ... channels, LeakyReLU(0.2)
    after each, no normalisation; the 4x4 map flattened -> linear to ``out_dim``.
    """

    def __init__(self, channels: int, resolution: int, out_dim: int = 64, width: int = 16):
        super().__init__()
        if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 8 \
                or resolution & (resolution - 1):
            raise GankitError(f"ImageEncoder needs a power-of-two resolution >= 8, got {resolution!r}")
        n = resolution.bit_length() - 3  # halvings down to 4x4
        self.channels, self.resolution, self.out_dim = channels, resolution, out_dim
        layers: list[nn.Module] = []
        prev = channels
        for i in range(n):
            w = width * min(2 ** i, 8)
            layers += [nn.Conv2d(prev, w, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
            prev = w
        self.features = nn.Sequential(*layers)
        self.proj = nn.Linear(prev * 16, out_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        expected = (self.channels, self.resolution, self.resolution)
        if images.dim() != 4 or tuple(images.shape[1:]) != expected:
            raise GankitError(f"ImageEncoder built for (N, {', '.join(map(str, expected))}) images, "
                              f"got {tuple(images.shape)}")
        x = images.float() / 127.5 - 1.0 if images.dtype == torch.uint8 else images
        return self.proj(self.features(x).flatten(1))


# ---- objective and metric ------------------------------------------------------------------------
def contrastive_loss(text_emb: torch.Tensor, image_emb: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """CLIP's symmetric InfoNCE loss (Radford et al. 2021, arXiv:2103.00020, Fig. 3): with
    L2-normalised embeddings, logits ``S = T I^T / temperature`` ``(N, N)``; the loss is the mean of
    the cross-entropy of each text over the images (rows of S) and of each image over the texts
    (columns), the matching pair (the diagonal) as the target. CLIP learns the temperature; here it
    is fixed."""
    if text_emb.dim() != 2 or text_emb.shape != image_emb.shape:
        raise GankitError(f"contrastive_loss needs text and image embeddings of one shape (N, D), got "
                          f"{tuple(text_emb.shape)} and {tuple(image_emb.shape)}")
    if not temperature > 0:
        raise GankitError(f"the temperature must be positive, got {temperature}")
    logits = F.normalize(text_emb, dim=1) @ F.normalize(image_emb, dim=1).t() / temperature
    target = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2


@torch.no_grad()
def r_precision(text_emb: torch.Tensor, image_emb: torch.Tensor, candidates: int = R_PRECISION_CANDIDATES,
                generator: torch.Generator | None = None, chunk: int = 256) -> float:
    """AttnGAN's R-precision with R = 1 (Xu et al. 2018, arXiv:1711.10485, §4.1): row i of
    ``image_emb`` (a generated image) and of ``text_emb`` (the caption it was drawn from) match.
    For each image, ``candidates - 1`` mismatched captions are drawn without replacement from the
    other rows, and the image scores 1 when its true caption has the highest cosine similarity of
    the ``candidates``. A tie with k mismatched captions (the same caption text twice) scores
    1 / (k + 1), the expectation of breaking ties at random. Returns the mean score.

    The mismatched captions come from ``generator`` (a CPU torch.Generator; seed 0 when None),
    so the score is the same on every call. AttnGAN repeats the draw 10 times and reports the
    mean and standard deviation: call it with 10 seeds for that.
    """
    if text_emb.dim() != 2 or text_emb.shape != image_emb.shape:
        raise GankitError(f"r_precision needs text and image embeddings of one shape (N, D), got "
                          f"{tuple(text_emb.shape)} and {tuple(image_emb.shape)}")
    n = text_emb.shape[0]
    if candidates < 2:
        raise GankitError(f"r_precision needs at least 2 candidates, got {candidates}")
    if n < candidates:
        raise GankitError(f"r_precision with {candidates} candidates needs at least {candidates} captions, got {n}")
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    t = F.normalize(text_emb.float(), dim=1)
    im = F.normalize(image_emb.float(), dim=1).to(t.device)
    scores = []
    for start in range(0, n, chunk):
        rows = torch.arange(start, min(start + chunk, n))
        # candidates - 1 distinct indices among the n - 1 other rows: the smallest of uniform keys
        pick = torch.rand((len(rows), n - 1), generator=generator).topk(candidates - 1, dim=1, largest=False).indices
        pick = pick + (pick >= rows[:, None]).long()  # skip the image's own row
        rows, pick = rows.to(t.device), pick.to(t.device)
        true = (t[rows] * im[rows]).sum(1)
        wrong = torch.einsum("bkd,bd->bk", t[pick], im[rows])
        beaten = (wrong > true[:, None]).any(1)
        ties = (wrong == true[:, None]).sum(1)
        scores.append(torch.where(beaten, 0.0, 1.0 / (1.0 + ties.float())))
    return float(torch.cat(scores).mean())


# ---- embedding helpers ---------------------------------------------------------------------------
def caption_max_len(captions: Sequence[str], cap: int = 64) -> int:
    """Tokens of the longest caption (at least 1, at most ``cap``)."""
    return max(1, min(cap, max((len(tokenize(c)) for c in captions), default=1)))


@torch.no_grad()
def embed_captions(encoder: TextEncoder, vocab: Vocabulary, captions: Sequence[str], max_len: int | None = None,
                   batch: int = 500) -> torch.Tensor:
    """Sentence embeddings ``(N, out_dim)`` of ``captions`` on the encoder's device, in batches."""
    max_len = max_len or caption_max_len(captions)
    device = next(encoder.parameters()).device
    out = []
    for start in range(0, len(captions), batch):
        ids, lengths = vocab.encode_batch(list(captions[start:start + batch]), max_len)
        out.append(encoder(ids.to(device), lengths))
    return torch.cat(out) if out else torch.zeros((0, encoder.out_dim), device=device)


@torch.no_grad()
def embed_images(encoder: ImageEncoder, images: torch.Tensor, batch: int = 500) -> torch.Tensor:
    """Image embeddings ``(N, out_dim)`` on the encoder's device, in batches (uint8 or [-1, 1])."""
    device = next(encoder.parameters()).device
    out = [encoder(images[start:start + batch].to(device)) for start in range(0, len(images), batch)]
    return torch.cat(out) if out else torch.zeros((0, encoder.out_dim), device=device)


# ---- training ------------------------------------------------------------------------------------
def train_text_encoder(images_uint8: torch.Tensor, captions: Sequence[str], vocab: Vocabulary, steps: int = 300,
                       batch_size: int = 64, lr: float = 2e-3, seed: int = 0, device: str | torch.device = "cpu",
                       *, out_dim: int = 64, embed_dim: int = 32, hidden: int = 64, width: int = 16,
                       temperature: float = 0.1, max_len: int | None = None,
                       ) -> tuple[TextEncoder, ImageEncoder, dict]:
    """Train a :class:`TextEncoder` and an :class:`ImageEncoder` together on image-caption pairs
    with :func:`contrastive_loss`: Adam(``lr``, betas 0.9/0.999), ``steps`` batches of
    ``batch_size`` pairs, each epoch a fresh permutation of the data.

    The same seed gives the same networks and history: both nets are initialised from a forked
    global RNG seeded with ``seed`` (the caller's RNG state is left as it was) and the batches come
    from a torch.Generator seeded with it. Returns (text encoder, image encoder, history) with the
    nets in eval mode and history ``{"loss": [per step], "seconds": wall time, "max_len": ...}``.
    """
    if images_uint8.dtype != torch.uint8 or images_uint8.dim() != 4 or images_uint8.shape[-1] != images_uint8.shape[-2]:
        raise GankitError(f"train_text_encoder takes square uint8 images (N, C, R, R), got "
                          f"{images_uint8.dtype} {tuple(images_uint8.shape)}")
    n = len(images_uint8)
    if len(captions) != n:
        raise GankitError(f"{n} images but {len(captions)} captions")
    if n < 2 or batch_size < 2:
        raise GankitError(f"contrastive training needs at least 2 pairs a batch, got {n} pairs, batch {batch_size}")
    if steps < 0:
        raise GankitError(f"steps must be >= 0, got {steps}")
    batch_size = min(batch_size, n)
    device = torch.device(device)
    max_len = max_len or caption_max_len(captions)
    ids, lengths = vocab.encode_batch(list(captions), max_len)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        text = TextEncoder(len(vocab), embed_dim, hidden, out_dim)
        image = ImageEncoder(images_uint8.shape[1], images_uint8.shape[-1], out_dim, width)
    text.to(device).train()
    image.to(device).train()
    opt = adam([*text.parameters(), *image.parameters()], lr)
    gen = torch.Generator().manual_seed(seed)
    order, pos = torch.randperm(n, generator=gen), 0
    history: dict = {"loss": [], "max_len": max_len}
    started = time.perf_counter()
    for _ in range(steps):
        if pos + batch_size > n:
            order, pos = torch.randperm(n, generator=gen), 0
        idx = order[pos:pos + batch_size]
        pos += batch_size
        loss = contrastive_loss(text(ids[idx].to(device), lengths[idx]), image(images_uint8[idx].to(device)),
                                temperature)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = float(loss.detach())
        if not math.isfinite(value):
            raise GankitError(f"the text-encoder loss became {value}; lower the learning rate (lr={lr})")
        history["loss"].append(value)
    history["seconds"] = time.perf_counter() - started
    return text.eval(), image.eval(), history


__all__ = [
    "R_PRECISION_CANDIDATES", "ImageEncoder", "TextEncoder", "caption_max_len", "contrastive_loss",
    "embed_captions", "embed_images", "r_precision", "train_text_encoder",
]
