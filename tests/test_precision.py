"""``--precision auto`` (issue 25, item 1): the decision from injected timings, no measurement on a
CPU without bf16 instructions, the cache key and its invalidation, and the warning for an explicit
bf16 where the CPU has no bf16 instructions."""

import json
import warnings

import pytest
import torch

import atelier.encoders.precision as P


def _timer(times):
    """measure(precision) -> the next of times[precision] (a list, or an exception to raise)."""
    it = {k: iter(v) if isinstance(v, list) else v for k, v in times.items()}

    def measure(p):
        v = it[p]
        if isinstance(v, Exception):
            raise v
        return next(v)
    return measure


def test_decide_picks_the_faster_within_the_margin_and_stops_when_steady():
    # warm-up, then two agreeing rounds: bf16 at 0.5x of fp32 is chosen after 2 rounds
    r = P.decide(_timer({"fp32": [9.0, 1.00, 1.02], "bf16": [9.0, 0.50, 0.51]}))
    assert r == {"choice": "bf16", "fp32_s": 1.0, "bf16_s": 0.5, "rounds": 2, "noisy": False}
    # 0.95x is inside the noise margin: fp32
    assert P.decide(_timer({"fp32": [9.0, 1.0, 1.0], "bf16": [9.0, 0.95, 0.95]}))["choice"] == "fp32"
    # exactly at the margin: bf16 (at most BF16_MARGIN of the fp32 time)
    assert P.decide(_timer({"fp32": [9.0, 1.0, 1.0], "bf16": [9.0, P.BF16_MARGIN, P.BF16_MARGIN]}))["choice"] == "bf16"


def test_decide_repeats_until_two_measurements_agree_and_flags_noise():
    r = P.decide(_timer({"fp32": [5, 1.0, 2.0, 1.05, 1.0], "bf16": [5, 0.4, 0.9, 0.41, 0.4]}))
    assert r["rounds"] == 4 and not r["noisy"] and r["fp32_s"] == 1.0 and r["bf16_s"] == 0.4
    swing = {"fp32": [5] + [1.0, 2.0] * 5, "bf16": [5] + [0.6, 0.3] * 5}
    r = P.decide(_timer(swing))
    assert r["rounds"] == P.MAX_ROUNDS and r["noisy"] and r["choice"] == "bf16"


def test_decide_without_bf16_kernels_is_fp32():
    r = P.decide(_timer({"fp32": [5, 1.0, 1.0], "bf16": RuntimeError("no kernel")}))
    assert r["choice"] == "fp32" and r["bf16_s"] is None and r["rounds"] == 2


def test_no_bf16_instructions_means_fp32_without_measuring():
    class Exploding:
        def __call__(self, *a, **k):
            raise AssertionError("must not be measured")

    feats = {"flags": [], "capability": "AVX2", "bf16": False}
    r = P.calibrate_cpu_precision(encoder=Exploding(), features=feats)
    assert r["choice"] == "fp32" and r["fp32_s"] is None and "no bf16 instructions (AVX2)" in r["reason"]


