"""Strokes and renderers of atelier.methods.paint (issue 27)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from atelier.methods.paint.strokes import (N_PARAMS, check_strokes, from_patch, render, segment_polygons,
                                           soft_render, stroke_sdf)

STROKES = torch.tensor([
    [0.10, 0.20, 0.50, 0.95, 0.85, 0.30, 0.60, 0.20, 0.9, 0.1, 0.1, 0.8],
    [0.80, 0.10, 0.20, 0.40, 0.30, 0.90, 0.30, 0.50, 0.1, 0.3, 0.9, 0.6],
    [0.40, 0.40, 0.60, 0.50, 0.70, 0.70, 0.15, 0.15, 0.2, 0.8, 0.2, 1.0],
])


def test_soft_render_gradients_match_finite_differences():
    torch.manual_seed(0)
    canvas = torch.rand(1, 3, 14, 14, dtype=torch.float64)
    s = STROKES[:2].double()[None].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: soft_render(x, canvas, tau=1.5), (s,), eps=1e-6, atol=1e-5)


def test_soft_render_gradient_moves_stroke_towards_target():
    # a red target disc on white; a red stroke beside it is pulled towards it by gradient descent
    target = render(torch.tensor([[0.7, 0.5, 0.7, 0.5, 0.7, 0.5, 0.8, 0.8, 1, 0, 0, 1]]), 48, 48)
    s = torch.tensor([[[0.55, 0.5, 0.55, 0.5, 0.55, 0.5, 0.8, 0.8, 1, 0, 0, 1]]], requires_grad=True)
    opt = torch.optim.Adam([s], lr=0.02)
    start = float(F.mse_loss(soft_render(s.detach(), torch.ones(1, 3, 48, 48)), target))
    for _ in range(60):
        loss = F.mse_loss(soft_render(s, torch.ones(1, 3, 48, 48)), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.2 * start
    assert float(s[0, 0, 0]) > 0.65


def test_exact_render_agrees_across_sizes_after_downscaling():
    small = render(STROKES, 96, 128)
    big = render(STROKES, 384, 512)
    down = F.avg_pool2d(big, 4)
    assert small.shape == (1, 3, 96, 128)
    assert float((down - small).abs().mean()) < 0.004
    assert float((down - small).abs().max()) < 0.2  # edge pixels only


def test_exact_render_is_sharp_at_4k_from_a_small_plan():
    s = torch.tensor([[0.2, 0.5, 0.5, 0.5, 0.8, 0.5, 0.5, 0.5, 0, 0, 0, 1]])
    big = render(s, 2160, 3840)[0, 0]
    column = big[:, 1920]  # across the horizontal stroke
    partial = int(((column > 0.02) & (column < 0.98)).sum())
    assert partial <= 2, partial  # both edges of the stroke: at most one partial pixel each
    assert float(column[1080]) == 0.0 and float(column[10]) == 1.0
    # the soft renderer agrees with the exact one away from the edges
    soft = soft_render(s[None], torch.ones(1, 3, 64, 64), tau=0.3)
    exact = render(s, 64, 64)
    assert float((soft - exact).abs().mean()) < 0.01


def test_sdf_sign_and_polygons_are_the_same_shape():
    s = STROKES[0]
    polys = segment_polygons(s, 100, 100)
    from matplotlib.path import Path
    rng = np.random.default_rng(0)
    q = rng.uniform(0, 100, size=(4000, 2))
    inside_poly = np.zeros(len(q), bool)
    for p in polys:
        inside_poly |= Path(p).contains_points(q)
    d = stroke_sdf(s.double(), torch.tensor(q), 100, 100).numpy()
    sure = np.abs(d) > 0.5  # away from the edge (the arcs are sampled)
    assert (inside_poly[sure] == (d[sure] < 0)).mean() > 0.999
    assert inside_poly.sum() > 300


def test_from_patch_places_stroke_inside_its_patch():
    local = torch.rand(5, N_PARAMS)
    g = from_patch(local, 1, 2, 4)
    assert ((g[:, 0:6:2] >= 0.5) & (g[:, 0:6:2] <= 0.75)).all()
    assert ((g[:, 1:6:2] >= 0.25) & (g[:, 1:6:2] <= 0.5)).all()
    assert torch.allclose(g[:, 8:], local[:, 8:])


@pytest.mark.parametrize("bad", [np.zeros((3, 11)), np.full((2, N_PARAMS), 1.5), np.full((1, N_PARAMS), np.nan)])
def test_bad_strokes_are_refused(bad):
    with pytest.raises(ValueError):
        check_strokes(bad)
