"""GAN pieces on real images: PatchGAN / DCGAN shapes, adversarial feed-forward training (both
networks change, losses finite, exact resume, NaN stop), a DCGAN run on real paintings (samples,
exact resume, seeded sampling from the CLI), KID / diversity / memorization measures."""

from __future__ import annotations

import math

import numpy as np

import pytest
import torch
from typer.testing import CliRunner

from atelier.analysis.distribution import image_features, kid, local_features, mean_pairwise_distance, \
    sliced_wasserstein
from atelier.cli import app
from atelier.methods.feedforward.adversarial import AdversarialTrainConfig, AdversarialTrainer
from atelier.methods.gan import GANTrainConfig, GANTrainer, load_generator, sample
from atelier.networks.discriminators import MultiScaleDiscriminator, PatchDiscriminator, patch_output_size, \
    receptive_field
from atelier.networks.generators import DCGANDiscriminator, DCGANGenerator
from atelier.training.adversarial import d_accuracy, d_loss, diff_augment, g_loss, r1_penalty
from atelier.training.cards import load_trained
from atelier.training.data import list_images

from conftest import DATA, data_file

runner = CliRunner()


@pytest.fixture(scope="module")
def paintings():
    """30 real paintings of the training pack (the first of the sorted list)."""
    files = list_images(DATA / "train" / "paintings")
    assert len(files) >= 30
    return files[:30]


def _params(m):
    return [p.detach().clone() for p in m.parameters()]


def _changed(before, m):
    """Every weight tensor changed (a last-layer bias may not: with all hinge logits inside the
    margin its gradient is exactly -1 + 1 = 0)."""
    return all(not torch.equal(a, b) for a, b in zip(before, m.parameters()) if a.dim() > 1)


# -- networks ---------------------------------------------------------------------------
def test_patch_discriminator_outputs_patch_maps():
    torch.manual_seed(0)
    d = PatchDiscriminator(base=8, n_layers=3)
    x = torch.rand(2, 3, 96, 80)
    y = d(x)
    assert y.shape == (2, 1, patch_output_size(96), patch_output_size(80)) == (2, 1, 10, 8)
    assert receptive_field(3) == 70 and patch_output_size(256) == 30
    assert all(hasattr(m, "parametrizations") for m in d.modules() if isinstance(m, torch.nn.Conv2d))
    ms = MultiScaleDiscriminator(num_scales=2, base=8, out_channels=3)
    maps = ms(torch.rand(2, 3, 128, 128))
    assert [tuple(m.shape) for m in maps] == [(2, 3, 14, 14), (2, 3, 6, 6)]
    with pytest.raises(ValueError, match="at least"):
        patch_output_size(16)


def test_dcgan_shapes_and_range():
    torch.manual_seed(0)
    for size in (32, 64, 128):
        g, d = DCGANGenerator(16, 8, size), DCGANDiscriminator(8, size)
        with torch.no_grad():
            x = g(torch.randn(3, 16))
        assert x.shape == (3, 3, size, size) and 0 <= float(x.min()) and float(x.max()) <= 1
        assert d(x).shape == (3,)
    with pytest.raises(ValueError, match="one of"):
        DCGANGenerator(size=48)