def test_cpu_features_read_the_flags_that_matter():
    f = P.cpu_features()
    assert set(f["flags"]) <= {"avx512_bf16", "amx_bf16", "avx512f"}
    assert f["bf16"] == (("avx512_bf16" in f["flags"]) or ("amx_bf16" in f["flags"]))
    assert f["capability"] == torch.backends.cpu.get_cpu_capability()
    assert ",".join(f["flags"]) in P._cache_key() and torch.__version__ in P._cache_key()


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """An empty cache folder and process memory, and a calibration that counts its calls."""
    monkeypatch.setenv("ATELIER_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(P, "_DECISIONS", {})
    calls = []
    feats = {"flags": ["avx512_bf16", "avx512f"], "capability": "AVX512", "bf16": True}
    monkeypatch.setattr(P, "cpu_features", lambda: dict(feats))

    def fake(size=P.CALIBRATION_SIZE, encoder=None, features=None):
        calls.append(1)
        return {"choice": "bf16", "fp32_s": 1.0, "bf16_s": 0.5, "rounds": 2, "noisy": fake.noisy, "size": size,
                "cpu": P.cpu_model(), "features": P.cpu_features(), "torch": torch.__version__, "reason": "measured"}
    fake.noisy = False
    monkeypatch.setattr(P, "calibrate_cpu_precision", fake)
    return calls, feats, fake


def test_decision_is_cached_on_disk_and_invalidated_by_torch_cpu_features_and_noise(fresh, monkeypatch):
    calls, feats, fake = fresh
    assert P.resolve_precision("auto", torch.device("cpu")) == "bf16" and len(calls) == 1
    P._DECISIONS.clear()
    assert P.resolve_precision("auto", torch.device("cpu")) == "bf16" and len(calls) == 1  # read from the file
    path = P._cache_file(P._cache_key())
    rec = json.loads(path.read_text())
    path.write_text(json.dumps({**rec, "torch": "0.0"}))  # another torch: measured again
    P._DECISIONS.clear()
    P.resolve_precision("auto", torch.device("cpu"))
    assert len(calls) == 2
    feats["flags"] = ["avx512f"]  # the same model name, other instruction sets: another key, measured again
    P._DECISIONS.clear()
    P.resolve_precision("auto", torch.device("cpu"))
    assert len(calls) == 3
    # a noisy record is measured once more, and the second one is kept even if noisy
    fake.noisy = True
    path = P._cache_file(P._cache_key())
    path.unlink()
    for expected in (4, 5, 5):
        P._DECISIONS.clear()
        P.resolve_precision("auto", torch.device("cpu"))
        assert len(calls) == expected
    assert json.loads(path.read_text())["retried"] is True
    # the note says what was measured, and that it was noisy
    assert "measured bf16 0.5 s vs fp32 1 s" in P.precision_note("auto", torch.device("cpu"))
    assert "noisy" in P.precision_note("auto", torch.device("cpu"))


def test_explicit_bf16_on_a_cpu_without_bf16_instructions_warns_once(monkeypatch):
    monkeypatch.setattr(P, "_WARNED", set())
    monkeypatch.setattr(P, "cpu_features", lambda: {"flags": [], "capability": "AVX2", "bf16": False})
    with pytest.warns(RuntimeWarning, match="no bf16 instructions"):
        assert P.resolve_precision("bf16", torch.device("cpu")) == "bf16"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        P.resolve_precision("bf16", torch.device("cpu"))  # once only
        P.resolve_precision("fp32", torch.device("cpu"))
    monkeypatch.setattr(P, "cpu_features", lambda: {"flags": ["amx_bf16"], "capability": "AVX512", "bf16": True})
    assert P.bf16_warning(torch.device("cpu")) is None


def test_stylize_records_how_auto_decided_in_the_metadata_and_metrics(tmp_path, content_path, style_path):
    from typer.testing import CliRunner

    from atelier.cli import app
    from atelier.io.images import read_metadata

    out, metrics = tmp_path / "out.png", tmp_path / "m.json"
    r = CliRunner().invoke(app, ["stylize", str(content_path), "-s", str(style_path), "-o", str(out), "--size", "48",
                                 "--iterations", "2", "--precision", "auto", "--metrics", str(metrics), "-q"])
    assert r.exit_code == 0, r.output
    meta = read_metadata(out)
    rec = P._cpu_decision()
    assert meta["precision_used"] == rec["choice"] and meta["precision_choice"].startswith(f"auto: {rec['choice']}")
    assert json.loads(metrics.read_text())["precision_choice"] == meta["precision_choice"]
    r = CliRunner().invoke(app, ["stylize", str(content_path), "-s", str(style_path), "-o", str(tmp_path / "f.png"),
                                 "--size", "48", "--iterations", "2", "--precision", "fp32", "-q"])
    assert r.exit_code == 0 and "precision_choice" not in read_metadata(tmp_path / "f.png")
