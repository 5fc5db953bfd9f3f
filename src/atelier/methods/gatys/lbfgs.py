"""L-BFGS for image optimization, with a pixel-space step bound.

Limited-memory BFGS (Nocedal 1980; two-loop recursion, Nocedal & Wright 2006,
Algorithm 7.4) taking one function evaluation per iteration, like
``torch.optim.LBFGS(max_iter=1)`` without a line search, but safe to use on the
large, badly scaled objectives of style transfer:

* every step is scaled down so that no pixel moves by more than ``max_step``
  (in [0, 1] image units). Plain L-BFGS without a line search can take a step of
  the raw gradient's size when its first curvature pair is rejected, which sends
  the loss to 1e20 or NaN and wastes many iterations recovering (or never does);
* a curvature pair is kept only when ``y.s > 1e-10 * |y| |s|`` (relative, so the
  rule does not depend on the loss scale);
* the initial inverse-Hessian scale is ``y.s / y.y`` of the newest pair; before the
  first pair, the step is a gradient step of ``max_step / 10`` in the largest pixel.
"""

from __future__ import annotations

from typing import Callable

import torch


class LBFGS(torch.optim.Optimizer):
    """One-evaluation-per-step L-BFGS on a single tensor.

    Args:
        params: an iterable holding exactly one tensor (the image, any shape, float32).
        history_size: curvature pairs kept (memory: ``2 * history_size`` copies of the image).
        max_step: largest change of any element per step (pixel units; the image is in [0, 1]).

    ``step(closure)``: ``closure`` zeroes grads, computes the loss, calls ``backward()`` and
    returns the loss; it is called exactly once per step. Returns that loss.
    """

    def __init__(self, params, history_size: int = 20, max_step: float = 0.1):
        if history_size < 1:
            raise ValueError(f"history_size must be >= 1, got {history_size}")
        if not max_step > 0:
            raise ValueError(f"max_step must be > 0, got {max_step}")
        super().__init__(params, dict(history_size=history_size, max_step=max_step))
        if len(self.param_groups) != 1 or len(self.param_groups[0]["params"]) != 1:
            raise ValueError("this L-BFGS optimizes exactly one tensor")

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        """Evaluate the loss and gradient once, then move along the L-BFGS direction.

        No host synchronisation: every scalar (curvature, the pair test, the step bound, the
        finiteness check) stays a 0-dim tensor on the image's device, and the data-dependent
        choices are made with ``torch.where``, never with Python ``if`` on a tensor (issue 25). A
        rejected curvature pair is kept with ``rho = 0`` (it then changes nothing) instead of being
        dropped, so it takes one of the ``history_size`` slots.
        """
        group = self.param_groups[0]
        x = group["params"][0]
        with torch.enable_grad():
            loss = closure()
        g = x.grad.detach().reshape(-1).clone()
        state = self.state[x]
        s_hist, y_hist, rho_hist = state.setdefault("s", []), state.setdefault("y", []), state.setdefault("rho", [])
        zero = g.new_zeros(())
        gamma = state.setdefault("gamma", zero.clone())  # y.s / y.y of the newest kept pair
        have = state.setdefault("have", zero.clone())  # 1 once a pair was kept (since the last reset)
        prev_g, prev_step = state.get("g"), state.get("step")
        if prev_g is not None:
            y = g - prev_g
            s = prev_step
            ys = y.dot(s)
            keep = ys > 1e-10 * y.norm() * s.norm()
            if len(s_hist) == group["history_size"]:
                s_hist.pop(0), y_hist.pop(0), rho_hist.pop(0)
            s_hist.append(s)
            y_hist.append(y)
            rho_hist.append(torch.where(keep, 1.0 / torch.where(keep, ys, 1.0), zero))
            gamma = torch.where(keep, ys / torch.where(keep, y.dot(y), 1.0), gamma)
            have = torch.where(keep, 1.0, have)
        # two-loop recursion: d = -H g
        q = g.neg()
        alphas = []
        for s, y, rho in zip(reversed(s_hist), reversed(y_hist), reversed(rho_hist)):
            a = rho * s.dot(q)
            q.sub_(y * a)
            alphas.append(a)
        q.mul_(torch.where(have > 0, gamma, 1.0))
        for (s, y, rho), a in zip(zip(s_hist, y_hist, rho_hist), reversed(alphas)):
            b = rho * y.dot(q)
            q.add_(s * (a - b))
        biggest = q.abs().max().clamp_min(1e-30)
        # no curvature yet: a small gradient step (a tenth of the bound); else at most max_step
        bound = group["max_step"]
        q.mul_(torch.where(have > 0, (bound / biggest).clamp(max=1.0), 0.1 * bound / biggest))
        finite = torch.isfinite(q).all()
        fallback = g.neg() * (bound / g.abs().max().clamp_min(1e-30))
        q = torch.where(finite, q, fallback)
        for r in rho_hist:  # a non-finite direction forgets the curvature pairs (rho = 0)
            r.mul_(finite)
        have = have * finite
        x.add_(q.view_as(x))
        state["g"], state["step"], state["gamma"], state["have"] = g, q, gamma, have
        return loss
