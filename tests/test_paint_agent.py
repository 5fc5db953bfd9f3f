"""The shipped painting actor (issue 27): it beats random actions on photos it never saw."""

import numpy as np
import torch

from atelier.io.images import load_image
from atelier.methods.paint.agent import AgentPolicy, agent_strokes, load_agent
from atelier.methods.paint.env import PaintEnv
from atelier.methods.paint.optimize import greedy_strokes
from conftest import DATA

HELD_OUT = [str(DATA / "content" / "000000000072.jpg"), str(DATA / "content" / "000000000294.jpg")]


def test_shipped_agent_beats_random_actions_in_the_environment():
    actor = load_agent()
    assert actor.card["format"] == "atelier-paint-actor" and actor.card["steps"] > 100
    policy = AgentPolicy(actor)
    env = PaintEnv(images=[load_image(p, size=160) for p in HELD_OUT], size=64, strokes_per_step=actor.strokes,
                   max_steps=8)
    agent, rand = [], []
    for seed in range(4):
        obs, _ = env.reset(seed=seed)
        agent_return = 0.0
        for _ in range(8):
            obs, r, term, _, info = env.step(policy(obs))
            agent_return += r
        env.reset(seed=seed)
        env.action_space.seed(seed)
        random_return = sum(env.step(env.action_space.sample())[1] for _ in range(8))
        agent.append(agent_return)
        rand.append(random_return)
    assert min(agent) > 0 and np.mean(agent) > 0.1, agent  # 40 strokes remove a share of the error
    assert min(a - r for a, r in zip(agent, rand)) > 0.3, (agent, rand)  # random strokes make it worse


def test_agent_paints_a_held_out_photo_better_than_random_strokes():
    x = load_image(HELD_OUT[0], size=160)
    p = agent_strokes(x, strokes=100, size=96)
    assert p.strokes.shape == (100, 12) and p.method == "agent"
    tgt = torch.nn.functional.interpolate(x, size=(p.height, p.width), mode="bilinear", antialias=True)
    rnd = torch.rand(100, 12, generator=torch.Generator().manual_seed(0))
    from atelier.methods.paint.strokes import render

    random_l2 = float(((render(rnd, p.height, p.width, p.background) - tgt) ** 2).mean())
    assert p.info["l2"] < 0.5 * random_l2
    assert np.isfinite(p.info["l2"])
    # and close to the greedy search with the same budget (which tries 16 candidates per stroke)
    g = greedy_strokes(x, strokes=100, size=96)
    assert p.info["l2"] < 1.5 * g.info["l2"]
