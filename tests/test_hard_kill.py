"""Resume after a hard kill (SIGKILL): no Ctrl-C handler runs, so the run can only continue
from its last *periodic* checkpoint. It must come back to that step with the same network,
Adam state and RNG states, and follow the loss curve of a run that was never killed."""

import copy
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from atelier.methods.feedforward.train import FeedForwardTrainer, TrainConfig
from conftest import REPO, data_file

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")

# The child trains, prints each step's losses as a JSON line, and waits after step 4 so that
# the parent kills it at a known point (the step-3 checkpoint is then the last periodic one).
# Its callback draws from the global generators, as a user's may: the trainer itself draws only
# from its own (building the cached VGG encoder must not draw either, or the test would depend
# on whether an earlier test in this process built it first).
CHILD = textwrap.dedent("""
    import json, random, sys, time
    import torch
    torch.set_num_threads(int(sys.argv[2]))  # the parent's, so the float sums agree
    torch.manual_seed(1234)  # the global generators as the parent's uninterrupted run starts them
    random.seed(1234)
    from atelier.methods.feedforward.train import FeedForwardTrainer, TrainConfig
    cfg = TrainConfig(**json.loads(sys.argv[1]))
    def cb(step, losses, ips):
        print(json.dumps({"step": step, **losses}), flush=True)
        torch.rand(3), random.random()  # a user's callback drawing from the global generators
        if step >= 4:
            time.sleep(120)  # killed here
    FeedForwardTrainer(cfg).train(callback=cb)
    print("finished", flush=True)
""")


def _config(out, steps):
    return dict(styles=[str(data_file("styles/starry_night.jpg"))],
                content=str(data_file("content/000000000030.jpg").parent),
                out=str(out), image_size=32, batch_size=2, steps=steps, width=0.25, lr=1e-3, seed=0,
                checkpoint_every=3, device="cpu", precision="fp32")


def test_sigkill_resumes_from_the_last_periodic_checkpoint(tmp_path):
    out = tmp_path / "killed" / "net.safetensors"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(_config(out, 6)),
                             str(torch.get_num_threads())], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    printed = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            printed.append(json.loads(line))
            if printed[-1]["step"] >= 4:
                break
        assert printed and printed[-1]["step"] == 4, (printed, proc.poll(), proc.stderr.read() if proc.poll() else "")
        os.kill(proc.pid, signal.SIGKILL)  # kill -9: no handler, no final checkpoint
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert [p["step"] for p in printed] == [1, 2, 3, 4]
    assert not out.exists()  # never exported

    # The checkpoint on disk is the periodic one of step 3 (the kill came during step 4's callback).
    ckpt = torch.load(out.with_suffix(".ckpt"), weights_only=True)
    assert ckpt["step"] == 3 and [h["step"] for h in ckpt["history"]] == [1, 2, 3]

    # An uninterrupted run, with its state recorded at step 3.
    at3 = {}
    torch.manual_seed(1234)  # as the child did: the global generators start alike in both runs
    random.seed(1234)
    straight = FeedForwardTrainer(TrainConfig(**_config(tmp_path / "straight" / "net.safetensors", 6)))

    def record(step, losses, ips):
        if step == 3:
            at3["optimizer"] = copy.deepcopy(straight.optimizer.state_dict())
            at3["model"] = copy.deepcopy(straight.model.state_dict())
            at3["generator"] = straight.generator.get_state()
            at3["torch"], at3["python"] = torch.get_rng_state(), random.getstate()
        torch.rand(3), random.random()  # the child's callback draws: so does this one, after recording

    straight.train(callback=record)

    # The killed run's steps 1-4 were those of the uninterrupted run.
    for p, h in zip(printed, straight.history):
        assert p["step"] == h["step"] and p["total"] == pytest.approx(h["total"], rel=1e-5)

    # Loading the checkpoint restores step, network, Adam state and RNG states of step 3.
    probe = FeedForwardTrainer(TrainConfig(**_config(out, 6)))
    assert probe.load_checkpoint() == 3 and probe.step == 3
    for k, v in probe.model.state_dict().items():
        torch.testing.assert_close(v, at3["model"][k], atol=1e-6, rtol=1e-5)
    got, want = probe.optimizer.state_dict(), at3["optimizer"]
    assert got["param_groups"] == want["param_groups"]
    assert got["state"].keys() == want["state"].keys()
    for i in want["state"]:
        for k in want["state"][i]:
            torch.testing.assert_close(got["state"][i][k], want["state"][i][k], atol=1e-9, rtol=1e-4)
    # every generator (the trainer's own, the global torch and Python ones) is back where the
    # uninterrupted run had it at step 3 (not only where the file says)
    assert torch.equal(probe.generator.get_state(), at3["generator"])
    assert torch.equal(torch.get_rng_state(), at3["torch"]) and random.getstate() == at3["python"]
    assert torch.equal(torch.get_rng_state(), ckpt["rng"]["torch"])
    assert not torch.equal(at3["torch"], torch.manual_seed(1234).get_state())  # the runs did draw from it

    # Resumed in this process, the run repeats step 4 and ends on the uninterrupted curve.
    resumed = FeedForwardTrainer(TrainConfig(**_config(out, 6)))
    seen = []
    card = resumed.train(callback=lambda step, losses, ips: seen.append(step), resume=True)
    assert seen == [4, 5, 6] and card["steps"] == 6
    assert [h["step"] for h in resumed.history] == [1, 2, 3, 4, 5, 6]
    assert [h["total"] for h in resumed.history] == pytest.approx([h["total"] for h in straight.history], rel=1e-5)
    assert resumed.history[3]["total"] == pytest.approx(printed[3]["total"], rel=1e-5)
    for a, b in zip(resumed.model.parameters(), straight.model.parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
