"""The GPU speed benchmark (issue 25, item 5) runs end to end on the CPU at a tiny size, through the
same shell entry point the device machine uses, so it cannot rot between the sessions lent a GPU."""

import json
import os
import subprocess

from conftest import REPO


def test_gpu_bench_tiny_writes_every_figure(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="2")
    r = subprocess.run(["bash", str(REPO / "scripts" / "gpu_bench.sh"), str(tmp_path), "--tiny", "--device", "cpu",
                        "--precision", "fp32"], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = json.loads((tmp_path / "gpu_bench.json").read_text())
    assert out["tiny"] is True and out["device"] == "cpu" and out["precision"] == "fp32"
    assert out["gatys"]["iterations"] == 5 and out["gatys"]["seconds"] > 0
    for name, batches in (("feedforward", (1, 8)), ("adain", (1, 8)), ("wct", (1,))):
        assert all(out[name][f"ms_per_image_batch{b}"] > 0 for b in batches), out[name]
    assert out["sketch"]["ms_per_image"] > 0 and out["sketch"]["size"] == 64
    assert out["video"]["frames"] == 6 and out["video"]["fps"] > 0 and out["video"]["size"] == [128, 72]
