"""Integration tests of the Gatys path on real photos and paintings (64-128 px, few iterations).

Sizes and iteration counts are the smallest that keep every assertion with a margin; the
margins measured at these settings are noted in each test (issue 18.5: this file was ~60 % of
the suite at 128-256 px)."""

import pytest
import torch

from atelier.io import images as img
from atelier.imaging import color
from atelier.analysis.metrics import evaluate, ssim_luminance
from atelier.methods.gatys.optimize import GatysConfig, GatysStyleTransfer, StyleTransferInterrupted, pyramid_sizes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def images(request):
    from conftest import data_file

    return {
        "content": img.load_image(data_file("content/000000000030.jpg")),
        "content2": img.load_image(data_file("content/000000000086.jpg")),
        "starry": img.load_image(data_file("styles/starry_night.jpg")),
        "scream": img.load_image(data_file("styles/the_scream.jpg")),
        "wave": img.load_image(data_file("styles/great_wave.jpg")),
    }


def run(content, styles, **kw):
    kw.setdefault("size", 128)
    kw.setdefault("iterations", 60)
    kw.setdefault("seed", 0)
    kw.setdefault("precision", "fp32")  # "auto" would pick bf16 on AMX machines: keep numbers comparable
    st = GatysStyleTransfer(GatysConfig(**kw))
    out = st.run(content, styles)
    return out, st


def test_style_loss_falls_tenfold_and_content_survives(images):
    content, style = images["content"], images["starry"]
    initial = {}
    out, st = run(content, [style], size=64, iterations=0)
    initial = st.last_losses
    # measured at 64 px, 50 iterations: style loss / initial 0.078 (0.077 at 128 px, 80
    # iterations), SSIM 0.51 against the content, 0.07 between the two photos
    out, st = run(content, [style], size=64, iterations=50)
    assert out.shape == (1, 3, 43, 64) and out.dtype == torch.float32
    assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0
    assert initial["content"] == pytest.approx(0.0, abs=1e-6)
    assert st.last_losses["style"] < initial["style"] / 10, (initial, st.last_losses)
    # The photo stays recognizable: luminance SSIM to the content. A stylized image
    # repaints textures (SSIM of the same photo against a different photo is ~0.05-0.15,
    # against itself 1.0); 0.25 means the structure is still clearly there.
    c = img.resize_to(content, *out.shape[-2:])
    other = img.resize_to(images["content2"], *out.shape[-2:])
    ssim = ssim_luminance(out, c)
    assert ssim > 0.25
    assert ssim > ssim_luminance(other, c) + 0.1


def test_losses_are_size_normalized(images):
    """Same weights at 64 px and 128 px: style/content ratios within a factor of 2
    (measured: 0.152 and 0.166 after 20 iterations, a factor of 1.09; 1.49 at 128/256 px, 40)."""
    ratios = []
    for size in (64, 128):
        _, st = run(images["content"], [images["starry"]], size=size, iterations=20)
        ratios.append(st.last_losses["style"] / st.last_losses["content"])
    assert max(ratios) / min(ratios) < 2.0, ratios


def test_two_style_blend_lands_between(images):
    content, a, b = images["content"], images["starry"], images["scream"]
    cfg = GatysConfig(size=64, precision="fp32")
    scorer = GatysStyleTransfer(cfg)
    outs = {}
    # measured at 64 px, 30 iterations: distance to A 0.056 < 0.346 < 0.606, to B 0.119 < 0.277 < 1.233
    for name, styles, blend in (("a", [a], None), ("b", [b], None), ("ab", [a, b], [0.5, 0.5])):
        outs[name], _ = run(content, styles, style_blend=blend, size=64, iterations=30)
    dist = {k: evaluate(v, content, [a, b], st=scorer)["style_distance"] for k, v in outs.items()}
    # distance to style A: A-only < blend < B-only; and the mirror for style B
    assert dist["a"][0] < dist["ab"][0] < dist["b"][0], dist
    assert dist["b"][1] < dist["ab"][1] < dist["a"][1], dist


