"""Learning which parameters a user likes from their picks (the studio's "Explore").

Each round shows a few variants (parameter settings); the user picks the one they like best,
or none. The model is a Bayesian multinomial-logit (Bradley-Terry / Plackett-Luce "best of
k") choice model over parameter features: the utility of a setting ``x`` is ``w . phi(x)``
and the chance of picking ``j`` from the shown set ``S`` is ``exp(u_j) / sum_{k in S} exp(u_k)``
(Luce 1959; Bradley & Terry 1952 for k = 2). ``phi`` holds, for every continuous parameter
``v`` (scaled to [0, 1] and centred), ``v`` and ``v**2``, so that a user with an ideal point
(utility falling with the squared distance to it) is exactly representable; and a one-hot
vector per categorical parameter. The prior on ``w`` is ``N(0, prior_scale**2 I)``; the
posterior is approximated by Laplace's method (Newton's method to the MAP, covariance = the
inverse negative Hessian there); its mean is 0 except ``-prior_curvature`` (40) on the squared
terms, a mild belief that the middle of a range beats its ends (without it, half the early
proposals sit at the ends of the ranges). A "none" pick is recorded but adds no likelihood term.

The next round (Thompson sampling, Thompson 1933; batch form as in Chapelle & Li 2011) shows
the setting the posterior mean likes best (exploitation) and the best settings of
``k - 1`` independent posterior draws (exploration in proportion to uncertainty). Because the
features are separable per parameter, each setting's maximizer is exact: per continuous
parameter the vertex of a parabola (or an end of the range), per categorical the largest
weight.

Pure NumPy, no web or torch import, so that it is tested and benchmarked on its own
(``benchmarks/preference.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

__all__ = ["Dim", "Space", "PreferenceModel", "STUDIO_SPACE", "studio_space"]


@dataclass(frozen=True)
class Dim:
    """One parameter: continuous in ``[low, high]`` (``log``: uniform in log scale), or
    categorical with ``choices``."""

    name: str
    low: float = 0.0
    high: float = 1.0
    log: bool = False
    choices: tuple = ()

    @property
    def categorical(self) -> bool:
        return bool(self.choices)

    def to_unit(self, value) -> float:
        """A continuous value mapped to [0, 1] (clipped)."""
        if self.log:
            u = (math.log(float(value)) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        else:
            u = (float(value) - self.low) / (self.high - self.low)
        return float(min(1.0, max(0.0, u)))

    def from_unit(self, u: float) -> float:
        u = float(min(1.0, max(0.0, u)))
        if self.log:
            return float(math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low))))
        return float(self.low + u * (self.high - self.low))


@dataclass(frozen=True)
class Space:
    """The parameters a round varies. A setting is a ``dict`` name -> value (a float for a
    continuous parameter, one of ``choices`` for a categorical one)."""

    dims: tuple

    @property
    def n_features(self) -> int:
        return sum(len(d.choices) if d.categorical else 2 for d in self.dims)

    def features(self, setting: dict) -> np.ndarray:
        """``phi(setting)``: float64 (n_features,)."""
        out = []
        for d in self.dims:
            v = setting[d.name]
            if d.categorical:
                out.extend(1.0 if v == c else 0.0 for c in d.choices)
            else:
                u = d.to_unit(v) - 0.5
                out.extend((u, u * u))
        return np.asarray(out, dtype=np.float64)

    def random(self, rng: np.random.Generator) -> dict:
        """A setting drawn uniformly (each continuous parameter uniform in its unit scale)."""
        return {d.name: (d.choices[int(rng.integers(len(d.choices)))] if d.categorical
                         else d.from_unit(float(rng.random()))) for d in self.dims}

    def argmax(self, w: np.ndarray) -> dict:
        """The setting maximizing ``w . phi(x)`` (exact: the features are separable)."""
        out, i = {}, 0
        for d in self.dims:
            if d.categorical:
                k = len(d.choices)
                out[d.name] = d.choices[int(np.argmax(w[i:i + k]))]
                i += k
                continue
            b, a = float(w[i]), float(w[i + 1])
            i += 2
            cands = [-0.5, 0.5]
            if a < 0:
                cands.append(min(0.5, max(-0.5, -b / (2 * a))))
            v = max(cands, key=lambda t: b * t + a * t * t)
            out[d.name] = d.from_unit(v + 0.5)
        return out

    def distance(self, a: dict, b: dict) -> float:
        """Largest difference over the continuous parameters in unit scale (0 ... 1), or
        ``inf`` when a categorical parameter differs."""
        dist = 0.0
        for d in self.dims:
            if d.categorical:
                if a[d.name] != b[d.name]:
                    return math.inf
            else:
                dist = max(dist, abs(d.to_unit(a[d.name]) - d.to_unit(b[d.name])))
        return dist

    def to_json(self) -> list:
        return [{"name": d.name, "low": d.low, "high": d.high, "log": d.log, "choices": list(d.choices)}
                for d in self.dims]


def studio_space(n_styles: int = 1, methods: Sequence[str] = ("adain", "wct")) -> Space:
    """The space Explore varies: method, style strength (alpha, 0.2 ... 1: below that the result is
    mostly the photo), style scale (0.5 ... 2, log scale), colour mode and, with two or more style
    images, the weight of the first style (``blend``)."""
    dims = [Dim("method", choices=tuple(methods)), Dim("alpha", 0.2, 1.0), Dim("style_scale", 0.5, 2.0, log=True),
            Dim("preserve_color", choices=("none", "luminance", "histogram"))]
    if n_styles >= 2:
        dims.append(Dim("blend", 0.0, 1.0))
    return Space(tuple(dims))


#: The default space with two styles (what the benchmark uses).
STUDIO_SPACE = studio_space(2)


@dataclass
class PreferenceModel:
    """Bayesian choice model over a :class:`Space`, fitted by Laplace's method.

    Args:
        space: the parameters.
        prior_scale: standard deviation of the Gaussian prior on each weight (utility units).
        prior_curvature: minus the prior mean of each squared term's weight (see the module doc;
            chosen from 0, 10, 20, 40, 60, 100 on 30 simulated users, ``benchmarks/preference.py``).

    Use :meth:`observe` for each round (the settings shown and the index picked, ``None`` for
    "none of them"), then :meth:`propose` for the next round.
    """

    space: Space
    prior_scale: float = 20.0
    prior_curvature: float = 40.0
    rounds: list = field(default_factory=list)
    _mean: Optional[np.ndarray] = field(default=None, repr=False)
    _cov: Optional[np.ndarray] = field(default=None, repr=False)

    def observe(self, shown: Sequence[dict], picked: Optional[int]) -> None:
        """Record one round: ``shown`` settings (2 or more), ``picked`` their index or ``None``.

        Raises:
            ValueError: fewer than two settings, or ``picked`` out of range.
        """
        if len(shown) < 2:
            raise ValueError(f"a round shows at least two variants, got {len(shown)}")
        if picked is not None and not (0 <= int(picked) < len(shown)):
            raise ValueError(f"picked must be None or 0..{len(shown) - 1}, got {picked}")
        self.rounds.append((np.stack([self.space.features(s) for s in shown]), None if picked is None else int(picked)))
        self._mean = None

    def fit(self, iterations: int = 50) -> tuple[np.ndarray, np.ndarray]:
        """The Laplace posterior ``(mean, covariance)`` of the weights, float64 (p,) and (p, p)."""
        if self._mean is not None:
            return self._mean, self._cov
        p = self.space.n_features
        prec0 = 1.0 / self.prior_scale ** 2
        data = [(X, c) for X, c in self.rounds if c is not None]
        mu = self.prior_mean()
        w = mu.copy()

        def objective(w):
            val = -0.5 * prec0 * (w - mu) @ (w - mu)
            for X, c in data:
                u = X @ w
                m = u.max()
                val += u[c] - (m + math.log(np.exp(u - m).sum()))
            return val

        H = -prec0 * np.eye(p)
        for _ in range(iterations):
            g = -prec0 * (w - mu)
            H = -prec0 * np.eye(p)
            for X, c in data:
                u = X @ w
                e = np.exp(u - u.max())
                pr = e / e.sum()
                mean_x = pr @ X
                g += X[c] - mean_x
                H -= (X.T * pr) @ X - np.outer(mean_x, mean_x)
            step = np.linalg.solve(H, -g)
            f0, t = objective(w), 1.0
            while t > 1e-4 and objective(w + t * step) < f0 - 1e-12:
                t *= 0.5
            w = w + t * step
            if np.abs(t * step).max() < 1e-6:
                break
        cov = np.linalg.inv(-H)
        self._mean, self._cov = w, 0.5 * (cov + cov.T)
        return self._mean, self._cov

    def prior_mean(self) -> np.ndarray:
        """The prior mean of the weights: ``-prior_curvature`` on every squared term (a mild
        belief that the middle of each range beats its ends), 0 elsewhere."""
        mu = []
        for d in self.space.dims:
            mu.extend([0.0] * len(d.choices) if d.categorical else [0.0, -self.prior_curvature])
        return np.asarray(mu, dtype=np.float64)

    def best(self) -> dict:
        """The setting the posterior mean likes best."""
        mean, _ = self.fit()
        return self.space.argmax(mean)

    def propose(self, k: int = 4, rng: Optional[np.random.Generator] = None) -> list[dict]:
        """``k`` settings for the next round: the posterior mean's best, then ``k - 1`` Thompson
        draws; before any pick, ``k`` uniform random settings."""
        rng = rng if rng is not None else np.random.default_rng()
        if not any(c is not None for _, c in self.rounds):
            return [self.space.random(rng) for _ in range(k)]
        mean, cov = self.fit()
        out = [self.space.argmax(mean)]
        chol = np.linalg.cholesky(cov + 1e-9 * np.eye(len(mean)))
        while len(out) < k:
            out.append(self.space.argmax(mean + chol @ rng.standard_normal(len(mean))))
        return out
