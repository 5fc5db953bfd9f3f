"""Feed-forward style networks: TransformerNet, conditional instance norm, training, resume, loading."""

import dataclasses
import hashlib
import json
import shutil
import warnings

import pytest
import torch

from atelier.io import images as img
from atelier.core.errors import InputError
from atelier.networks import ConditionalInstanceNorm2d, TransformerNet
from atelier.methods.feedforward.train import FeedForwardTrainer, TrainConfig
from atelier.training.data import ImageFolderDataset
from atelier.training.cards import load_trained


@pytest.fixture(scope="module")
def photo():
    from conftest import data_file

    # An odd size that is not a multiple of 4, from a real photo.
    return img.resize_to(img.load_image(data_file("content/000000000030.jpg")), 257, 383)


def tiny_config(tmp_path, **kw):
    from conftest import data_file

    base = dict(
        styles=[data_file("styles/starry_night.jpg")],
        content=data_file("content/000000000030.jpg").parent,
        out=tmp_path / "net.safetensors",
        image_size=64, batch_size=2, steps=8, width=0.25, lr=1e-3,
        seed=0, checkpoint_every=0, device="cpu", precision="fp32",
    )
    base.update(kw)
    return TrainConfig(**base)


def randomize_norms(net, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, ConditionalInstanceNorm2d):
                m.gamma.copy_(1 + 0.3 * torch.randn(m.gamma.shape, generator=g))
                m.beta.copy_(0.3 * torch.randn(m.beta.shape, generator=g))


# --------------------------------------------------------------------------- the network


def test_any_size_keeps_shape_and_range(photo):
    torch.manual_seed(0)
    net = TransformerNet(width=0.5).eval()
    with torch.no_grad():
        out = net(torch.cat([photo, photo.flip(3)]))
    assert out.shape == (2, 3, 257, 383) and out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    with pytest.raises(ValueError, match="at least 16"):
        net(torch.rand(1, 3, 8, 40))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        net(torch.rand(3, 32, 32))


def test_conditional_instance_norm_blend_weights(photo):
    torch.manual_seed(0)
    net = TransformerNet(num_styles=2, width=0.25).eval()
    randomize_norms(net)
    with torch.no_grad():
        by_index = net(photo, 0)
        by_weights = net(photo, [1.0, 0.0])
        by_default = net(photo)
        # A one-style network with style 0's parameters: plain (learned) instance norm.
        single = TransformerNet(num_styles=1, width=0.25).eval()
        single.load_state_dict({k: v[:1] if k.endswith(("gamma", "beta")) else v for k, v in net.state_dict().items()})
        alone = single(photo)
        other, half = net(photo, 1), net(photo, [0.5, 0.5])
        per_image = net(torch.cat([photo, photo]), torch.tensor([[1.0, 0.0], [0.0, 3.0]]))
    assert torch.equal(by_weights, by_index) and torch.equal(by_default, by_index)
    assert torch.equal(alone, by_index)
    assert (other - by_index).abs().mean() > 1e-3
    assert (half - by_index).abs().mean() > 1e-4 and (half - other).abs().mean() > 1e-4
    torch.testing.assert_close(per_image[:1], by_index, atol=1e-5, rtol=0)
    torch.testing.assert_close(per_image[1:], other, atol=1e-5, rtol=0)
    for bad, match in (([1.0], "2 weight"), ([1.0, 0.0, 0.0], "2 weight"), ([-1.0, 2.0], "non-negative"),
                       ([0.0, 0.0], "positive sum"), (2, "out of range"), ([float("nan"), 1.0], "finite")):
        with pytest.raises(ValueError, match=match):
            net(photo, bad)


# --------------------------------------------------------------------------- data


def test_dataset_skips_and_reports_a_corrupt_file(tmp_path):
    from conftest import data_file

    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    src = data_file("content/000000000030.jpg")
    shutil.copy(src, root / "sub" / "a.jpg")
    shutil.copy(data_file("content/000000000086.jpg"), root / "sub" / "b.JPG")
    (root / "broken.jpg").write_bytes(src.read_bytes()[:300])  # truncated JPEG
    (root / "notes.txt").write_text("not an image")
    ds = ImageFolderDataset(root, size=48, seed=1)
    assert len(ds) == 3 and ds.skipped == 0
    with pytest.warns(UserWarning, match="broken.jpg"):
        items = [ds[i] for i in range(len(ds))]
    assert ds.skipped == 1 and ds.skipped_files[0][0].name == "broken.jpg"
    for x in items:
        assert x.shape == (3, 48, 48) and x.dtype == torch.float32
        assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reported once, not at every use
        assert ds[0].shape == (3, 48, 48)
    # Deterministic per (seed, epoch, index); other epochs give other crops.
    again = ImageFolderDataset(root, size=48, seed=1)
    assert torch.equal(again.get(2, 0), items[2])
    assert not torch.equal(ds.get(2, 1), items[2])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no image files"):
        ImageFolderDataset(empty)


# --------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train")
    cfg = tiny_config(tmp)
    steps = []
    trainer = FeedForwardTrainer(cfg)
    card = trainer.train(callback=lambda step, losses, ips: steps.append((step, losses, ips)))
    return trainer, card, steps