def test_preserve_color_luminance_keeps_content_chroma(images):
    content, style = images["content"], images["wave"]
    # measured at 64 px, 20 iterations: chroma error 0.00023 kept, 141x that plain; luminance moved 0.069
    plain, _ = run(content, [style], size=64, iterations=20)
    kept, _ = run(content, [style], size=64, iterations=20, preserve_color="luminance")
    c = img.resize_to(content, *kept.shape[-2:])
    chroma = lambda x: color.rgb_to_ycbcr(x)[:, 1:]  # noqa: E731
    err_kept = (chroma(kept) - chroma(c)).abs().mean()
    err_plain = (chroma(plain) - chroma(c)).abs().mean()
    assert err_kept < 0.01, float(err_kept)
    assert err_plain > 3 * err_kept
    # and the luminance did change: the style was applied
    assert (color.luminance(kept) - color.luminance(c)).abs().mean() > 0.02


def test_preserve_color_histogram_moves_colours_towards_content(images):
    content, style = images["content"], images["wave"]
    # measured at 64 px, 20 iterations: mean colour error 0.015 with histogram matching, 0.078 without
    plain, _ = run(content, [style], size=64, iterations=20, init="noise")
    hist, _ = run(content, [style], size=64, iterations=20, init="noise", preserve_color="histogram")
    c = img.resize_to(content, *plain.shape[-2:])
    mean_err = lambda x: (x.mean(dim=(2, 3)) - c.mean(dim=(2, 3))).abs().sum()  # noqa: E731
    assert mean_err(hist) < mean_err(plain)


def test_same_seed_same_pixels(images):
    a, _ = run(images["content"], [images["starry"]], size=64, iterations=5, init="noise", seed=7)
    b, _ = run(images["content"], [images["starry"]], size=64, iterations=5, init="noise", seed=7)
    c, _ = run(images["content"], [images["starry"]], size=64, iterations=5, init="noise", seed=8)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_adam_and_style_init_and_pyramid(images):
    content, style = images["content"], images["starry"]
    _, st0 = run(content, [style], size=64, iterations=0, init="style")
    # measured at 64 px, 20 iterations: total loss 0.74 of the start
    out, st = run(content, [style], size=64, iterations=20, optimizer="adam", lr=0.03, init="style")
    assert st.last_losses["total"] < st0.last_losses["total"]
    assert pyramid_sizes(512, None) == [512]
    assert pyramid_sizes(1024, None) == [512, 1024]
    assert pyramid_sizes(2048, None) == [512, 1024, 2048]
    out, st = run(content, [style], size=128, scales=2, iterations=5)
    assert st.stats["scales"] == [64, 128] and st.stats["iterations"] == 10
    assert out.shape[-1] == 128


def test_interrupt_returns_current_image(images):
    seen = []

    def callback(p):
        seen.append(p.iteration)
        if p.iteration == 3:
            raise KeyboardInterrupt

    st = GatysStyleTransfer(GatysConfig(size=64, iterations=50, seed=0))
    with pytest.raises(StyleTransferInterrupted) as info:
        st.run(images["content"], [images["starry"]], callback=callback)
    assert seen == [1, 2, 3] and info.value.iteration == 3
    assert info.value.image.shape == (1, 3, 43, 64)


def test_invalid_config():
    for bad in (dict(size=0), dict(optimizer="sgd"), dict(preserve_color="yes"), dict(style_layers=["relu9_1"]),
                dict(style_weight=-1.0), dict(scales=0), dict(style_scale=0)):
        with pytest.raises(ValueError):
            GatysConfig(**bad).validate()


def test_bf16_run_lowers_the_style_loss(images):
    """bf16 autocast + channels_last path (L-BFGS needs a dense gradient there)."""
    # measured at 64 px, 15 iterations: style loss 0.17 of the start (0.20 at 128 px)
    _, st0 = run(images["content"], [images["starry"]], size=64, iterations=0, precision="fp32")
    out, st = run(images["content"], [images["starry"]], size=64, iterations=15, precision="bf16")
    assert st.precision == "bf16" and out.dtype == torch.float32
    assert st.last_losses["style"] < st0.last_losses["style"] / 3
