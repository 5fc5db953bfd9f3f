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
    assert len(model.propose(4, rng)) == 4
    with pytest.raises(ValueError):
        model.observe(shown, 4)
    with pytest.raises(ValueError):
        model.observe(shown[:1], 0)


def test_space_round_trips_and_argmax():
    d = Dim("scale", 0.5, 2.0, log=True)
    assert d.from_unit(d.to_unit(1.3)) == pytest.approx(1.3)
    assert d.from_unit(0.5) == pytest.approx(1.0)
    space = Space((Dim("a"), Dim("c", choices=("x", "y"))))
    # utility -(u - 0.8)^2 on the centred feature v = u - 0.5: b = 0.6, a = -1; c prefers "y"
    best = space.argmax(np.array([0.6, -1.0, 0.0, 1.0]))
    assert best == {"a": pytest.approx(0.8), "c": "y"}
