"""The painting actor of :mod:`atelier.methods.paint` (issue 27).

Huang et al., "Learning to Paint with Model-based Deep Reinforcement Learning" (ICCV 2019) use a
ResNet-18 actor that sees the canvas, the target, the step and two coordinate maps (9 channels)
and outputs the parameters of 5 strokes. :class:`PaintActor` is a smaller convolutional version of
it, small enough to train on a CPU.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["PaintActor", "actor_input"]


def actor_input(canvas: torch.Tensor, target: torch.Tensor, progress: float | torch.Tensor) -> torch.Tensor:
    """The actor's 9 input channels: canvas (3), target (3), progress (1: steps taken / episode
    steps, in [0, 1]) and the x, y coordinates in [0, 1] (2).

    Args:
        canvas, target: float32 (B, 3, S, S) in [0, 1]. progress: a float or a (B,) tensor.

    Returns:
        float32 (B, 9, S, S).
    """
    b, _, h, w = canvas.shape
    p = torch.as_tensor(progress, dtype=canvas.dtype, device=canvas.device).reshape(-1, 1, 1, 1).expand(b, 1, h, w)
    ys = torch.linspace(0, 1, h, dtype=canvas.dtype, device=canvas.device).reshape(1, 1, h, 1).expand(b, 1, h, w)
    xs = torch.linspace(0, 1, w, dtype=canvas.dtype, device=canvas.device).reshape(1, 1, 1, w).expand(b, 1, h, w)
    return torch.cat([canvas, target, p, xs, ys], 1)


class PaintActor(nn.Module):
    """Observation -> strokes: (B, 9, S, S) float32 -> (B, strokes, 12) in [0, 1] (sigmoid).

    Four stride-2 3x3 convolutions (width, 2w, 4w, 8w channels; GroupNorm, ReLU), adaptive
    average pooling to 4 x 4, then two linear layers. Any S >= 16 works; it was trained at 64.

    With ``error_input`` the network also sees the signed error ``target - canvas`` (3 more
    channels, computed inside from the input): where to paint next is then a local feature of the
    input instead of a difference the first layers must learn to take (our addition; Learning to
    Paint gives canvas and target only).

    Args:
        strokes: strokes per step (K). width: channels of the first convolution. params: per stroke (12).
        error_input: add the error channels (12 input channels to the first convolution instead of 9).
    """

    def __init__(self, strokes: int = 5, width: int = 32, params: int = 12, error_input: bool = False):
        super().__init__()
        self.strokes, self.width, self.params = int(strokes), int(width), int(params)
        self.error_input = bool(error_input)
        chans = [12 if self.error_input else 9, width, 2 * width, 4 * width, 8 * width]
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.GroupNorm(8, cout), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(8 * width * 16, 256), nn.ReLU(inplace=True),
                                  nn.Linear(256, strokes * params))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.error_input:
            x = torch.cat([x, x[:, 3:6] - x[:, 0:3]], 1)
        return torch.sigmoid(self.head(self.features(x))).reshape(x.shape[0], self.strokes, self.params)