def test_training_lowers_the_loss_and_writes_a_model_card(trained, photo):
    trainer, card, steps = trained
    assert [s for s, _, _ in steps] == list(range(1, 9))
    assert all(ips > 0 for _, _, ips in steps)
    totals = [losses["total"] for _, losses, _ in steps]
    first, last = sum(totals[:2]) / 2, sum(totals[-2:]) / 2
    assert last < 0.85 * first, totals

    paths = trainer.paths
    assert paths["weights"].is_file() and paths["card"].is_file() and paths["checkpoint"].is_file()
    on_disk = json.loads(paths["card"].read_text())
    assert on_disk == card
    assert card["sha256"] == hashlib.sha256(paths["weights"].read_bytes()).hexdigest()
    style = trainer.style_files[0]
    assert card["styles"] == [{"index": 0, "file": "starry_night.jpg",
                               "sha256": hashlib.sha256(style.read_bytes()).hexdigest()}]
    assert card["training_images"]["count"] == len(trainer.dataset) >= 20
    assert card["steps"] == 8 and card["hyperparameters"]["lr"] == 1e-3
    assert card["hyperparameters"]["image_size"] == 64 and card["architecture"]["width"] == 0.25
    assert set(card["final_losses"]) == {"content", "style", "tv", "total"}
    assert card["wall_seconds"] > 0 and card["device"].startswith("cpu")

    net = load_trained(paths["weights"])
    assert not net.training and net.style_names == ["starry_night.jpg"]
    with torch.no_grad():
        ours, loaded = trainer.model.eval()(photo), net(photo)
    assert loaded.shape == photo.shape
    torch.testing.assert_close(loaded, ours, atol=1e-2, rtol=0)  # float16 weights


def test_corrupt_weights_are_an_input_error(trained, tmp_path):
    trainer, _, _ = trained
    weights = tmp_path / "copy.safetensors"
    shutil.copy(trainer.paths["weights"], weights)
    shutil.copy(trainer.paths["card"], tmp_path / "copy.json")
    load_trained(weights)  # intact copy loads
    data = bytearray(weights.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 16):
        data[i] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"copy\.safetensors.*sha256"):
        load_trained(weights)
    (tmp_path / "copy.json").unlink()
    with pytest.raises(InputError, match="model card"):
        load_trained(weights)


def test_interrupt_and_resume_continue_exactly(tmp_path):
    cfg = tiny_config(tmp_path, out=tmp_path / "run", steps=4, checkpoint_every=2)
    seen = []

    def stop_at_3(step, losses, ips):
        seen.append(step)
        if step == 3:
            raise KeyboardInterrupt

    first = FeedForwardTrainer(cfg)
    with pytest.raises(KeyboardInterrupt):
        first.train(callback=stop_at_3)
    assert seen == [1, 2, 3]
    assert not first.paths["weights"].exists()  # no final export after an interrupt
    ckpt = torch.load(first.paths["checkpoint"], weights_only=True)  # no code execution needed
    assert ckpt["step"] == 3 and [h["step"] for h in ckpt["history"]] == [1, 2, 3]

    resumed = FeedForwardTrainer(dataclasses.replace(cfg, steps=6))
    seen_after = []
    card = resumed.train(callback=lambda step, losses, ips: seen_after.append(step), resume=True)
    assert seen_after == [4, 5, 6]  # continues after step 3, not from step 1
    assert resumed.step == 6 and card["steps"] == 6
    assert [h["step"] for h in resumed.history] == [1, 2, 3, 4, 5, 6]
    assert resumed.history[:3] == first.history[:3]

    # Same losses and weights as a run that was never interrupted (RNG states restored).
    straight = FeedForwardTrainer(dataclasses.replace(cfg, out=tmp_path / "straight", steps=6))
    straight.train()
    assert [h["total"] for h in resumed.history] == pytest.approx([h["total"] for h in straight.history], rel=1e-5)
    for a, b in zip(resumed.model.parameters(), straight.model.parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)

    with pytest.raises(InputError, match="batch_size"):
        FeedForwardTrainer(dataclasses.replace(cfg, batch_size=3, steps=6)).train(resume=True)


def test_two_styles_preview_and_ctrl_c(tmp_path):
    import os
    import signal

    from conftest import data_file

    cfg = tiny_config(tmp_path, styles=[data_file("styles/starry_night.jpg"), data_file("styles/the_scream.jpg")],
                      steps=3, preview_every=1)
    previews = []

    def ctrl_c_at_2(step, losses, ips):
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C: the step finishes, then the run stops

    trainer = FeedForwardTrainer(cfg)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(callback=ctrl_c_at_2, preview_callback=lambda step, im: previews.append((step, im.shape)))
    assert previews == [(1, (1, 3, 64, 128)), (2, (1, 3, 64, 128))]
    assert torch.load(trainer.paths["checkpoint"], weights_only=True)["step"] == 2
    card = FeedForwardTrainer(cfg).train(resume=True)
    assert [s["file"] for s in card["styles"]] == ["starry_night.jpg", "the_scream.jpg"]
    net = load_trained(trainer.paths["weights"])
    assert net.num_styles == 2 and net.style_names == ["starry_night.jpg", "the_scream.jpg"]
    x = torch.rand(1, 3, 40, 52)
    with torch.no_grad():
        assert net(x, [0.3, 0.7]).shape == (1, 3, 40, 52)
