"""The small protocols through which methods meet (see docs/architecture.md).

A stylizer maps an image batch to an image batch; an optimization-based method also
takes an initial image and extra loss terms. Video, analysis and the interfaces drive
any method through these without importing it.
"""

from __future__ import annotations

from typing import Callable, Optional, Protocol, Sequence, runtime_checkable

import torch

__all__ = ["ExtraLoss", "FrameOptimizer", "Stylizer"]

#: An extra loss term: the current image (1, 3, H, W) -> a scalar tensor (already weighted).
ExtraLoss = Callable[[torch.Tensor], torch.Tensor]


@runtime_checkable
class Stylizer(Protocol):
    """``stylizer(images)``: float32 (N, 3, H, W) RGB in [0, 1] -> the same shape and range."""

    def __call__(self, images: torch.Tensor) -> torch.Tensor: ...


#: One video frame through an optimization-based method: (content frame (1, 3, H, W), the image to
#: start from or None, extra loss terms) -> the stylized frame (1, 3, H, W), all float32 in [0, 1].
FrameOptimizer = Callable[[torch.Tensor, Optional[torch.Tensor], Sequence[ExtraLoss]], torch.Tensor]