def test_gan_losses_and_augment():
    big, small = torch.full((4, 1, 3, 3), 2.0), torch.full((4, 1, 3, 3), -2.0)
    assert float(d_loss(big, small, "hinge")) == 0.0  # both beyond the margin
    assert float(d_loss(small, big, "hinge")) == pytest.approx(6.0)
    assert float(g_loss(big, "hinge")) == -2.0
    assert float(d_loss(big, small, "bce")) == pytest.approx(2 * math.log1p(math.exp(-2)), rel=1e-5)
    assert d_accuracy(big, small) == (1.0, 1.0)
    x = torch.rand(4, 3, 32, 32, requires_grad=True)
    a = diff_augment(x, "color,translation,cutout", torch.Generator().manual_seed(3))
    b = diff_augment(x, "color,translation,cutout", torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.equal(a, x)
    a.sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="unknown DiffAugment"):
        diff_augment(x, "rotate", torch.Generator())
    # R1 = E ||grad_x D(x)||^2, exact for discriminators with known gradients
    r = torch.rand(2, 3, 32, 32, requires_grad=True)
    w = torch.randn(3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert float(r1_penalty((r * w).sum(dim=(1, 2, 3)), r)) == pytest.approx(float(w.pow(2).sum()), rel=1e-5)
    quad = r1_penalty(r.pow(2).sum(dim=(1, 2, 3)), r)  # grad 2x: E ||2x||^2
    assert float(quad) == pytest.approx(float((2 * r).pow(2).sum() / 2), rel=1e-5)
    (g,) = torch.autograd.grad(quad, r)  # differentiable (create_graph): d/dx of 4 |x|^2 / 2 = 4 x
    assert torch.allclose(g, 4 * r, rtol=1e-5)
    # a list of logits (multi-scale): the gradients of all of them are summed before squaring,
    # so a linear and a quadratic discriminator give E ||w + 2x||^2, not E ||w||^2 + E ||2x||^2
    both = r1_penalty([(r * w).sum(dim=(1, 2, 3)), r.pow(2).sum(dim=(1, 2, 3))], r)
    assert float(both) == pytest.approx(float((w + 2 * r).pow(2).sum(dim=(1, 2, 3)).mean()), rel=1e-5)
    patch = r1_penalty([PatchDiscriminator(8)(r), (r * w).sum(dim=(1, 2, 3))], r)  # patch maps are summed too
    assert float(patch) > 0


def test_diff_augment_ops_do_what_they_say():
    """On real paintings: colour shifts each image's brightness by at most 0.25 and keeps its
    pixels' order; translation moves the image by whole pixels with zero fill; cutout zeroes one
    square of half the side (or what of it is in the frame)."""
    from atelier.io.images import load_image

    x = torch.cat([load_image(data_file(f"styles/{n}.jpg"), size=64)[..., :32, :32] for n in ("starry_night", "the_scream")])
    assert x.shape == (2, 3, 32, 32)
    t = diff_augment(x, "translation", torch.Generator().manual_seed(1))
    for i in range(2):  # find the shift: the result is x moved by (dy, dx) with zeros coming in
        found = [(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5)
                 if torch.equal(t[i], torch.roll(x[i], (dy, dx), (1, 2)) * _inside(dy, dx))]
        assert len(found) == 1, found
    x8 = x.repeat(4, 1, 1, 1)
    c = diff_augment(x8, "cutout", torch.Generator().manual_seed(2))
    holes = (c == 0).all(1) & ~(x8 == 0).all(1)
    for i in range(8):  # one 16 x 16 square (cut where it leaves the frame), the rest untouched
        ys, xs = torch.nonzero(holes[i], as_tuple=True)
        y0, y1, x0, x1 = int(ys.min()), int(ys.max()), int(xs.min()), int(xs.max())
        assert (y1 - y0 + 1) * (x1 - x0 + 1) == len(ys) >= 64
        assert y1 - y0 + 1 == 16 or y0 == 0 or y1 == 31
        assert x1 - x0 + 1 == 16 or x0 == 0 or x1 == 31
        assert torch.equal(c[i][:, ~holes[i]], x8[i][:, ~holes[i]])
    k = diff_augment(x, "color", torch.Generator().manual_seed(3))
    assert not torch.equal(k, x) and k.shape == x.shape


def _inside(dy: int, dx: int) -> torch.Tensor:
    m = torch.ones(32, 32)
    if dy > 0:
        m[:dy] = 0
    elif dy < 0:
        m[dy:] = 0
    if dx > 0:
        m[:, :dx] = 0
    elif dx < 0:
        m[:, dx:] = 0
    return m


def test_ema_update_has_its_closed_form_after_k_steps():
    """``ema = d * ema + (1 - d) * model`` per step: with the model held at B after starting from
    A, after k steps ``ema = B + d^k (A - B)``; buffers are copied."""
    from atelier.training.adversarial import ema_update

    torch.manual_seed(0)
    model, ema = DCGANGenerator(16, 8, 32), DCGANGenerator(16, 8, 32)
    a = [p.detach().clone() for p in ema.parameters()]
    b = [p.detach().clone() for p in model.parameters()]
    for buf in model.buffers():
        if buf.is_floating_point():
            buf.fill_(0.25)
    d, k = 0.9, 7
    for _ in range(k):
        ema_update(ema, model, d)
    for pa, pb, pe in zip(a, b, ema.parameters()):
        assert torch.allclose(pe, pb + d ** k * (pa - pb), atol=1e-6)
    assert all(torch.equal(x, y) for x, y in zip(ema.buffers(), model.buffers()))
    assert not torch.allclose(next(ema.parameters()), b[0])  # still far from the model after 7 steps of 0.9


def test_gan_training_step_augments_both_batches_and_averages_the_generator(tmp_path, paintings):
    """One DCGAN step on real paintings: every batch the discriminator sees (real and fake, for
    its own update and the generator's) went through DiffAugment (cutout leaves a zero square of
    at least 8 x 8 in each image), and the EMA generator after the step is
    ``d * initial + (1 - d) * trained``."""
    (tmp_path / "run").mkdir()
    t = GANTrainer(_gan_config(tmp_path, paintings, 1))
    start = [p.detach().clone() for p in t.model.parameters()]
    seen = []
    t.discriminator.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    t.train()
    assert len(seen) == 3  # real and fake for the discriminator, fake for the generator
    for batch in seen:
        assert batch.shape == (4, 3, 32, 32)
        zero_pixels = (batch == 0).all(1).flatten(1).sum(1)
        assert (zero_pixels >= 64).all(), zero_pixels
    d = t.config.ema_decay
    for p0, p1, pe in zip(start, t.model.parameters(), t.ema.parameters()):
        assert torch.allclose(pe, d * p0 + (1 - d) * p1, atol=1e-6)
    assert any(not torch.equal(p0, p1) for p0, p1 in zip(start, t.model.parameters()))


# -- adversarial feed-forward training ----------------------------------------------------
def _adv_config(tmp_path, name, steps, **kw):
    return AdversarialTrainConfig(styles=[data_file("styles/starry_night.jpg")], content=DATA / "content", out=tmp_path / name,
                                  steps=steps, image_size=64, batch_size=2, width=0.25, d_width=8, precision="fp32",
                                  checkpoint_every=1, seed=3, **kw)


def test_adversarial_step_changes_both_networks_and_resumes(tmp_path):
    t = AdversarialTrainer(_adv_config(tmp_path, "a", 1, r1=1.0, d_scales=2, patch_size=64))
    g0, d0 = _params(t.model), _params(t.discriminator)
    card = t.train()
    assert _changed(g0, t.model) and _changed(d0, t.discriminator)
    h = t.history[-1]
    assert all(math.isfinite(v) for v in h.values())
    assert h["d"] > 0 and h["r1"] > 0 and 0 <= h["d_real_acc"] <= 1 and 0 <= h["d_fake_acc"] <= 1
    assert card["format"] == "atelier-feedforward-model" and card["adversarial"]["discriminator"]["scales"] == 2
    net = load_trained(tmp_path / "a.safetensors")  # what 'atelier apply' loads: unchanged
    assert net(torch.rand(1, 3, 64, 64), 0).shape == (1, 3, 64, 64)
    # exact resume: 2 steps in one run == 1 step + resume 1 (discriminator included)
    straight = AdversarialTrainer(_adv_config(tmp_path, "b", 2, r1=1.0, d_scales=2, patch_size=64))
    straight.train()
    t2 = AdversarialTrainer(_adv_config(tmp_path, "a", 2, r1=1.0, d_scales=2, patch_size=64))
    t2.train(resume=True)
    for m1, m2 in ((straight.model, t2.model), (straight.discriminator, t2.discriminator)):
        for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
            assert torch.equal(a, b)
    assert straight.history[-1] == t2.history[-1]


def test_adversarial_warmup_and_nan_stop(tmp_path):
    t = AdversarialTrainer(_adv_config(tmp_path, "w", 1, adv_warmup=1))
    d0 = _params(t.discriminator)
    t.train()
    assert not _changed(d0, t.discriminator) and t.history[-1]["adv"] == 0.0  # plain perceptual step
    ckpt = torch.load(tmp_path / "w.ckpt", weights_only=True)
    with torch.no_grad():  # a diverged discriminator
        next(t.discriminator.parameters()).fill_(float("nan"))
    t.config.steps = 2
    g_before = _params(t.model)
    with pytest.raises(FloatingPointError, match=r"the d loss became nan at step 2.*checkpoint of step 1 is kept"):
        t.train()
    assert all(torch.equal(a, b) for a, b in zip(g_before, t.model.parameters()))  # nothing updated
    kept = torch.load(tmp_path / "w.ckpt", weights_only=True)
    assert kept["step"] == 1 and all(torch.isfinite(v).all() for v in kept["discriminator"].values()
                                     if v.is_floating_point())
    assert all(torch.equal(kept["model"][k], v) for k, v in ckpt["model"].items())


def test_cli_adversarial_options_need_the_flag(tmp_path):
    r = runner.invoke(app, ["train", "-s", str(data_file("styles/starry_night.jpg")), "-c", str(DATA / "content"),
                            "-o", str(tmp_path / "m"), "--steps", "1", "--adv-weight", "0.5"])
    assert r.exit_code == 2 and "--adv-weight applies only with --adversarial" in r.output
    assert not list(tmp_path.iterdir())
    r = runner.invoke(app, ["gan", "train", str(DATA / "train" / "paintings"), "-o", str(tmp_path / "run"),
                            "--gan-loss", "wasserstein"])
    assert r.exit_code == 2 and "gan loss must be one of" in r.output and not (tmp_path / "run").exists()


# -- DCGAN ------------------------------------------------------------------------------
def _gan_config(tmp_path, files, steps):
    return GANTrainConfig(images=files, out=tmp_path / "run" / "generator", steps=steps, image_size=32, batch_size=4,
                          width=8, d_width=8, z_dim=16, checkpoint_every=2, preview_every=2, r1=0.5, seed=1)


@pytest.mark.slow
def test_dcgan_run_writes_samples_and_resumes_exactly(tmp_path, paintings):
    (tmp_path / "run").mkdir()
    a = GANTrainer(_gan_config(tmp_path, paintings, 2))
    g0, d0 = _params(a.model), _params(a.discriminator)
    a.train()
    assert _changed(g0, a.model) and _changed(d0, a.discriminator)
    assert len(a.held_out) == 3 and len(a.dataset) == 27
    b = GANTrainer(_gan_config(tmp_path, paintings, 4))
    card = b.train(resume=True)
    assert [p.name for p in sorted((tmp_path / "run" / "samples").iterdir())] == ["step-000002.png", "step-000004.png"]
    (tmp_path / "s").mkdir()
    c = GANTrainer(_gan_config(tmp_path / "s", paintings, 4))
    c.train()
    for m1, m2 in ((b.model, c.model), (b.discriminator, c.discriminator), (b.ema, c.ema)):
        for x, y in zip(m1.state_dict().values(), m2.state_dict().values()):
            assert torch.equal(x, y)
    assert b.history == c.history and all(math.isfinite(v) for h in b.history for v in h.values())
    assert card["format"] == "atelier-dcgan-generator" and card["steps"] == 4
    g = load_generator(tmp_path / "run")
    assert torch.equal(sample(g, 5, seed=7), sample(g, 5, seed=7)) and not torch.equal(sample(g, 5, 7), sample(g, 5, 8))
    outs = []
    for name in ("x.png", "y.png"):
        r = runner.invoke(app, ["gan", "sample", str(tmp_path / "run"), "-o", str(tmp_path / name), "-n", "9",
                                "--seed", "4", "--truncation", "1.0"])
        assert r.exit_code == 0, r.output
        outs.append((tmp_path / name).read_bytes())
    assert outs[0] == outs[1]
    r = runner.invoke(app, ["gan", "sample", str(tmp_path / "run"), "-o", str(tmp_path / "w.gif")])
    assert r.exit_code == 2 and "--interpolate" in r.output and not (tmp_path / "w.gif").exists()
    r = runner.invoke(app, ["gan", "sample", str(tmp_path / "run"), "-o", str(tmp_path / "w.gif"), "--interpolate",
                            "--keys", "3", "--steps", "2"])
    assert r.exit_code == 0 and (tmp_path / "w.gif").stat().st_size > 0
    # the measures of 'atelier gan evaluate' on this (untrained) generator: it fails the diversity gate
    from atelier.analysis.gan_eval import evaluate_generator

    report, grid = evaluate_generator(tmp_path / "run", images=paintings, n=16, feature_size=64)
    assert report["training_images"] == 27 and report["held_out_images"] == 3
    assert report["kid_train"]["mean"] > 10 * abs(report["kid_real_baseline"]["mean"])
    assert report["diversity"]["ratio"] < 0.8 and not report["passed"]
    assert grid.shape[:2] == (1, 3) and grid.shape[-1] > grid.shape[-2]  # 4 pairs per row, 4 rows


def test_resize_convolution_generator_and_minibatch_std(tmp_path, paintings):
    """--upsample resize (Odena et al. 2016) and --d-mbstd: shapes, no transposed convolution after
    the 4 x 4 projection, a training step that changes both networks, the card's field, loading
    back, and an old card without the field loading as deconv."""
    import json

    from atelier.networks.generators import MinibatchStd

    torch.manual_seed(0)
    for size in (32, 64):
        g = DCGANGenerator(16, 8, size, upsample="resize")
        with torch.no_grad():
            x = g(torch.randn(2, 16))
        assert x.shape == (2, 3, size, size) and 0 <= float(x.min()) and float(x.max()) <= 1
        assert sum(isinstance(m, torch.nn.ConvTranspose2d) for m in g.modules()) == 1
        assert sum(isinstance(m, torch.nn.Upsample) for m in g.modules()) == int(math.log2(size)) - 2
    with pytest.raises(ValueError, match="upsample"):
        DCGANGenerator(16, 8, 32, upsample="pixelshuffle")
    y = MinibatchStd()(torch.stack([torch.zeros(4, 2, 2), torch.full((4, 2, 2), 2.0)]))
    assert y.shape == (2, 5, 2, 2) and torch.allclose(y[:, 4], torch.ones(2, 2, 2), atol=1e-3)
    assert torch.equal(MinibatchStd()(torch.ones(1, 4, 2, 2))[:, 4], torch.zeros(1, 2, 2))
    d = DCGANDiscriminator(8, 32, spectral=False, mbstd=True)
    assert d(torch.rand(3, 3, 32, 32)).shape == (3,)

    cfg = _gan_config(tmp_path, paintings, 1)
    cfg.upsample, cfg.d_mbstd, cfg.preview_every = "resize", True, 0
    (tmp_path / "run").mkdir()
    t = GANTrainer(cfg)
    g0, d0 = _params(t.model), _params(t.discriminator)
    card = t.train()
    assert _changed(g0, t.model) and _changed(d0, t.discriminator)
    assert card["architecture"]["upsample"] == "resize" and card["architecture"]["discriminator"]["mbstd"] is True
    g = load_generator(tmp_path / "run")
    assert g.upsample == "resize" and sample(g, 3, seed=2).shape == (3, 3, 32, 32)
    # a model card written before the option existed: transposed convolutions
    gd = DCGANGenerator(16, 8, 32)
    from safetensors.torch import save_file
    import hashlib

    w = tmp_path / "old.safetensors"
    save_file({k: v.half() if v.is_floating_point() else v for k, v in gd.state_dict().items()}, str(w))
    old = json.loads((tmp_path / "run" / "generator.json").read_text())
    old["architecture"].pop("upsample")
    old["sha256"] = hashlib.sha256(w.read_bytes()).hexdigest()
    old["weights_file"] = w.name
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert load_generator(w).upsample == "deconv"


# -- measures -----------------------------------------------------------------------------
def test_kid_diversity_and_swd_on_real_paintings(paintings):
    from atelier.analysis.gan_eval import real_images

    real = real_images(paintings, 64)
    f = image_features(real, size=64)
    noise = image_features(torch.rand(30, 3, 64, 64, generator=torch.Generator().manual_seed(0)), size=64)
    same, _ = kid(f, f, subsets=1, subset_size=30)  # the set against itself: slightly negative, O(1/m)
    halves, _ = kid(f[:15], f[15:])  # two halves of one collection
    far, _ = kid(f, noise, subsets=1, subset_size=30)
    assert far > 1.0 and abs(same) < 0.05 * far and abs(halves) < 0.02 * far
    assert mean_pairwise_distance(f) > 2 * mean_pairwise_distance(noise)  # noise images all look alike to VGG
    a = local_features(real[:4], "relu2_1", max_count=2000)
    assert sliced_wasserstein(a, a) == 0.0
    assert sliced_wasserstein(a, local_features(real[4:8], "relu2_1", max_count=1500)) > 0
    assert sliced_wasserstein(a, local_features(torch.rand(4, 3, 64, 64), "relu2_1")) > \
        sliced_wasserstein(a, local_features(real[4:8], "relu2_1"))


def test_kid_distance_and_neighbours_by_hand():
    """KID, pairwise distance, nearest neighbours and the sliced Wasserstein distance on small
    hand-made sets whose values are known exactly."""
    x = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([[2.0, 0.0], [0.0, -1.0]], dtype=torch.float64)

    def k(a, b):
        return (float(a @ b) / 2 + 1) ** 3

    m, n = len(x), len(y)
    want = (sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
            + sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
            - 2 * sum(k(a, b) for a in x for b in y) / (m * n))
    # subsets of all rows: every subset is the whole set (in some order), so the mean is exact
    mean, std = kid(x[:2], y, subsets=3, subset_size=5)
    want2 = (2 * k(x[0], x[1]) / 2 + 2 * k(y[0], y[1]) / 2 - 2 * sum(k(a, b) for a in x[:2] for b in y) / 4)
    assert mean == pytest.approx(want2, rel=1e-12) and std == pytest.approx(0.0, abs=1e-12)
    assert kid(x, x[[2, 0, 1]], subsets=1, subset_size=3)[0] == pytest.approx(kid(x, x, subsets=1)[0], rel=1e-12)
    from atelier.analysis.distribution import _poly_mmd2

    assert _poly_mmd2(x, y) == pytest.approx(want, rel=1e-12)
    many = kid(torch.randn(40, 2, generator=torch.Generator().manual_seed(0)), y.repeat(10, 1), subsets=4, subset_size=5)
    assert many[1] > 0  # subsets of 5 out of 40 differ
    with pytest.raises(ValueError, match="at least 2"):
        kid(x[:1], y)
    with pytest.raises(ValueError, match="feature sets"):
        kid(x, y[:, :1])
    pts = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0]])
    assert mean_pairwise_distance(pts) == pytest.approx(4.0)  # (5 + 4 + 3) / 3
    with pytest.raises(ValueError, match="at least 2"):
        mean_pairwise_distance(pts[:1])
    from atelier.analysis.distribution import nearest

    idx, dist = nearest(torch.tensor([[0.0, 3.9], [2.9, 4.0], [10.0, 0.0]]), pts)
    assert idx.tolist() == [2, 1, 1] and dist.tolist() == pytest.approx([0.1, 0.1, float(np.hypot(7, 4))])
    # sliced Wasserstein: in 1-D every direction is +-1, so a shift by 1.5 is at distance 1.5
    a = torch.linspace(0, 1, 100, dtype=torch.float64)[:, None]
    assert sliced_wasserstein(a, a + 1.5) == pytest.approx(1.5, rel=1e-9)
    b = torch.linspace(0, 1, 40, dtype=torch.float64)[:, None] + 2.0  # another count: by quantiles
    assert sliced_wasserstein(a, b) == pytest.approx(2.0, rel=1e-9)
    a2 = torch.randn(200, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    shift = torch.tensor([3.0, 0.0, 0.0], dtype=torch.float64)
    swd = sliced_wasserstein(a2, a2 + shift, projections=4000)
    assert swd == pytest.approx(3.0 / 3 ** 0.5, rel=0.05)  # E[(s.u)^2] = |s|^2 / D over unit directions
    with pytest.raises(ValueError, match="point sets"):
        sliced_wasserstein(a2, a)


def test_image_and_local_features_on_real_paintings(paintings):
    """Image features are each layer's spatial mean, L2-normalized and scaled by the square root
    of its width (so each block has norm sqrt(width)); resizing and batching change nothing;
    local features are rows of the layer's feature map."""
    from atelier.encoders.vgg import get_encoder
    from atelier.io.images import load_image, resize_to

    enc = get_encoder()
    x = torch.cat([resize_to(load_image(p, size=80), 64, 64) for p in paintings[:3]])
    f = image_features(x, enc, size=64)
    assert f.shape == (3, 1280) and f.dtype == torch.float64
    feats = enc(x, ["relu3_1", "relu4_1", "relu5_1"])
    start = 0
    for name, width in (("relu3_1", 256), ("relu4_1", 512), ("relu5_1", 512)):
        v = feats[name].double().mean(dim=(2, 3))
        assert torch.allclose(f[:, start:start + width], v / v.norm(dim=1, keepdim=True) * width ** 0.5, atol=1e-6)
        start += width
    assert torch.allclose(image_features(x, enc, size=64, batch=2), f, atol=1e-4)  # float32 convs per batch
    big = torch.nn.functional.interpolate(x, size=(96, 96), mode="bilinear", align_corners=False)
    assert not torch.allclose(image_features(big, enc, size=64), f, atol=1e-3)  # resized first, then encoded
    with pytest.raises(ValueError, match="shape"):
        image_features(x[:, :1], enc)
    with pytest.raises(ValueError, match="32"):
        image_features(x, enc, size=16)
    loc = local_features(x[:1], "relu2_1", enc, max_count=500, seed=3)
    full = enc(x[:1], ["relu2_1"])["relu2_1"][0].flatten(1).T
    assert loc.shape == (500, 128) and full.shape == (32 * 32, 128)
    d = torch.cdist(loc.double(), full.double(), compute_mode="donot_use_mm_for_euclid_dist").min(dim=1).values
    assert float(d.max()) < 1e-4  # every row is a position's feature vector
    assert len({tuple(r.tolist()) for r in loc}) == 500  # drawn without replacement
    assert local_features(x[:1], "relu2_1", enc, max_count=5000).shape == (1024, 128)  # all of them


def test_gpu_job_trains_a_dcgan(tmp_path, paintings):
    """The ``gan64`` recipe (atelier.api.recipes, run by scripts/gpu_train.py) builds a DCGAN
    trainer on the pack's paintings."""
    from atelier.api import recipes

    pack = tmp_path / "pack"
    (pack / "paintings").mkdir(parents=True)
    for f in paintings[:6]:
        (pack / "paintings" / f.name).write_bytes(f.read_bytes())
    settings = recipes.RecipeSettings(size=64, batch=2, precision="fp32", device="cpu", steps=1, checkpoint_every=0,
                                      preview_every=1, smoke=True)
    cfg, cls = recipes.recipe_config("gan64", pack, tmp_path / "out", settings)
    assert cls is GANTrainer and cfg.image_size == 32 and "gan64" in recipes.JOBS and recipes.SHARES["gan64"] > 0
    (tmp_path / "out" / "gan64").mkdir(parents=True)
    card = cls(cfg).train()
    assert card["steps"] == 1 and (tmp_path / "out" / "gan64" / "samples" / "step-000001.png").is_file()


def test_shipped_generator_loads_and_samples(tmp_path):
    """The shipped ``paintings32`` generator (a resize-convolution DCGAN trained on the pack's
    paintings, see docs/benchmarks.md) loads by name, verified, and gives varied, seeded samples."""
    from atelier.methods.gan import shipped_generators

    assert "paintings32" in shipped_generators()
    g = load_generator("paintings32")
    assert (g.size, g.upsample, g.card["format"]) == (32, "resize", "atelier-dcgan-generator")
    x = sample(g, 16, seed=0)
    assert x.shape == (16, 3, 32, 32) and 0 <= float(x.min()) and float(x.max()) <= 1
    assert torch.equal(x, sample(g, 16, seed=0))
    spread = (x[:, None] - x[None]).abs().mean(dim=(2, 3, 4))  # mean absolute pixel difference between samples
    assert float(spread[~torch.eye(16, dtype=torch.bool)].min()) > 0.02  # no two samples alike
    r = runner.invoke(app, ["gan", "sample", "paintings32", "-n", "4", "-o", str(tmp_path / "g.png")])
    assert r.exit_code == 0 and (tmp_path / "g.png").stat().st_size > 0, r.output


def test_kid_and_swd_defaults_edges_and_quantiles_by_hand():
    """The documented defaults (KID: 50 subsets of 100, seed 0; SWD: 256 directions, seed 0,
    256 quantiles), the edges of the checks (2 rows is enough; 1-D input is refused), and a
    quantile comparison that is not a plain shift: 1-D sets {0, 1, 2} and {0, 1} have quantile
    functions 2q and q, so SWD = sqrt(mean over the 256 grid points of q^2) = sqrt(511 / 1530)."""
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(130, 4, generator=g, dtype=torch.float64), torch.randn(120, 4, generator=g, dtype=torch.float64)
    b[:, 0] += 1.0
    default = kid(a, b)
    assert default == kid(a, b, subsets=50, subset_size=100, seed=0)
    assert default[0] != kid(a, b, seed=1)[0] and default[0] != kid(a, b, subset_size=101)[0]
    assert default[0] != kid(a, b, subsets=51)[0] and default[0] > 0
    assert kid(a, b, subsets=2)[1] > 0 and kid(a, b, subsets=1)[1] == 0.0
    assert kid(a, b[:5]) == kid(a, b[:5], subset_size=5)  # subsets as large as the smaller set
    with pytest.raises(ValueError, match=r"^KID needs at least 2 vectors in each set$"):
        kid(a, b[:1])
    two = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    assert mean_pairwise_distance(two) == pytest.approx(5.0)
    with pytest.raises(ValueError, match=r"^a pairwise distance needs at least 2 vectors$"):
        mean_pairwise_distance(two[:1])
    assert kid(two, two + 1.0, subsets=1)[0] == pytest.approx(kid(two, two + 1.0, subsets=1, subset_size=2)[0])
    for bad in ((a[0], b), (a, b[0])):
        with pytest.raises(ValueError, match="feature sets"):
            kid(*bad)
        with pytest.raises(ValueError, match="point sets"):
            sliced_wasserstein(*bad)
    swd = sliced_wasserstein(a, b)
    assert swd == sliced_wasserstein(a, b, projections=256, seed=0)
    assert swd != sliced_wasserstein(a, b, projections=257) and swd != sliced_wasserstein(a, b, seed=1)
    three = torch.tensor([[0.0], [1.0], [2.0]], dtype=torch.float64)
    assert sliced_wasserstein(three, three[:2]) == pytest.approx(math.sqrt(511 / 1530), rel=1e-12)
    assert sliced_wasserstein(three[:2], three) == pytest.approx(math.sqrt(511 / 1530), rel=1e-12)
