"""Training-time temporal consistency (issue 13): synthetic motions, their warp, the temporal loss
and the feed-forward trainer that uses them."""

import math

import torch

from atelier.io import images as img
from atelier.methods.feedforward.train import FeedForwardTrainer, TrainConfig
from atelier.training.temporal import Motion, random_affine, temporal_loss, warp_affine
from conftest import data_file


def photo(size=64):
    return img.load_image(data_file("content/000000000030.jpg"), size=size)[..., :size, :size]


def test_identity_motion_keeps_the_image_and_every_pixel():
    x = photo()
    theta = torch.tensor([[[1.0, 0, 0], [0, 1.0, 0]]])
    moved, valid = warp_affine(x, theta)
    assert torch.allclose(moved, x, atol=1e-5) and bool((valid == 1).all())


def test_whole_pixel_shift_moves_content_and_marks_the_uncovered_border():
    x = photo()
    w = x.shape[-1]
    # output pixel (i, j) samples input (i, j + 3): the picture moves 3 px to the left
    theta = torch.tensor([[[1.0, 0, 2 * 3 / w], [0, 1.0, 0]]])
    moved, valid = warp_affine(x, theta)
    assert torch.allclose(moved[..., : w - 3], x[..., 3:], atol=1e-5)
    assert bool((valid[..., : w - 3] == 1).all()) and bool((valid[..., w - 3:] == 0).all())


def test_random_motions_stay_in_range_and_are_seeded():
    m = Motion(shift=0.05, rotate=3.0, zoom=0.04)
    a = random_affine(64, m, torch.Generator().manual_seed(1))
    b = random_affine(64, m, torch.Generator().manual_seed(1))
    assert a.shape == (64, 2, 3) and torch.equal(a, b)
    assert float(a[:, :, 2].abs().max()) <= 2 * 0.05 + 1e-6
    det = a[:, 0, 0] * a[:, 1, 1] - a[:, 0, 1] * a[:, 1, 0]  # 1 / scale^2
    assert float(det.min()) >= 1 / 1.04 ** 2 - 1e-5 and float(det.max()) <= 1 / 0.96 ** 2 + 1e-5
    angles = torch.atan2(a[:, 1, 0], a[:, 0, 0]).abs()
    assert float(angles.max()) <= math.radians(3.0) + 1e-6 and float(angles.max()) > math.radians(1.0)


def test_temporal_loss_is_zero_when_stable_and_ignores_uncovered_pixels():
    x = photo()
    theta = random_affine(1, Motion(), torch.Generator().manual_seed(0))
    moved, valid = warp_affine(x, theta)
    assert float(temporal_loss(moved, moved, valid)) == 0.0
    garbage = moved.clone()
    garbage[valid.expand_as(moved) == 0] = 1.0  # differences where the frame is uncovered do not count
    assert float(temporal_loss(garbage, moved, valid)) == 0.0
    assert float(temporal_loss(moved.flip(-1), moved, valid)) > 0.05


def test_trainer_adds_the_temporal_term_only_when_asked(tmp_path):
    common = dict(styles=[data_file("styles/udnie.jpg")], content=[data_file("content/000000000030.jpg"),
                  data_file("content/000000000086.jpg")], image_size=48, batch_size=2, steps=2, width=0.25,
                  precision="fp32", device="cpu", checkpoint_every=0)
    plain = FeedForwardTrainer(TrainConfig(out=tmp_path / "plain", **common)).train()
    moving = FeedForwardTrainer(TrainConfig(out=tmp_path / "moving", temporal_weight=5.0, **common)).train()
    assert "temporal" not in plain["final_losses"]
    t = moving["final_losses"]
    assert t["temporal"] > 0
    # the total is the weighted sum, the temporal term included
    assert abs(t["total"] - (t["content"] + 10 * t["style"] + t["tv"] + 5.0 * t["temporal"])) < 1e-3 * t["total"]
    assert moving["hyperparameters"]["motion"] == {"shift": 0.03, "rotate": 2.0, "zoom": 0.03, "noise": 0.01}
