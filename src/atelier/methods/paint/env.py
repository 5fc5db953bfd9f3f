"""The Gymnasium environment ``atelier/Paint-v0``: paint a target image with brush strokes.

Registered when this module is imported (``import atelier.methods.paint.env``), or in one line::

    env = gymnasium.make("atelier.methods.paint.env:atelier/Paint-v0", size=64, strokes_per_step=5)

Spaces (S = ``size``, K = ``strokes_per_step``):

* observation: ``Dict(canvas=Box(0, 1, (3, S, S), float32), target=Box(0, 1, (3, S, S), float32),
  step=Discrete(max_steps + 1))``: the canvas so far, the target and the number of steps taken;
* action: ``Box(0, 1, (K * 12,), float32)``: K strokes (:data:`~.strokes.PARAMS`), painted in order
  with the exact rasterizer (:func:`~.strokes.render`);
* reward: the decrease of the distance to the target, divided by the distance of the empty canvas
  (as in Huang et al. 2019): ``(d_prev - d_new) / d_0``; the distance is the pixel MSE plus, with
  ``perceptual_weight`` > 0, that weight times the VGG perceptual distance
  (:func:`atelier.analysis`-style unit-normalized features, computed here from
  :mod:`atelier.encoders.vgg`). So an episode's return is the fraction of the error removed;
* an episode ends (``terminated``) after ``max_steps`` steps; it is never truncated.

The empty canvas is the target's mean colour. ``reset(seed=...)`` draws the target (an image of
``images``, a random square crop of it resized to S) from the environment's generator, so runs are
reproducible. ``render()`` returns the canvas as uint8 (S, S, 3) (``render_mode="rgb_array"``).
"""

from __future__ import annotations

from typing import Optional, Sequence

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from ...io.images import load_image
from .plan import background_of, resize_target
from .strokes import N_PARAMS, render

__all__ = ["PaintEnv", "ENV_ID", "default_images"]

ENV_ID = "atelier/Paint-v0"


def default_images() -> list[torch.Tensor]:
    """Photos used when none are given: the package's cat photo and scikit-image's astronaut and coffee."""
    from importlib.resources import files

    import skimage.data

    out = [load_image(files("atelier") / "assets" / "chelsea.jpg")]
    for name in ("astronaut", "coffee"):
        a = getattr(skimage.data, name)()
        out.append(torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float() / 255)
    return out


class PaintEnv(gym.Env):
    """Paint a target with K strokes per step (see the module docstring for the spaces and reward).

    Args:
        images: target images: paths, or float32 (1, 3, H, W) tensors in [0, 1]; default :func:`default_images`.
        size: canvas side in pixels (>= 16). strokes_per_step: K (>= 1). max_steps: steps per episode (>= 1).
        perceptual_weight: weight of the VGG perceptual distance in the reward (0: pixel MSE only).
        render_mode: None or ``"rgb_array"``.

    Raises:
        ValueError: an option out of range. InputError: an unreadable image file.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, images: Optional[Sequence] = None, size: int = 64, strokes_per_step: int = 5,
                 max_steps: int = 20, perceptual_weight: float = 0.0, render_mode: Optional[str] = None):
        if size < 16 or strokes_per_step < 1 or max_steps < 1 or perceptual_weight < 0:
            raise ValueError("need size >= 16, strokes_per_step >= 1, max_steps >= 1, perceptual_weight >= 0")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.images = [x if torch.is_tensor(x) else load_image(x) for x in (images or default_images())]
        self.size, self.k, self.max_steps = int(size), int(strokes_per_step), int(max_steps)
        self.perceptual_weight = float(perceptual_weight)
        self.render_mode = render_mode
        box = spaces.Box(0.0, 1.0, (3, self.size, self.size), np.float32)
        self.observation_space = spaces.Dict({"canvas": box, "target": box,
                                              "step": spaces.Discrete(self.max_steps + 1)})
        self.action_space = spaces.Box(0.0, 1.0, (self.k * N_PARAMS,), np.float32)
        self._encoder = None
        self._target = self._canvas = None
        self._steps, self._d0, self._d = 0, 1.0, 1.0

    # -- distance --------------------------------------------------------------------------
    def distance(self, canvas: torch.Tensor) -> float:
        """Distance of a canvas (1, 3, S, S) to the current target: MSE (+ weight x perceptual)."""
        d = float((canvas - self._target).pow(2).mean())
        if self.perceptual_weight > 0:
            if self._encoder is None:
                from ...encoders.vgg import get_encoder

                self._encoder = get_encoder()
            layers = ("relu1_1", "relu2_1", "relu3_1")
            with torch.no_grad():
                fa, fb = self._encoder(canvas, layers), self._encoder(self._target, layers)
            unit = {n: (fa[n] / (fa[n].norm(dim=1, keepdim=True) + 1e-10),
                        fb[n] / (fb[n].norm(dim=1, keepdim=True) + 1e-10)) for n in layers}
            d += self.perceptual_weight * sum(float((a - b).square().sum(1).mean()) for a, b in unit.values()) / 3
        return d

    def _obs(self) -> dict:
        return {"canvas": self._canvas[0].numpy().astype(np.float32),
                "target": self._target[0].numpy().astype(np.float32), "step": int(self._steps)}

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        """Draw a target and start from its mean colour. ``options={"target": tensor}`` sets the target
        (float32 (1, 3, H, W) in [0, 1], resized to S x S). Returns ``(observation, info)``."""
        super().reset(seed=seed)
        if options and options.get("target") is not None:
            t = resize_target(options["target"], self.size, self.size)
        else:
            x = self.images[int(self.np_random.integers(len(self.images)))]
            h, w = x.shape[-2:]
            side = int(min(h, w) * self.np_random.uniform(0.6, 1.0))
            y0 = int(self.np_random.integers(h - side + 1))
            x0 = int(self.np_random.integers(w - side + 1))
            t = resize_target(x[..., y0:y0 + side, x0:x0 + side], self.size, self.size)
        self._target = t.float().contiguous()
        self._canvas = render(torch.zeros(0, N_PARAMS), self.size, self.size, background_of(self._target))
        self._steps = 0
        self._d0 = self._d = max(self.distance(self._canvas), 1e-8)
        return self._obs(), {"distance": self._d}

    def step(self, action):
        """Paint the K strokes of ``action`` (clipped to [0, 1]). Returns ``(obs, reward, terminated,
        truncated, info)``; info has ``distance``. Raises ValueError for an action of another size."""
        if self._target is None:
            raise RuntimeError("call reset() before step()")
        a = np.asarray(action, dtype=np.float32)
        if a.size != self.k * N_PARAMS:
            raise ValueError(f"an action has {self.k * N_PARAMS} numbers ({self.k} strokes x {N_PARAMS}), got {a.size}")
        strokes = torch.from_numpy(np.clip(np.nan_to_num(a.reshape(self.k, N_PARAMS)), 0, 1))
        self._canvas = render(strokes, self.size, self.size, canvas=self._canvas)
        self._steps += 1
        d = self.distance(self._canvas)
        reward = (self._d - d) / self._d0
        self._d = d
        return self._obs(), float(reward), self._steps >= self.max_steps, False, {"distance": d}

    def render(self):
        if self._canvas is None:
            return None
        return (self._canvas[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="atelier.methods.paint.env:PaintEnv", max_episode_steps=None)
