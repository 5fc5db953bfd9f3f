"""ONNX export of TransformerNet: outputs match PyTorch on real photos at several sizes
from one file (dynamic N/H/W), style blending, metadata, and error handling."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from conftest import require_extra  # noqa: E402

require_extra("onnx")  # skipped locally without them, a failure in CI
require_extra("onnxruntime")

from PIL import Image  # noqa: E402
from skimage import data as skdata  # noqa: E402

from atelier.core.errors import InputError  # noqa: E402
from atelier.methods.feedforward.export import CARD_KEY, OnnxStylizer, export_onnx, run_onnx  # noqa: E402
from atelier.networks import TransformerNet  # noqa: E402

TOL = 1.0 / 255


def _photo(arr: np.ndarray, h: int, w: int) -> torch.Tensor:
    im = Image.fromarray(arr).convert("RGB").resize((w, h), Image.BICUBIC)
    return torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0).contiguous()


@pytest.fixture(scope="module")
def photos():
    # Odd, non-multiple-of-4 sizes exercise the reflection pad and the crop back.
    return {"astronaut": _photo(skdata.astronaut(), 257, 383), "chelsea": _photo(skdata.chelsea(), 98, 145)}


def _net(num_styles: int) -> TransformerNet:
    """A small network with non-trivial, style-dependent normalization parameters."""
    torch.manual_seed(0)
    net = TransformerNet(num_styles=num_styles, width=0.25)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith(".gamma"):
                p.copy_(1.0 + 0.5 * torch.randn_like(p))
            elif name.endswith(".beta"):
                p.copy_(0.3 * torch.randn_like(p))
    return net.eval()


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    net = _net(2)
    path = export_onnx(net, tmp_path_factory.mktemp("onnx") / "multi.onnx")
    return net, OnnxStylizer(path, threads=1)


def _torch(net, x, sw):
    with torch.no_grad():
        return net(x, sw)


def test_dynamic_sizes_match_pytorch(multi, photos):
    net, sty = multi
    for x in photos.values():
        ref, out = _torch(net, x, None), sty(x)
        assert out.dtype == torch.float32 and out.shape == x.shape
        assert (out - ref).abs().max().item() < TOL
        assert 0.0 <= out.min().item() and out.max().item() <= 1.0
    # dynamic batch with one blend per image, numpy input
    x = torch.cat([photos["chelsea"], photos["chelsea"].flip(-1)])
    sw = [[1.0, 0.0], [0.3, 0.7]]
    out = sty(x.numpy(), sw)
    assert (out - _torch(net, x, sw)).abs().max().item() < TOL


def test_style_weights_match_pytorch(multi, photos):
    net, sty = multi
    x = photos["chelsea"]
    outs = {}
    for sw in ([1.0, 0.0], [0.3, 0.7], [3.0, 7.0]):
        outs[tuple(sw)] = out = sty(x, sw)
        assert (out - _torch(net, x, sw)).abs().max().item() < TOL
    # the styles really differ, and the graph normalizes rows to sum 1
    assert (outs[(1.0, 0.0)] - outs[(0.3, 0.7)]).abs().max().item() > 0.05
    assert (outs[(3.0, 7.0)] - outs[(0.3, 0.7)]).abs().max().item() < 1e-5
    # raw session: the style_weights input is (N, 2) and rows are normalized in-graph
    raw = sty.session.run(None, {"image": x.numpy(), "style_weights": np.array([[6.0, 14.0]], np.float32)})[0]
    assert np.abs(raw - outs[(0.3, 0.7)].numpy()).max() < 1e-5
    with pytest.raises(ValueError):
        sty(x, [-1.0, 2.0])


def test_single_style_has_only_image_input(tmp_path, photos):
    net = _net(1)
    path = export_onnx(net, tmp_path / "single.onnx")
    sty = OnnxStylizer(path, threads=1)
    assert [i.name for i in sty.session.get_inputs()] == ["image"]
    assert [o.name for o in sty.session.get_outputs()] == ["stylized"]
    assert sty.num_styles == 1 and sty.card is None
    x = photos["chelsea"]
    assert (run_onnx(path, x) - _torch(net, x, None)).abs().max().item() < TOL


def test_model_card_in_metadata(tmp_path):
    import onnx
    from safetensors.torch import save_file

    from atelier.training.cards import load_trained

    # a trained model as saved on disk: weights + model card, loaded the usual way
    net = _net(2)
    weights = tmp_path / "m.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(weights))
    card = {"sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
            "architecture": {"num_styles": 2, "width": 0.25},
            "styles": [{"file": "starry_night.jpg"}, {"file": "the_scream.jpg"}]}
    (tmp_path / "m.json").write_text(json.dumps(card), encoding="utf-8")
    loaded = load_trained(weights)
    path = export_onnx(loaded, tmp_path / "m.onnx")
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(meta[CARD_KEY]) == card
    sty = OnnxStylizer(path)
    assert sty.card == card and sty.style_names == ["starry_night.jpg", "the_scream.jpg"]


def test_missing_directory_raises_and_writes_nothing(tmp_path):
    target = tmp_path / "no" / "such" / "dir" / "m.onnx"
    with pytest.raises(InputError) as e:
        export_onnx(_net(1), target)
    assert str(target) in str(e.value) and "does not exist" in str(e.value)
    assert not target.exists() and not target.parent.exists()


def test_failed_export_leaves_no_file(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("atelier.methods.feedforward.export.os.fsync", boom)
    with pytest.raises(InputError) as e:
        export_onnx(_net(1), tmp_path / "m.onnx")
    assert "m.onnx" in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_corrupt_or_missing_file_raises(tmp_path):
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"\x00\xffnot an onnx model\x12\x34" * 50)
    with pytest.raises(InputError) as e:
        run_onnx(bad, torch.rand(1, 3, 16, 16))
    assert str(bad) in str(e.value)
    with pytest.raises(InputError) as e:
        OnnxStylizer(tmp_path / "missing.onnx")
    assert "missing.onnx" in str(e.value) and "not found" in str(e.value)
