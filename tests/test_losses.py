import numpy as np
import pytest
import torch

from atelier.losses import StyleTarget, content_loss, gram_matrix, normalize_weights, relative_mse, style_loss, tv_loss


def test_gram_matrix_matches_hand_computation():
    # 2 channels, 2x2 positions: F = [[1, 2, 3, 4], [0, 1, 0, -1]]
    f = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, -1.0]]]])
    g = gram_matrix(f)
    # By hand: <f0,f0> = 1+4+9+16 = 30; <f0,f1> = 0+2+0-4 = -2; <f1,f1> = 0+1+0+1 = 2; divided by H*W = 4.
    expected = torch.tensor([[[30.0, -2.0], [-2.0, 2.0]]]) / 4
    assert g.dtype == torch.float32
    assert torch.allclose(g, expected)


def test_gram_matrix_of_bf16_features_is_fp32_and_close():
    torch.manual_seed(0)
    f = torch.randn(2, 8, 5, 7)
    g32 = gram_matrix(f)
    g16 = gram_matrix(f.bfloat16())
    assert g16.dtype == torch.float32 and g16.shape == (2, 8, 8)
    assert torch.allclose(g16, g32, rtol=0.05, atol=0.05)
    # against numpy loops
    a = f.numpy().reshape(2, 8, 35)
    ref = np.einsum("nip,njp->nij", a, a) / 35
    assert np.allclose(g32.numpy(), ref, atol=1e-5)


def test_gram_matrix_does_not_grow_with_size():
    torch.manual_seed(0)
    small = torch.rand(1, 4, 16, 16)
    big = small.repeat_interleave(4, -1).repeat_interleave(4, -2)  # same statistics, 16x the positions
    assert torch.allclose(gram_matrix(small), gram_matrix(big), rtol=1e-5)


def test_relative_losses():
    t = torch.full((1, 3, 4, 4), 2.0)
    assert float(content_loss(t, t)) == 0.0
    assert float(relative_mse(torch.zeros_like(t), t)) == pytest.approx(1.0, rel=1e-6)
    assert float(content_loss(3 * t, t)) == pytest.approx(4.0, rel=1e-6)
    f = torch.rand(1, 6, 8, 8)
    assert float(style_loss(f, gram_matrix(f))) == pytest.approx(0.0, abs=1e-10)


def test_tv_loss():
    flat = torch.full((1, 3, 8, 8), 0.5)
    assert float(tv_loss(flat)) == 0.0
    stripes = torch.zeros(1, 3, 8, 8)
    stripes[..., ::2] = 1.0  # every horizontal neighbour differs by 1, vertical by 0
    assert float(tv_loss(stripes)) == pytest.approx(1.0)


def test_normalize_weights_errors():
    assert normalize_weights([3, 1], 2, "x") == [0.75, 0.25]
    assert normalize_weights(None, 4, "x") == [0.25] * 4
    with pytest.raises(ValueError, match="2 value.*3 item"):
        normalize_weights([1, 1], 3, "style blend")
    with pytest.raises(ValueError, match="non-negative"):
        normalize_weights([1, -1], 2, "style blend")
    with pytest.raises(ValueError, match="zero"):
        normalize_weights([0, 0], 2, "style blend")


def test_style_target_blend_is_weighted_sum():
    torch.manual_seed(0)
    fa, fb, fx = torch.rand(1, 4, 6, 6), torch.rand(1, 4, 6, 6) * 2, torch.rand(1, 4, 6, 6)
    ga, gb = {"l": gram_matrix(fa)}, {"l": gram_matrix(fb)}
    t = StyleTarget([ga, gb], [0.7, 0.3])
    la, lb = t.per_style({"l": fx})
    assert float(t({"l": fx})) == pytest.approx(0.7 * float(la) + 0.3 * float(lb), rel=1e-6)
    assert float(la) == pytest.approx(float(style_loss(fx, ga["l"])), rel=1e-6)
