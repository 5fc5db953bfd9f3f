"""The Explore preference learner (issue 16) on its own: the Laplace fit recovers a simulated
user's ideal, and Thompson proposals reach it in fewer rounds than random settings."""

from __future__ import annotations

import numpy as np
import pytest

from atelier.studio.preference import Dim, PreferenceModel, Space, studio_space

SPACE = studio_space(2)


def _pick(ideal, shown, rng, temperature=0.02):
    util = []
    for s in shown:
        d2 = sum((d.to_unit(s[d.name]) - d.to_unit(ideal[d.name])) ** 2 for d in SPACE.dims if not d.categorical)
        miss = sum(s[d.name] != ideal[d.name] for d in SPACE.dims if d.categorical)
        util.append(-(d2 + 0.1 * miss) / temperature)
    return int(np.argmax(np.asarray(util) + rng.gumbel(size=len(util))))


def _rounds_to_reach(strategy, ideal, seed, max_rounds=150):
    rng = np.random.default_rng(seed)
    model = PreferenceModel(SPACE)
    for r in range(1, max_rounds + 1):
        shown = model.propose(4, rng) if strategy == "learner" else [SPACE.random(rng) for _ in range(4)]
        if min(SPACE.distance(s, ideal) for s in shown) <= 0.1:
            return r
        model.observe(shown, _pick(ideal, shown, rng))
    return max_rounds


def test_learner_reaches_the_ideal_faster_than_random():
    learner, random = [], []
    for u in range(6):
        ideal = SPACE.random(np.random.default_rng(100 + u))
        learner.append(_rounds_to_reach("learner", ideal, u))
        random.append(_rounds_to_reach("random", ideal, u))
    assert np.mean(learner) <= 0.5 * np.mean(random), (learner, random)
    assert max(learner) < 80, learner


def test_posterior_mean_moves_to_the_ideal():
    ideal = {"method": "wct", "alpha": 0.3, "style_scale": 1.4, "preserve_color": "luminance", "blend": 0.8}
    rng = np.random.default_rng(0)
    model = PreferenceModel(SPACE)
    for _ in range(80):
        shown = [SPACE.random(rng) for _ in range(4)]
        model.observe(shown, _pick(ideal, shown, rng))
    best = model.best()
    assert best["method"] == "wct" and best["preserve_color"] == "luminance"
    assert SPACE.distance(best, ideal) < 0.2, best
    mean, cov = model.fit()
    assert np.all(np.linalg.eigvalsh(cov) > 0)


def test_none_picks_and_bad_rounds():
    model = PreferenceModel(SPACE)
    rng = np.random.default_rng(1)
    shown = [SPACE.random(rng) for _ in range(4)]
    model.observe(shown, None)  # recorded, no information: proposals stay random
    assert len(model.rounds) == 1
    assert model.propose(4, np.random.default_rng(5)) == [SPACE.random(r) for r in [np.random.default_rng(5)] * 4]
    mean, cov = model.fit()  # the posterior is the prior
    assert np.array_equal(mean, model.prior_mean()) and np.allclose(cov, model.prior_scale ** 2 * np.eye(len(mean)))
    # and a "none" round next to real picks changes nothing in the posterior
    picks = [([SPACE.random(rng) for _ in range(4)], k % 4) for k in range(6)]
    with_none, without = PreferenceModel(SPACE), PreferenceModel(SPACE)
    for m in (with_none, without):
        for sh, k in picks:
            m.observe(sh, k)
    with_none.observe(shown, None)
    for a, b in zip(with_none.fit(), without.fit()):
        assert np.allclose(a, b, rtol=1e-9, atol=1e-12)
    assert not np.allclose(without.fit()[0], model.prior_mean())  # the picks did move it
    for bad, words in (((shown, 4), "picked"), ((shown, -1), "picked"), ((shown[:1], 0), "at least two")):
        with pytest.raises(ValueError, match=words):
            model.observe(*bad)
    assert len(model.rounds) == 1  # refused rounds are not recorded


class _RecordingSpace(Space):
    """The studio space, noting every weight vector ``argmax`` is asked about (the Thompson draws)."""

    def __init__(self, dims, seen):
        super().__init__(dims)
        object.__setattr__(self, "seen", seen)

    def argmax(self, w):
        self.seen.append(np.array(w))
        return super().argmax(w)


def test_thompson_draws_have_the_posterior_mean_and_covariance():
    """Thompson sampling draws the weights from the Laplace posterior N(mean, cov): over 20,000
    draws the sample mean is within 0.05 standard deviations of the mean and every covariance
    entry within 10 % of sqrt(cov_ii cov_jj) of the posterior's (the sampling error is ~1 %)."""
    seen = []
    model = PreferenceModel(_RecordingSpace(SPACE.dims, seen))
    rng = np.random.default_rng(3)
    ideal = {"method": "adain", "alpha": 0.7, "style_scale": 0.8, "preserve_color": "none", "blend": 0.3}
    for _ in range(12):
        shown = [SPACE.random(rng) for _ in range(4)]
        model.observe(shown, _pick(ideal, shown, rng, temperature=0.2))
    mean, cov = model.fit()
    sd = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sd, sd)
    assert np.abs(corr - np.eye(len(sd))).max() > 0.3  # correlated weights: a transposed factor would show
    n = 20000
    model.propose(n + 1, np.random.default_rng(4))
    assert len(seen) == n + 1 and np.array_equal(seen[0], mean)  # the first is the mean's best
    draws = np.stack(seen[1:])
    assert np.abs((draws.mean(0) - mean) / sd).max() < 0.05
    err = (np.cov(draws.T) - cov) / np.outer(sd, sd)
    assert np.abs(err).max() < 0.1, np.abs(err).max()


def test_space_round_trips_and_argmax():
    d = Dim("scale", 0.5, 2.0, log=True)
    assert d.from_unit(d.to_unit(1.3)) == pytest.approx(1.3)
    assert d.from_unit(0.5) == pytest.approx(1.0)
    space = Space((Dim("a"), Dim("c", choices=("x", "y"))))
    # utility -(u - 0.8)^2 on the centred feature v = u - 0.5: b = 0.6, a = -1; c prefers "y"
    best = space.argmax(np.array([0.6, -1.0, 0.0, 1.0]))
    assert best == {"a": pytest.approx(0.8), "c": "y"}
