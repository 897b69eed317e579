"""FID, KID and the Inception Score computed from features / logits (float64, torch only).

The formulas are those of torchmetrics' ``FrechetInceptionDistance`` / ``KernelInceptionDistance``
(and the tests check they agree with it and with ``scipy.linalg.sqrtm``); working from features lets
:func:`gankit.metrics.evaluate` extract the real-data features once and reuse them.
"""

from __future__ import annotations

import math

import torch


def feature_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and unbiased covariance (D, D) in float64."""
    f = features.double()
    if f.shape[0] < 2:
        raise ValueError("FID needs at least 2 samples per set")
    mu = f.mean(0)
    centred = f - mu
    return mu, centred.T @ centred / (f.shape[0] - 1)


def fid_from_stats(mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), with Tr sqrt via the eigenvalues of S1 S2."""
    diff = (mu1.double() - mu2.double()).square().sum()
    s1, s2 = sigma1.double(), sigma2.double()
    eig = torch.linalg.eigvals(s1 @ s2)
    tr_sqrt = eig.sqrt().real.sum()
    return float(diff + s1.trace() + s2.trace() - 2 * tr_sqrt)


def fid_from_features(real: torch.Tensor, fake: torch.Tensor) -> float:
    return fid_from_stats(*feature_stats(real), *feature_stats(fake))


def _poly_kernel(a: torch.Tensor, b: torch.Tensor, degree: int, gamma: float, coef: float) -> torch.Tensor:
    return (a @ b.T * gamma + coef) ** degree


def _poly_mmd(a: torch.Tensor, b: torch.Tensor, degree: int, gamma: float, coef: float) -> torch.Tensor:
    """Unbiased MMD^2 estimate with the polynomial kernel (Binkowski et al. 2018)."""
    m = a.shape[0]
    kaa, kbb, kab = (_poly_kernel(a, a, degree, gamma, coef), _poly_kernel(b, b, degree, gamma, coef),
                     _poly_kernel(a, b, degree, gamma, coef))
    f64 = torch.float64
    saa = (kaa.sum(dtype=f64) - kaa.diagonal().sum(dtype=f64)) / (m * (m - 1))
    sbb = (kbb.sum(dtype=f64) - kbb.diagonal().sum(dtype=f64)) / (m * (m - 1))
    return saa + sbb - 2 * kab.sum(dtype=f64) / (m * m)


def kid_from_features(real: torch.Tensor, fake: torch.Tensor, *, subsets: int = 100, subset_size: int = 1000,
                      degree: int = 3, gamma: float | None = None, coef: float = 1.0,
                      seed: int = 0) -> tuple[float, float]:
    """KID mean and standard deviation over ``subsets`` random subsets (Binkowski et al. 2018,
    arXiv:1801.01401, §3 and their code's 100 subsets of 1,000). A subset is at most half of
    either set: with the whole set in every subset the spread would be 0 whatever the samples;
    the unbiased MMD estimate keeps its expectation at any subset size."""
    # kernels in float32 (as torchmetrics computes them), sums in float64
    real, fake = real.float(), fake.float()
    size = min(subset_size, real.shape[0] // 2, fake.shape[0] // 2)
    if size < 2:
        raise ValueError("KID needs at least 4 samples per set")
    gamma = 1.0 / real.shape[1] if gamma is None else gamma
    gen = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        ia = torch.randperm(real.shape[0], generator=gen)[:size]
        ib = torch.randperm(fake.shape[0], generator=gen)[:size]
        values.append(_poly_mmd(real[ia], fake[ib], degree, gamma, coef))
    v = torch.stack(values)
    return float(v.mean()), float(v.std(unbiased=False))


def inception_score(logits: torch.Tensor, *, splits: int = 10) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))), mean and std over ``splits`` equal parts (Salimans et al. 2016)."""
    logp = torch.log_softmax(logits.double(), dim=1)
    p = logp.exp()
    splits = max(1, min(splits, logits.shape[0]))
    scores = []
    for part_logp, part_p in zip(logp.chunk(splits), p.chunk(splits)):
        log_marginal = torch.log(part_p.mean(0, keepdim=True))
        kl = (part_p * (part_logp - log_marginal)).sum(1).mean()
        scores.append(math.exp(float(kl)))
    t = torch.tensor(scores, dtype=torch.float64)
    return float(t.mean()), float(t.std(unbiased=False)) if len(scores) > 1 else 0.0
