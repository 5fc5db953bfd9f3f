"""Video style transfer (issue 13): the frame-by-frame stylizer and its temporal modes, on real
Sintel frames with the shipped models; the file-to-file API and the commands are in
test_video_cli.py."""


import pytest
import torch

import atelier
from atelier.io import images as img
from atelier.imaging.flow import FlowEstimator, consistency_mask
from atelier.methods.feedforward.apply import stylize_tensor
from atelier.methods.video import TemporalConfig, VideoStylizer
from atelier.analysis.metrics import warping_error
from conftest import DATA

CLIP = DATA / "video" / "sintel_mountain_2"


def frames(n, size=192):
    return [img.load_image(p, size=size) for p in sorted(CLIP.glob("*.png"))[:n]]


@pytest.fixture(scope="module")
def net():
    return atelier.load_model("starry_night").eval()


def stylizer_of(net):
    return lambda x: stylize_tensor(net, x, precision="fp32")


def mean_warping_error(inputs, outputs):
    est = FlowEstimator("dis", "medium")
    errs = []
    for t in range(1, len(inputs)):
        a, b = _u8(inputs[t]), _u8(inputs[t - 1])
        back, fwd = est(a, b), est(b, a)
        errs.append(warping_error(outputs[t], outputs[t - 1], back, consistency_mask(back, fwd)))
    return sum(errs) / len(errs)


