"""Each colour-preservation mode's defining property, in use, on real images, for Gatys, AdaIN
and WCT (fast: small sizes, few iterations, an untrained width-0.25 AdaIN decoder):

* ``luminance``: the output's Cb/Cr are the content's; the method gets the content's luminance
  and a grey style whose luminance has the content's mean and std (Gatys et al. 2017, §5);
* ``histogram``: the style the method gets has the content's colour histogram.

Cb/Cr are computed here from the BT.601 (JPEG) formulas, not with atelier's own conversion,
so a swapped or wrong chroma channel in the library shows up."""

import pytest
import torch

from atelier.io import images as img
from atelier.encoders.vgg import get_encoder
from atelier.methods.arbitrary.adain import adain_tensor
from atelier.methods.arbitrary.model import AdaINModel
from atelier.methods.arbitrary.wct import load_wct, wct_tensor
from atelier.methods.gatys.optimize import GatysConfig, GatysStyleTransfer
from atelier.networks.decoders import AdaINDecoder
from conftest import data_file

SIZE = 64


def cbcr(x):
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    cb = 0.5 - 0.168735892 * r - 0.331264108 * g + 0.5 * b
    cr = 0.5 + 0.5 * r - 0.418687589 * g - 0.081312411 * b
    return torch.stack([cb, cr], 1)


def luma(x):
    return 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]


def quantiles(x):
    q = torch.linspace(0.02, 0.98, 25, dtype=torch.float64)
    return torch.stack([torch.quantile(x[0, c].flatten().double(), q) for c in range(3)])


@pytest.fixture(scope="module")
def content():
    return img.load_image(data_file("content/000000000030.jpg"), size=SIZE)


@pytest.fixture(scope="module")
def style_file():
    return data_file("styles/starry_night.jpg")


@pytest.fixture(scope="module")
def style(style_file):
    return img.load_image(style_file, size=SIZE)


@pytest.fixture(scope="module")
def encoder():
    return get_encoder(None, "max", "cpu")


@pytest.fixture(scope="module")
def adain_model(encoder, content):
    torch.manual_seed(0)
    m = AdaINModel(encoder, AdaINDecoder(width=0.25)).eval()
    m.calibrate(content)
    return m


@pytest.fixture(scope="module")
def wct_model():
    return load_wct(layers=("relu2_1", "relu1_1"), device="cpu", precision="fp32")  # two levels: fast


def _spy(obj, name, log):
    orig = getattr(obj, name)

    def wrapper(*args, **kw):
        log.append(args[0])
        return orig(*args, **kw)

    setattr(obj, name, wrapper)


def run_adain(model, content, style_file, mode):
    fed_content, fed_styles = [], []
    _spy(model, "encode_style", fed_styles)
    _spy(model, "forward", fed_content)
    try:
        out = adain_tensor(model, content, [style_file], preserve_color=mode, style_size=SIZE)
    finally:
        del model.encode_style, model.forward
    return out, fed_content[0], fed_styles[0]


def run_wct(model, content, style_file, mode):
    fed_content, fed_styles = [], []
    _spy(model, "encode_style", fed_styles)
    _spy(model, "forward", fed_content)
    try:
        out = wct_tensor(model, content, [style_file], preserve_color=mode, style_size=SIZE)
    finally:
        del model.encode_style, model.forward
    return out, fed_content[0], fed_styles[0]


def run_gatys(encoder, content, style, mode):
    st = GatysStyleTransfer(GatysConfig(size=48, iterations=3, seed=0, precision="fp32", preserve_color=mode),
                            encoder=encoder)
    fed = []
    prepare = st._prepare

    def spy(c, s):
        c2, s2 = prepare(c, s)
        fed.append((c2, s2))
        return c2, s2

    st._prepare = spy
    out = st.run(content, [style])
    c2, s2 = fed[0]
    return out, c2, s2[0]


def _runner(method, request):
    content = request.getfixturevalue("content")
    if method == "gatys":
        return lambda mode: run_gatys(request.getfixturevalue("encoder"), content,
                                      request.getfixturevalue("style"), mode)
    model = request.getfixturevalue(f"{method}_model")
    fn = run_adain if method == "adain" else run_wct
    return lambda mode: fn(model, content, request.getfixturevalue("style_file"), mode)


METHODS = ["gatys", "adain", "wct"]


@pytest.mark.parametrize("method", METHODS)
def test_luminance_mode_keeps_the_content_chroma_and_matches_the_style_luminance(method, request, content, style):
    out, fed_content, fed_style = _runner(method, request)("luminance")
    h, w = out.shape[-2:]
    ref = img.resize_to(content, h, w) if (h, w) != tuple(content.shape[-2:]) else content
    # chroma: the content's, wherever the recombined RGB did not have to be clamped (the
    # untrained AdaIN decoder's output is partly saturated: a quarter of its pixels are free)
    free = ((out > 0.002) & (out < 0.998)).all(1)
    assert int(free.sum()) > 400  # of 64 x 43
    diff = (cbcr(out) - cbcr(ref)).abs()
    assert float(diff[:, 0][free].max()) < 2e-3 and float(diff[:, 1][free].max()) < 2e-3
    # ... and not simply the stylized colours: the luminance did change
    assert float((luma(out) - luma(ref)).abs().mean()) > 0.01
    # the method got the content's luminance, and a grey style with the content's luminance statistics
    cy = luma(content)
    for fed in (fed_content, fed_style):
        assert fed.shape[1] == 3 and torch.equal(fed[:, 0], fed[:, 1]) and torch.equal(fed[:, 0], fed[:, 2])
    torch.testing.assert_close(fed_content[:, 0], cy, atol=1e-5, rtol=0)
    sy = fed_style[:, 0]
    raw = luma(style)
    # the raw style's statistics differ (so this checks the matching step, not the painting)
    assert abs(float(raw.mean() - cy.mean())) > 0.03 or abs(float(raw.std() - cy.std())) > 0.03
    assert float(sy.mean()) == pytest.approx(float(cy.mean()), abs=0.01)
    assert float(sy.std(unbiased=False)) == pytest.approx(float(cy.std(unbiased=False)), abs=0.01)


@pytest.mark.parametrize("method", METHODS)
def test_histogram_mode_gives_the_style_the_content_colours(method, request, content, style):
    out, fed_content, fed_style = _runner(method, request)("histogram")
    assert torch.equal(fed_content.cpu(), content)  # the content goes in as it is
    want = quantiles(content)
    assert float((quantiles(style) - want).abs().max()) > 0.1  # the painting's palette is another
    assert float((quantiles(fed_style) - want).abs().max()) < 0.02
    assert out.shape == content.shape or method == "gatys"
