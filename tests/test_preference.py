"""The Explore preference learner (issue 16) on its own: the Laplace fit recovers a simulated
user's ideal, and Thompson proposals reach it in fewer rounds than random settings."""

from __future__ import annotations

import numpy as np
import pytest

from atelier.studio.preference import STUDIO_SPACE, Dim, PreferenceModel, Space, studio_space

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


def test_studio_space_lists_the_parameters_explore_varies():
    one, two = studio_space(1), studio_space(2, methods=("adain",))
    assert one.to_json() == [
        {"name": "method", "low": 0.0, "high": 1.0, "log": False, "choices": ["adain", "wct"]},
        {"name": "alpha", "low": 0.2, "high": 1.0, "log": False, "choices": []},
        {"name": "style_scale", "low": 0.5, "high": 2.0, "log": True, "choices": []},
        {"name": "preserve_color", "low": 0.0, "high": 1.0, "log": False, "choices": ["none", "luminance", "histogram"]}]
    assert [d["name"] for d in two.to_json()] == ["method", "alpha", "style_scale", "preserve_color", "blend"]
    assert two.to_json()[0]["choices"] == ["adain"] and two.to_json()[-1] == {
        "name": "blend", "low": 0.0, "high": 1.0, "log": False, "choices": []}
    assert one.n_features == 2 + 2 + 2 + 3 and STUDIO_SPACE.to_json() == studio_space(2).to_json()
    assert studio_space().to_json() == one.to_json()  # one style by default


def test_unit_scale_features_and_prior_mean_by_hand():
    alpha = Dim("alpha", 0.2, 1.0)
    assert alpha.to_unit(0.4) == pytest.approx(0.25) and alpha.from_unit(0.25) == pytest.approx(0.4)
    assert alpha.to_unit(1.7) == 1.0 and alpha.to_unit(-3) == 0.0  # clipped to the range
    assert alpha.from_unit(1.5) == 1.0 and alpha.from_unit(-0.5) == pytest.approx(0.2)
    space = Space((alpha, Dim("c", choices=("x", "y", "z"))))
    phi = space.features({"alpha": 0.4, "c": "y"})
    assert phi.dtype == np.float64 and phi.tolist() == pytest.approx([-0.25, 0.0625, 0.0, 1.0, 0.0])
    model = PreferenceModel(space, prior_curvature=7.0)
    assert model.prior_mean().tolist() == [0.0, -7.0, 0.0, 0.0, 0.0]
    two = PreferenceModel(space)
    two.observe([{"alpha": 0.4, "c": "y"}, {"alpha": 0.9, "c": "x"}], 0)  # two variants are a round
    assert len(two.rounds) == 1
    with pytest.raises(ValueError, match=r"picked must be None or 0\.\.1, got 2"):
        two.observe([{"alpha": 0.4, "c": "y"}, {"alpha": 0.9, "c": "x"}], 2)


def test_argmax_picks_the_best_end_or_the_vertex():
    space = Space((Dim("a"),))
    # utility b t + a t^2 on t = u - 0.5 in [-0.5, 0.5]
    assert space.argmax(np.array([0.5, 1.0]))["a"] == pytest.approx(1.0)   # convex, rising: the high end
    assert space.argmax(np.array([-0.5, 1.0]))["a"] == pytest.approx(0.0)  # convex, falling: the low end
    assert space.argmax(np.array([-0.2, 0.0]))["a"] == pytest.approx(0.0)  # linear (a = 0): an end
    assert space.argmax(np.array([0.2, 0.0]))["a"] == pytest.approx(1.0)
    assert space.argmax(np.array([0.3, -1.0]))["a"] == pytest.approx(0.65)  # concave: the vertex -b / 2a
    assert space.argmax(np.array([0.0, -1.0]))["a"] == pytest.approx(0.5)  # the vertex at the middle
    assert space.argmax(np.array([3.0, -1.0]))["a"] == pytest.approx(1.0)   # vertex beyond the range: clipped
    assert space.argmax(np.array([-3.0, -1.0]))["a"] == pytest.approx(0.0)


def test_laplace_fit_is_the_map_and_its_covariance_the_inverse_hessian():
    """The fit against a log posterior written out here (Gaussian prior, multinomial logit per
    round, "none" rounds ignored) and differentiated numerically: the gradient vanishes at the
    mean and the covariance is the inverse of the negative Hessian there."""
    space = Space((Dim("a", 0.0, 2.0), Dim("c", choices=("x", "y"))))
    model = PreferenceModel(space, prior_scale=1.5, prior_curvature=3.0)
    rng = np.random.default_rng(0)
    for k in range(8):
        shown = [space.random(rng) for _ in range(3)]
        model.observe(shown, None if k == 5 else int(np.argmax([s["a"] for s in shown])))
    mean, cov = model.fit()
    mu = model.prior_mean()
    rounds = [(X, c) for X, c in model.rounds if c is not None]

    def log_post(w):
        val = -0.5 * (w - mu) @ (w - mu) / 1.5 ** 2
        for X, c in rounds:
            u = X @ w
            val += u[c] - np.log(np.exp(u).sum())
        return val

    p, h = len(mean), 1e-4
    eye = np.eye(p)
    grad = np.array([(log_post(mean + h * e) - log_post(mean - h * e)) / (2 * h) for e in eye])
    assert np.abs(grad).max() < 1e-5, grad
    hess = np.array([[(log_post(mean + h * a + h * b) - log_post(mean + h * a - h * b)
                       - log_post(mean - h * a + h * b) + log_post(mean - h * a - h * b)) / (4 * h * h)
                      for b in eye] for a in eye])
    assert np.allclose(cov, np.linalg.inv(-hess), rtol=1e-3, atol=1e-6)
    assert np.abs(mean - mu).max() > 0.1  # the picks moved it from the prior


def test_propose_without_a_generator_and_draws_with_small_variances():
    model = PreferenceModel(SPACE, prior_scale=1.0)
    rng = np.random.default_rng(2)
    for _ in range(3):
        shown = [SPACE.random(rng) for _ in range(4)]
        model.observe(shown, 0)
    assert len(model.propose(3)) == 3 and len(model.propose()) == 4  # its own generator; 4 by default
    seen = []
    model.space = _RecordingSpace(SPACE.dims, seen)
    model.propose(4001, np.random.default_rng(1))
    _, cov = model.fit()
    err = np.cov(np.stack(seen[1:]).T) - cov
    sd = np.sqrt(np.diag(cov))
    assert np.abs(err / np.outer(sd, sd)).max() < 0.15 and sd.max() <= 1.0


def test_fit_is_finite_when_the_utilities_are_thousands():
    """The softmax in the fit is shifted by the largest utility (log-sum-exp): a steep prior
    (curvature 4000: utilities of about -3000 at the ends of the ranges) still gives a finite
    posterior."""
    model = PreferenceModel(SPACE, prior_curvature=4000.0)
    rng = np.random.default_rng(0)
    for _ in range(5):
        model.observe([SPACE.random(rng) for _ in range(4)], 0)
    assert min(float((X @ model.prior_mean()).max()) for X, _ in model.rounds) < -700  # exp() underflows there
    mean, cov = model.fit()
    assert np.isfinite(mean).all() and np.isfinite(cov).all() and np.all(np.linalg.eigvalsh(cov) > 0)
