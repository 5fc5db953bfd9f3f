"""The shared configuration base (atelier.training.config, issue 23 item 5): every trainer's config
is a TrainerConfig, keeps its defaults and its checkpoint/card keys, and shipped cards still fit."""

from __future__ import annotations

import dataclasses
import json
import pathlib

import pytest

from atelier.methods.arbitrary.train import AdaINTrainConfig
from atelier.methods.arbitrary.train_decoders import DecoderTrainConfig
from atelier.methods.feedforward.train import TrainConfig
from atelier.methods.gan.train import GANTrainConfig
from atelier.methods.paint.train import PaintTrainConfig
from atelier.methods.sketch.train import ContourTrainConfig
from atelier.training.config import EncoderTrainerConfig, TrainerConfig, check_training_fields

MODELS = pathlib.Path(__file__).resolve().parents[1] / "src" / "atelier" / "models"
BASE = [f.name for f in dataclasses.fields(TrainerConfig)]

# the required inputs of each config, and its defaults of the shared fields before the base existed
# (out, image_size, batch_size, steps, lr, seed, checkpoint_every, preview_every, precision, device)
CASES = {
    TrainConfig: ({"styles": ["s.jpg"], "content": "photos"},
                  ("style-net.safetensors", 256, 4, 40_000, 1e-3, 0, 1000, 0, "auto", "auto")),
    AdaINTrainConfig: ({"content": "c", "styles": "s"},
                       ("adain-decoder.safetensors", 256, 8, 160_000, 1e-4, 0, 1000, 0, "auto", "auto")),
    DecoderTrainConfig: ({"content": "c"},
                         ("decoder-relu4_1.safetensors", 256, 8, 20_000, 1e-4, 0, 1000, 0, "auto", "auto")),
    GANTrainConfig: ({"images": "i"},
                     ("gan/generator.safetensors", 64, 32, 20_000, 2e-4, 0, 500, 500, "fp32", "auto")),
    ContourTrainConfig: ({"cache": "cache"}, ("contours.safetensors", 0, 8, 3000, 3e-3, 0, 500, 0, "fp32", "cpu")),
    PaintTrainConfig: ({"photos": "p"}, ("paint_actor.safetensors", 64, 8, 1000, 1e-3, 0, 50, 0, "fp32", "cpu")),
}
CARD_FORMATS = {"atelier-feedforward-model": TrainConfig, "atelier-adain-decoder": AdaINTrainConfig,
                "atelier-inversion-decoder": DecoderTrainConfig, "atelier-dcgan-generator": GANTrainConfig,
                "atelier-contour-net": ContourTrainConfig, "atelier-paint-actor": PaintTrainConfig}


@pytest.mark.parametrize("cls", list(CASES), ids=lambda c: c.__name__)
def test_every_trainer_config_is_a_trainer_config_with_its_own_defaults(cls):
    required, defaults = CASES[cls]
    cfg = cls(**required).validate()
    assert isinstance(cfg, TrainerConfig)
    assert [f.name for f in dataclasses.fields(cls)][:len(BASE)] == BASE  # declared once, in the base
    assert tuple(getattr(cfg, k) for k in BASE) == defaults
    d = cfg.to_dict()
    assert list(d) == [f.name for f in dataclasses.fields(cls)]  # the keys of dataclasses.asdict
    assert json.loads(json.dumps(d)) == d
    with pytest.raises(TypeError):  # keyword-only: no positional call can land on a shifted field
        cls("x")


def test_the_encoder_fields_belong_to_the_trainers_that_have_them():
    for cls in (TrainConfig, AdaINTrainConfig, DecoderTrainConfig, ContourTrainConfig):
        assert issubclass(cls, EncoderTrainerConfig)
    assert not hasattr(GANTrainConfig(), "pooling")  # the GAN has no VGG loss and never had the fields
    assert PaintTrainConfig().pooling == "max" and PaintTrainConfig().weights is None


@pytest.mark.parametrize("cls", list(CASES), ids=lambda c: c.__name__)
@pytest.mark.parametrize("field, value, message", [
    ("seed", -1, "seed must be an integer >= 0, got -1"),
    ("steps", 1.5, "steps must be an integer >= 0, got 1.5"),
    ("checkpoint_every", True, "checkpoint every must be an integer >= 0, got True"),
    ("lr", float("inf"), "lr must be a finite number > 0, got inf"),
])
def test_the_shared_checks_say_the_same_everywhere(cls, field, value, message):
    required, _ = CASES[cls]
    with pytest.raises(ValueError, match=message):
        cls(**required, **{field: value}).validate()


def test_check_training_fields_still_checks_any_object():
    cfg = TrainConfig(styles=["s.jpg"], content="photos", style_scale=0.0)
    with pytest.raises(ValueError, match="style scale must be a finite number > 0"):
        check_training_fields(cfg, non_negative=(), positive=("style_scale",))
    with pytest.raises(ValueError, match="pooling must be 'max' or 'avg'"):
        check_training_fields(dataclasses.replace(cfg, style_scale=1.0, pooling="min"), (), ())


@pytest.mark.parametrize("card", sorted(p.name if p.parent == MODELS else f"{p.parent.name}/{p.name}"
                                         for p in MODELS.rglob("*.json")))
def test_shipped_cards_fit_their_configs(card):
    card = json.loads((MODELS / card).read_text())
    if card.get("format") not in CARD_FORMATS:
        pytest.skip("not a trained-by-the-loop artefact")
    cls = CARD_FORMATS[card["format"]]
    hp = card["hyperparameters"]
    assert set(hp) <= {f.name for f in dataclasses.fields(cls)}  # every stored key is still a field
    shared = cls(**{k: hp[k] for k in BASE if k in hp})
    assert {k: v for k, v in shared.to_dict().items() if k in BASE and k in hp} == {k: hp[k] for k in BASE if k in hp}
