"""The loss objects of atelier.losses (ContentLoss, TVLoss, PerceptualLoss; issue 23 item 5) equal the
functional forms bit for bit on real images, and Gatys's objective is a PerceptualLoss of them."""

from __future__ import annotations

import pytest
import torch

from conftest import data_file
from atelier.encoders.vgg import get_encoder
from atelier.io import images as img
from atelier.losses import (ContentLoss, GuidedStyleTarget, PerceptualLoss, StyleTarget, TVLoss, content_loss,
                            gram_matrix, style_loss, tv_loss)
from atelier.methods.gatys import GatysConfig, GatysStyleTransfer

CONTENT_LAYERS = ("relu3_1", "relu4_2")
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


@pytest.fixture(scope="module")
def images():
    photo = img.load_image(data_file("content/000000000030.jpg"), size=96)
    painting = img.load_image(data_file("styles/starry_night.jpg"), size=96)
    stylized = (photo + 0.1 * torch.randn(photo.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    return photo, painting, stylized


@pytest.fixture(scope="module")
def encoder():
    return get_encoder(None, "max", torch.device("cpu"))


def test_content_and_tv_objects_equal_the_functions(images, encoder):
    photo, _, x = images
    targets = encoder(photo, CONTENT_LAYERS, "fp32")
    feats = encoder(x, CONTENT_LAYERS, "fp32")
    term = ContentLoss(targets)
    assert term.layers == list(CONTENT_LAYERS)
    by_hand = [content_loss(feats[n], targets[n]) for n in CONTENT_LAYERS]
    assert all(torch.equal(a, b) for a, b in zip(term.per_layer(feats), by_hand))
    value = term(feats)
    assert value.dim() == 0 and value.dtype == torch.float32 and float(value) > 0
    assert torch.equal(value, sum(by_hand) / 2)
    assert torch.equal(ContentLoss(targets, ["relu4_2"])(feats), content_loss(feats["relu4_2"], targets["relu4_2"]))
    assert float(ContentLoss(targets)(targets)) == 0.0
    with pytest.raises(ValueError, match="missing"):
        ContentLoss(targets, ["relu5_1"])
    for wrap in (False, True):
        assert torch.equal(TVLoss(wrap=wrap)(x), tv_loss(x, wrap=wrap))
    assert TVLoss()(x).dim() == 0


def test_style_and_guided_style_targets_are_the_style_term(images, encoder):
    _, painting, x = images
    grams = {n: gram_matrix(f) for n, f in encoder(painting, STYLE_LAYERS, "fp32").items()}
    feats = encoder(x, STYLE_LAYERS, "fp32")
    expected = sum((1 / 5) * style_loss(feats[n], grams[n]) for n in STYLE_LAYERS)
    assert torch.equal(StyleTarget([grams])(feats), expected)
    whole = torch.ones(1, 1, *x.shape[-2:])  # one region over the whole image: the plain style loss
    assert torch.allclose(GuidedStyleTarget([grams], whole)(feats), expected, rtol=1e-5)


def test_perceptual_loss_sums_weighted_terms_in_order(images, encoder):
    photo, painting, x = images
    layers = set(CONTENT_LAYERS) | set(STYLE_LAYERS)
    feats = encoder(x, layers, "fp32")
    content = ContentLoss(encoder(photo, CONTENT_LAYERS, "fp32"))
    style = StyleTarget([{n: gram_matrix(f) for n, f in encoder(painting, STYLE_LAYERS, "fp32").items()}])
    parts = PerceptualLoss({"content": (2.0, content), "style": (10.0, style), "tv": (3.0, TVLoss())})(feats, x)
    assert list(parts) == ["content", "style", "tv", "total"]
    assert torch.equal(parts["total"], 2.0 * content(feats) + 10.0 * style(feats) + 3.0 * tv_loss(x))
    with pytest.raises(ValueError):
        PerceptualLoss({})
    with pytest.raises(ValueError):
        PerceptualLoss({"total": (1.0, TVLoss())})


@pytest.mark.parametrize("tileable", [False, True])
def test_gatys_objective_is_the_weighted_terms(images, encoder, tileable):
    photo, painting, x = images
    cfg = GatysConfig(size=96, content_layers=CONTENT_LAYERS, content_weight=1.5, style_weight=7.0, tv_weight=4.0,
                      tileable=tileable, precision="fp32", device="cpu")
    st = GatysStyleTransfer(cfg, encoder=encoder)
    targets = encoder(photo, CONTENT_LAYERS, "fp32")
    style = StyleTarget(st.style_grams([painting], max(photo.shape[-2:])))
    x = x.clone().requires_grad_(True)
    parts = st.losses(x, targets, style)
    assert list(parts) == ["content", "style", "tv", "total"]
    # the objective built from the loss objects by hand ...
    feats = encoder(x, set(CONTENT_LAYERS) | set(STYLE_LAYERS), "fp32")
    ours = PerceptualLoss({"content": (1.5, ContentLoss(targets)), "style": (7.0, style),
                           "tv": (4.0, TVLoss(wrap=tileable))})(feats, x)
    # ... and the functional form Gatys wrote out before the objects existed
    lc = sum(content_loss(feats[n], targets[n]) for n in CONTENT_LAYERS) / len(CONTENT_LAYERS)
    total = 1.5 * lc + 7.0 * style(feats) + 4.0 * tv_loss(x, wrap=tileable)
    for k in parts:
        assert torch.equal(parts[k], ours[k])
    assert torch.equal(parts["total"], total)
    (grad,) = torch.autograd.grad(parts["total"], x)
    (grad_by_hand,) = torch.autograd.grad(total, x)
    assert torch.equal(grad, grad_by_hand)


def test_metrics_score_with_the_same_terms(images, encoder):
    from atelier.analysis.metrics import ScoreConfig, evaluate

    photo, painting, x = images
    scores = evaluate(x, photo, [painting], ScoreConfig(content_layers=CONTENT_LAYERS, device="cpu"))
    targets = encoder(img.resize_to(photo, *x.shape[-2:]), CONTENT_LAYERS, "fp32")
    feats = encoder(x, set(CONTENT_LAYERS) | set(STYLE_LAYERS), "fp32")  # as evaluate encodes it
    assert scores["content_loss"] == sum(float(content_loss(feats[n], targets[n])) for n in CONTENT_LAYERS) / 2
    assert scores["tv_loss"] == float(tv_loss(x))
