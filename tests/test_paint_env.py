"""The Gymnasium environment atelier/Paint-v0 (issue 27)."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from atelier.io.images import load_image
from atelier.methods.paint.env import ENV_ID, PaintEnv
from atelier.methods.paint.strokes import N_PARAMS
from conftest import DATA

PHOTO = str(DATA / "content" / "000000000030.jpg")


def test_env_passes_the_gymnasium_checker():
    env = gym.make(ENV_ID, size=32, strokes_per_step=3, max_steps=4)
    check_env(env.unwrapped, skip_render_check=False)
    assert env.action_space.shape == (3 * N_PARAMS,)
    assert env.observation_space["canvas"].shape == (3, 32, 32)


def test_make_with_module_prefix_and_seeding():
    env = gym.make("atelier.methods.paint.env:atelier/Paint-v0", size=32, max_steps=3)
    o1, _ = env.reset(seed=5)
    o2, _ = env.reset(seed=5)
    assert np.array_equal(o1["target"], o2["target"])
    env.action_space.seed(1)
    a = env.action_space.sample()
    r1 = env.step(a)[1]
    env.reset(seed=5)
    assert env.step(a)[1] == r1


def test_reward_is_positive_for_a_stroke_copying_the_target_colour():
    # target: left half red, right half blue; the empty canvas is their mean (purple)
    t = torch.zeros(1, 3, 32, 32)
    t[0, 0, :, :16] = 1.0
    t[0, 2, :, 16:] = 1.0
    env = PaintEnv(images=[t], size=32, strokes_per_step=1, max_steps=3)
    env.reset(seed=0, options={"target": t})
    red_in_red = np.array([0.1, 0.2, 0.25, 0.5, 0.1, 0.8, 0.8, 0.8, 1, 0, 0, 1], np.float32)
    obs, r, term, trunc, info = env.step(red_in_red)
    assert r > 0.05, r  # a large stroke: a sizable share of the error removed
    assert obs["step"] == 1 and not term
    blue_in_red = red_in_red.copy()
    blue_in_red[8:11] = (0, 0, 1)
    env.reset(seed=0, options={"target": t})
    assert env.step(blue_in_red)[1] < 0


def test_env_on_a_real_photo_and_bad_actions():
    env = PaintEnv(images=[load_image(PHOTO, size=96)], size=32, strokes_per_step=2, max_steps=2)
    obs, info = env.reset(seed=3)
    assert obs["canvas"].dtype == np.float32 and 0 <= obs["target"].min() <= obs["target"].max() <= 1
    with pytest.raises(ValueError):
        env.step(np.zeros(5, np.float32))
    _, _, term, _, _ = env.step(env.action_space.sample())
    _, _, term, _, _ = env.step(env.action_space.sample())
    assert term
    assert env.render().shape == (32, 32, 3)
