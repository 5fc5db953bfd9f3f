"""Continue a GPU-trained model on the CPU, resumably (issue 12: between GPU sessions).

The GPU job (``scripts/gpu_train.sh``) brings back float16 weights but no optimizer state. This
script starts a CPU run of the same job (same configuration as in ``scripts/gpu_train.py``, on
the compact pack) from those weights, with a fresh Adam, checkpoints every ``--checkpoint-every``
steps into ``model-training/<job>/`` (git-ignored), and resumes from there whenever it is run
again. Stop it with Ctrl-C or SIGTERM at any time (a checkpoint is written); each run exports the
weights and model card, which ``scripts/install_trained_models.py`` can ship.

    python scripts/train_cpu_continue.py adain_w05 --init /tmp/gpu/adain_w05/decoder.safetensors --budget 3600
"""

from __future__ import annotations

import argparse
import pathlib
import signal
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import gpu_train  # noqa: E402  (the jobs' configurations)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("job", choices=gpu_train.JOBS)
    ap.add_argument("--init", type=pathlib.Path, help="weights (.safetensors with card) to start from on a new run")
    ap.add_argument("--out-dir", type=pathlib.Path, default=ROOT / "model-training")
    ap.add_argument("--pack", default=str(ROOT / ".gpu" / "pack"))
    ap.add_argument("--budget", type=float, default=3600.0, help="seconds to train in this run")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--checkpoint-every", type=int, default=25)
    args = ap.parse_args(argv)
    ns = argparse.Namespace(pack=args.pack, out_dir=str(args.out_dir), size=256, batch=8, precision=args.precision,
                            device="cpu", checkpoint_every=args.checkpoint_every, preview_every=100,
                            max_steps=10**7)
    cfg, cls = gpu_train._config(args.job, ns)
    trainer = cls(cfg)
    resume = trainer.paths["checkpoint"].is_file()
    if not resume:
        if args.init is None:
            print("error: no checkpoint to resume; pass --init WEIGHTS to start from trained weights", file=sys.stderr)
            return 2
        gpu_train.init_weights(trainer, args.init)
    signal.signal(signal.SIGTERM, lambda *a: signal.raise_signal(signal.SIGINT))
    last = [0.0]

    def progress(step, losses, ips):
        if time.time() - last[0] > 60:
            last[0] = time.time()
            print(f"step {step} " + " ".join(f"{k}={v:.4g}" for k, v in losses.items()) + f" {ips:.2f} img/s", flush=True)

    try:
        card = trainer.train(callback=progress, resume=resume, time_budget=args.budget)
    except KeyboardInterrupt:
        print(f"stopped at step {trainer.step}; checkpoint {trainer.paths['checkpoint']}", flush=True)
        trainer.export()
        return 130
    gpu_train.add_pack_to_card(trainer.paths["card"], pathlib.Path(args.pack))
    print(f"done: step {card['steps']}, final losses {card['final_losses']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