def _u8(x):
    return (x[0].clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()


def test_blending_cuts_flicker_and_keeps_the_style(net):
    clip = frames(8)
    per_frame = VideoStylizer(stylizer_of(net), config=TemporalConfig(mode="none"))
    blended = VideoStylizer(stylizer_of(net), config=TemporalConfig(mode="blend"))
    a = [per_frame(x) for x in clip]
    b = [blended(x) for x in clip]
    assert torch.equal(a[0], b[0])  # nothing to blend with on the first frame
    ea, eb = mean_warping_error(clip, a), mean_warping_error(clip, b)
    assert eb < 0.6 * ea, (ea, eb)
    # still the painting's style: the blended frames stay close to the per-frame ones overall
    assert float((torch.cat(a) - torch.cat(b)).abs().mean()) < 0.08
    assert 0.3 < blended.stats["reliable"] <= 1.0 and blended.stats["frames"] == 8


def test_weight_zero_blend_is_per_frame_and_colour_tracking_holds_the_means(net):
    clip = frames(3)
    zero = VideoStylizer(stylizer_of(net), config=TemporalConfig(mode="blend", temporal_weight=0.0))
    ref = stylizer_of(net)
    for x in clip:
        assert torch.allclose(zero(x), ref(x).clamp(0, 1), atol=1e-6)
    strong = VideoStylizer(stylizer_of(net), config=TemporalConfig(mode="blend", temporal_weight=1.0))
    for x in clip:
        y, s = strong(x), ref(x)
    # each channel's mean is the per-frame result's (up to the clamp to [0, 1])
    assert torch.allclose(y.mean(dim=(2, 3)), s.mean(dim=(2, 3)), atol=5e-3)


def test_long_static_shot_does_not_drift(net):
    """A still shot with sensor noise for 40 frames: blending must not darken, brighten or tint it."""
    x = frames(1, size=128)[0]
    gen = torch.Generator().manual_seed(0)
    vs = VideoStylizer(stylizer_of(net), config=TemporalConfig(mode="blend", temporal_weight=0.9))
    outs = [vs((x + 0.02 * torch.randn(x.shape, generator=gen)).clamp(0, 1)) for _ in range(40)]
    first, last = outs[1].mean(dim=(2, 3)), outs[-1].mean(dim=(2, 3))
    assert float((first - last).abs().max()) < 0.01
    # and it is not a blur that washes the strokes out: detail (local contrast) is kept
    def detail(y):
        return float((y[..., 1:, :] - y[..., :-1, :]).abs().mean())
    assert detail(outs[-1]) > 0.7 * detail(outs[1])


def test_preserve_color_keeps_the_frames_chroma(net):
    from atelier.imaging.color import rgb_to_ycbcr

    x = frames(2)[1]
    vs = VideoStylizer(stylizer_of(net), config=TemporalConfig(mode="blend", preserve_color=True))
    vs(frames(1)[0])
    y = vs(x)
    assert torch.allclose(rgb_to_ycbcr(y)[:, 1:], rgb_to_ycbcr(x)[:, 1:], atol=0.03)


@pytest.mark.slow
def test_gatys_temporal_mode_starts_from_the_warped_frame_and_is_steadier():
    from atelier.methods.gatys import GatysConfig, GatysStyleTransfer

    clip = frames(4, size=96)
    style = img.load_image(DATA / "styles" / "starry_night.jpg", size=96)
    st = GatysStyleTransfer(GatysConfig(iterations=15, precision="fp32", device="cpu", seed=0))
    seen = []

    def optimizer(x, init, extra):
        seen.append((init is not None, len(extra)))
        return st.run(x, [style], init=init, extra_losses=extra)

    plain = VideoStylizer(stylizer=lambda x: st.run(x, [style]), config=TemporalConfig(mode="none"))
    steady = VideoStylizer(optimizer=optimizer, config=TemporalConfig(mode="optimize"))
    a = [plain(x) for x in clip]
    b = [steady(x) for x in clip]
    assert seen == [(False, 0), (True, 1), (True, 1), (True, 1)]
    assert "extra" in st.last_losses  # the temporal term was in the objective
    assert mean_warping_error(clip, b) < 0.6 * mean_warping_error(clip, a)


def test_bad_configurations_are_refused(net):
    with pytest.raises(ValueError, match="mode"):
        TemporalConfig(mode="smooth").validate()
    with pytest.raises(ValueError, match="temporal_weight"):
        TemporalConfig(mode="blend", temporal_weight=1.5).validate()
    with pytest.raises(ValueError, match="long_term"):
        TemporalConfig(mode="blend", long_term=True).validate()
    with pytest.raises(ValueError, match="optimizer"):
        VideoStylizer(stylizer_of(net), config=TemporalConfig(mode="optimize"))
    vs = VideoStylizer(stylizer_of(net))
    vs(frames(1, size=64)[0])
    with pytest.raises(ValueError, match="differs"):
        vs(frames(1, size=96)[0])


def test_shipped_temporal_model_is_steady_with_no_flow_at_all(net):
    """starry_night_temporal (trained with the synthetic-motion loss) flickers far less than
    starry_night frame by frame, and takes the painting's style about as much."""
    from atelier.analysis.metrics import evaluate

    clip = frames(6)
    steady_net = atelier.load_model("starry_night_temporal").eval()
    a = [stylizer_of(net)(x) for x in clip]
    b = [stylizer_of(steady_net)(x) for x in clip]
    assert mean_warping_error(clip, b) < 0.5 * mean_warping_error(clip, a)
    style = img.load_image(DATA / "styles" / "starry_night.jpg")
    sa = evaluate(a[3], clip[3], [style])["style_loss"]
    sb = evaluate(b[3], clip[3], [style])["style_loss"]
    assert sb < 1.25 * sa, (sa, sb)


def test_long_term_loss_uses_frames_10_and_20_back_on_uncovered_pixels_only():
    """Ruder et al. 2018: J = {1, 10, 20}, each frame's mask minus what nearer frames cover. The
    optimizer here just returns its start (the warped previous frame): cheap, and enough to see
    which terms the temporal loss gets."""
    clip = frames(21, size=64)
    seen = []

    def optimizer(x, init, extra):
        seen.append(len(extra))
        return init if init is not None else x

    vs = VideoStylizer(optimizer=optimizer, config=TemporalConfig(mode="optimize", long_term=True))
    counts = []
    for x in clip:
        vs(x)
        counts.append(vs.stats.get("temporal_terms", 0))
    assert counts[1] == 1 and counts[10] == 2 and counts[20] == 3 and seen[0] == 0 and seen[20] == 1
    m1, m10, m20 = vs.last_masks
    assert float((m1 + m10 + m20).max()) <= 1.0  # disjoint: each pixel counted for one frame at most
    assert float(m1.mean()) > 0.5  # the nearest frame covers most pixels


def test_optimize_mode_does_not_drift_when_each_frame_starts_from_the_last():
    """An optimizer that starts from the warped previous result and darkens it a little (as a slow
    colour error would) must not darken the clip: the channel means keep their first-frame offset
    to the input frame's."""
    clip = frames(12, size=64)

    def darkening(x, init, extra):
        return (init if init is not None else x) * 0.97

    kept = VideoStylizer(optimizer=darkening, config=TemporalConfig(mode="optimize"))
    loose = VideoStylizer(optimizer=darkening, config=TemporalConfig(mode="optimize", track_colour=False))
    for x in clip:
        a, b = kept(x), loose(x)
    offset = lambda y, x: (y.mean(dim=(2, 3)) - x.mean(dim=(2, 3)))  # noqa: E731
    first = offset(darkening(clip[0], None, ()), clip[0])
    assert float((offset(a, clip[-1]) - first).abs().max()) < 0.005
    assert float((offset(b, clip[-1]) - first).abs().max()) > 0.05  # without it, it drifts


def test_colour_tracking_holds_each_channel_not_only_the_overall_mean():
    """Drift tracking is per channel: a stylizer whose tint changes from frame to frame (red up,
    then blue up: the overall mean barely moves) must leave each channel's mean equal to that
    frame's per-frame result (blend mode, exact: the values stay inside [0, 1]), and the optimize
    mode must keep each channel's first-frame offset when the optimizer tints one channel."""
    clip = frames(3, size=64)
    gains = [torch.tensor([0.7, 0.6, 0.5]), torch.tensor([0.5, 0.6, 0.7]), torch.tensor([0.6, 0.45, 0.75])]
    seen = []

    def tinting(x):
        s = 0.15 + 0.7 * x * gains[len(seen)].view(1, 3, 1, 1)  # inside (0.15, 0.7): no clamping
        seen.append(s)
        return s

    vs = VideoStylizer(tinting, config=TemporalConfig(mode="blend", temporal_weight=0.9))
    for x in clip:
        y = vs(x)
        s = seen[-1]
        assert 0 < float(y.min()) and float(y.max()) < 1
        assert torch.allclose(y.mean(dim=(2, 3)), s.mean(dim=(2, 3)), atol=1e-5), (y.mean(dim=(2, 3)), s.mean(dim=(2, 3)))
    assert vs.stats["reliable"] > 0.5  # the blend was applied (most pixels reliable)

    def tint_red(x, init, extra):  # each frame starts from the last and shifts red up, blue down
        base = init if init is not None else x * 0.8
        return base + torch.tensor([0.02, 0.0, -0.02]).view(1, 3, 1, 1)

    kept = VideoStylizer(optimizer=tint_red, config=TemporalConfig(mode="optimize"))
    outs = [kept(x) for x in frames(6, size=64)]
    offset = lambda y, x: (y.mean(dim=(2, 3)) - x.mean(dim=(2, 3)))  # noqa: E731
    inputs = frames(6, size=64)
    first = offset(outs[0], inputs[0])
    for y, x in zip(outs[1:], inputs[1:]):
        assert float((offset(y, x) - first).abs().max()) < 2e-3, (offset(y, x), first)
