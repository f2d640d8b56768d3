"""MCMC convergence diagnostics on (chain, draw) arrays, in numpy: rank-normalized split R-hat,
bulk and tail effective sample sizes (Vehtari, Gelman, Simpson, Carpenter & Buerkner 2021), as
ArviZ computes them, so that a summary needs no ArviZ."""

from __future__ import annotations

import numpy as np
from scipy import special


def _split(x):
    """(chain, draw) -> (2 chain, draw // 2): each chain's halves as chains."""
    c, n = x.shape
    half = n // 2
    return np.concatenate([x[:, :half], x[:, n - half :]], axis=0)


def _rank_normalize(x):
    """Normal scores of the pooled ranks (ties averaged), shape kept."""
    from scipy.stats import rankdata

    r = rankdata(x, axis=None).reshape(x.shape)
    return special.ndtri((r - 3 / 8) / (x.size + 1 / 4))


def _rhat(x):
    c, n = x.shape
    w = np.mean(np.var(x, axis=1, ddof=1))
    b = n * np.var(np.mean(x, axis=1), ddof=1)
    var = (n - 1) / n * w + b / n
    return float(np.sqrt(var / w)) if w > 0 else np.nan


def rhat(x) -> float:
    """Rank-normalized split R-hat: the larger of the bulk and the tail (folded) values."""
    x = np.asarray(x, np.float64)
    if x.shape[1] < 4 or not np.all(np.isfinite(x)):
        return np.nan
    s = _split(x)
    bulk = _rhat(_rank_normalize(s))
    tail = _rhat(_rank_normalize(np.abs(s - np.median(s))))
    return max(bulk, tail)


def _ess(x):
    """Effective sample size of (chain, draw) draws (Geyer's initial monotone sequence)."""
    c, n = x.shape
    if n < 4 or np.ptp(x) == 0:
        return np.nan
    centred = x - x.mean(axis=1, keepdims=True)
    size = 2 ** int(np.ceil(np.log2(2 * n)))
    f = np.fft.rfft(centred, size, axis=1)
    acov = np.fft.irfft(f * np.conj(f), size, axis=1)[:, :n] / n
    w = np.mean(acov[:, 0] * n / (n - 1))
    var = w * (n - 1) / n + (np.var(x.mean(axis=1), ddof=1) if c > 1 else 0.0)
    rho = 1 - (w - acov.mean(axis=0)) / var
    # Geyer's initial positive sequence over pairs (rho[t], rho[t + 1]), t even, up to the first
    # pair with a negative sum; then the first element of that pair when it is positive (the
    # correction for antithetic chains), and pair sums made non-increasing: Stan's and ArviZ's steps
    keep = np.zeros(n)
    keep[0], keep[1] = 1.0, rho[1]
    even, odd, t = 1.0, rho[1], 1
    while t < n - 3 and even + odd > 0:
        even, odd = rho[t + 1], rho[t + 2]
        if even + odd >= 0:
            keep[t + 1], keep[t + 2] = even, odd
        t += 2
    last = t - 2
    if even > 0:
        keep[last + 1] = even
    for t in range(1, last - 1, 2):
        if keep[t + 1] + keep[t + 2] > keep[t - 1] + keep[t]:
            keep[t + 1] = keep[t + 2] = (keep[t - 1] + keep[t]) / 2
    tau = -1 + 2 * np.sum(keep[: last + 1]) + keep[last + 1]
    return float(c * n / max(tau, 1 / np.log10(c * n)))


def ess_bulk(x) -> float:
    """Bulk effective sample size: of the rank-normalized split chains."""
    x = np.asarray(x, np.float64)
    return _ess(_rank_normalize(_split(x))) if np.all(np.isfinite(x)) else np.nan


def ess_tail(x) -> float:
    """Tail effective sample size: the smaller of those of the 5% and 95% quantile indicators
    (Vehtari et al.; ArviZ 0.8's ``summary`` takes the quantiles of its 89% interval instead)."""
    x = np.asarray(x, np.float64)
    if not np.all(np.isfinite(x)):
        return np.nan
    s = _split(x)
    lo, hi = np.quantile(s, [0.05, 0.95])
    return min(_ess((s <= lo).astype(float)), _ess((s >= hi).astype(float)))


__all__ = ["ess_bulk", "ess_tail", "rhat"]
