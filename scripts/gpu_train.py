"""One-shot GPU training job (issue 12): train every learned model within a wall-clock budget.

A GPU is lent now and then for about 15 minutes, at most 10 per command. This script turns one
such command into trained models: it runs one process per model, ``--parallel`` (3) at a time on
the one GPU, each with its share of the budget (:data:`atelier.api.recipes.SHARES`) as its deadline; each stops
cleanly there (:meth:`BaseTrainer.train` ``time_budget``) and exports what it has (float16
safetensors + model card naming the training pack + preview). Then the GPU speed figures for
the README are measured, and ``pack`` bins everything into at most 8 tar files of <= 15 MiB for
the trip back.

Models (``--jobs``; default all); the recipes themselves are library code,
:mod:`atelier.api.recipes` (``atelier train-recipe JOB`` trains one on any machine):

* ``adain``, ``adain_w05``: AdaIN decoders of width 1.0 and 0.5 (Huang & Belongie 2017: 256 px
  crops, batch 8, Adam 1e-4 with the reference decay, style weight 10), with a quarter of each
  batch in the reconstruction case (style = the photo itself, plus a pixel loss), on the pack's
  photos and paintings;
* ``wct_relu1_1`` ... ``wct_relu5_1``: inversion decoders for WCT (Li et al. 2017: pixel +
  feature reconstruction) on photos and paintings; relu5_1 at width 0.5 (size);
* ``ff_starry_night``, ``ff_great_wave``, ``ff_the_scream``, ``ff_udnie``: per-style
  feed-forward networks (Johnson et al. 2016, width 0.5 as shipped), and ``ff_multi10``: all ten
  evaluation paintings in one network (conditional instance norm, Dumoulin et al. 2017);
* ``gan64``: a DCGAN (Radford et al. 2016) at 64 x 64 on the pack's paintings, width 64, batch 64,
  DiffAugment and a generator EMA (issue 14; ``atelier gan train``), every 10th painting held out
  for ``atelier gan evaluate``.

Data: the compact pack of ``scripts/make_training_pack.py`` (``--pack``, default ``.gpu/pack``),
decoded once into GPU memory by each process (:class:`InMemoryImageDataset`). The evaluation
photos (``shared/data/content``, skimage) are never used; the ten evaluation paintings only by
the feed-forward models, each for its own style.

    scripts/gpu_train.sh OUT_DIR                       # on the GPU machine: train, then speed
    python scripts/gpu_train.py pack OUT_DIR DEST      # tar files of <= 15 MiB into DEST
    python scripts/gpu_train.py run OUT_DIR --smoke --parallel 2   # CPU check: 64 px, 2 steps

Outputs in OUT_DIR: ``<job>/<name>.safetensors|.json|.preview.png``, ``<job>/history.csv``
(every 10th step's losses), ``logs/<job>.log``, ``speed.json``, ``summary.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import pathlib
import subprocess
import sys
import tarfile
import time
import traceback

ROOT = pathlib.Path(__file__).resolve().parents[1]
from atelier.api.recipes import (JOBS, SHIPPED, RecipeSettings, add_pack_to_card, init_weights, plan, recipe_config,
                                 shipped_models_dir)

#: Seconds kept after a worker's training budget for its export and exit.
EXPORT_MARGIN = 15.0


def _settings(args) -> RecipeSettings:
    return RecipeSettings(size=args.size, batch=args.batch, precision=args.precision, device=args.device,
                          steps=args.max_steps, checkpoint_every=args.checkpoint_every,
                          preview_every=args.preview_every, smoke=bool(getattr(args, "smoke", False)))


def worker(args) -> int:
    """Train one job until ``args.deadline`` (epoch seconds) or ``max_steps``; export; write history."""
    import torch

    torch.set_num_threads(max(1, args.threads))
    if torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    job = args.job
    cfg, cls = recipe_config(job, args.pack, args.out_dir, _settings(args))
    t0 = time.time()
    trainer = cls(cfg)
    print(f"[{job}] data and network ready in {time.time() - t0:.1f} s on {trainer.device} ({trainer.precision}); "
          f"{len(trainer.dataset)} images", flush=True)
    budget = max(1.0, args.deadline - time.time() - EXPORT_MARGIN)
    last = [time.time()]

    def progress(step, losses, ips):
        if time.time() - last[0] >= 30 or step == 1:
            last[0] = time.time()
            print(f"[{job}] step {step} " + " ".join(f"{k}={v:.4g}" for k, v in losses.items())
                  + f" {ips:.1f} img/s", flush=True)

    resume = args.resume and trainer.paths["checkpoint"].is_file()
    if args.init_shipped and not resume and job in SHIPPED:
        init_weights(trainer, shipped_models_dir() / SHIPPED[job])
        print(f"[{job}] starting from the shipped {SHIPPED[job]}", flush=True)
    card = trainer.train(callback=progress, time_budget=budget, resume=resume)
    add_pack_to_card(trainer.paths["card"], pathlib.Path(args.pack))
    keys = list(trainer.LOSS_KEYS)
    with open(pathlib.Path(args.out_dir) / job / "history.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", *keys])
        for h in trainer.history:
            if h["step"] % 10 == 0 or h["step"] == len(trainer.history):
                w.writerow([h["step"], *(f"{h.get(k, 0.0):.6g}" for k in keys)])
    print(f"[{job}] done: {card['steps']} steps in {card['wall_seconds']:.0f} s, stopped by {card['stopped_by']}, "
          f"final losses {json.dumps({k: round(v, 4) for k, v in card['final_losses'].items()})}", flush=True)
    return 0


def speed(args) -> dict:
    """GPU (or CPU) speed figures: Gatys iterations at 512 px, feed-forward and AdaIN ms per image."""
    import torch

    from atelier.encoders.vgg import get_encoder
    from atelier.networks.decoders import AdaINDecoder
    from atelier.methods.arbitrary.model import AdaINModel
    from atelier.networks import TransformerNet
    from atelier.methods.gatys.optimize import GatysConfig, GatysStyleTransfer
    from atelier.core.runtime import resolve_device
    from atelier.encoders.precision import resolve_precision

    dev = resolve_device(args.device)
    prec = resolve_precision(args.precision, dev)
    size, iters = (64, 5) if args.smoke else (512, 500)
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    from atelier.io import images as img

    # a photo of the pack: ../shared does not travel to the GPU machine (the first GPU run failed here)
    content = img.load_image(sorted((pathlib.Path(args.pack) / "photos").iterdir())[0], size=size)
    style = img.load_image(pathlib.Path(args.pack) / "styles" / "starry_night.jpg", size=size)
    out = {"device": str(dev) + (f" ({torch.cuda.get_device_name()})" if dev.type == "cuda" else ""),
           "torch": torch.__version__, "precision": prec, "size": size}
    st = GatysStyleTransfer(GatysConfig(size=size, iterations=iters, precision=prec, device=str(dev), seed=0))
    st.run(content, [style], callback=None) if args.smoke else None
    sync()
    t = time.perf_counter()
    st.run(content, [style])
    sync()
    out["gatys"] = {"iterations": iters, "seconds": round(time.perf_counter() - t, 3),
                    "content_size": list(content.shape[-2:])}
    enc = get_encoder(None, "max", dev)

    def rate(fn, batch):
        x = torch.rand(batch, 3, size, size, device=dev)
        for _ in range(3):
            fn(x)
        sync()
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < (0.5 if args.smoke else 3.0):
            fn(x)
            n += 1
        sync()
        return round((time.perf_counter() - t0) / (n * batch) * 1000, 3)

    for name, width in (("feedforward_w05", 0.5), ("feedforward_w1", 1.0)):
        net = TransformerNet(1, width).to(dev).eval()
        if dev.type == "cuda":
            net = net.to(memory_format=torch.channels_last)

        def ff(x, net=net):
            with torch.no_grad(), torch.autocast(dev.type, torch.bfloat16, enabled=prec == "bf16"):
                return net(x.contiguous(memory_format=torch.channels_last) if dev.type == "cuda" else x)

        out[name] = {f"ms_per_image_batch{b}": rate(ff, b) for b in (1, 8)}
    for name, width in (("adain_w1", 1.0), ("adain_w05", 0.5)):
        model = AdaINModel(enc, AdaINDecoder(width), prec).to(dev).eval()
        sf = model.encode_style(style.to(dev))

        def ad(x, model=model, sf=sf):
            with torch.no_grad():
                return model(x, sf)

        out[name] = {f"ms_per_image_batch{b}": rate(ad, b) for b in (1, 8)}
    return out


def run(args) -> int:
    """Run the jobs ``--parallel`` at a time (largest share first), each with its share of the
    budget as its own deadline, all done by ``--budget`` seconds; then measure speed.

    On 2026-11-27 all 12 jobs at once on one H200 ran each at 4-5 steps/s (32-44 images/s): the
    GPU time-slices between processes, so a few at a time is faster in total."""
    out_dir = pathlib.Path(args.out_dir)
    (out_dir / "logs").mkdir(parents=True, exist_ok=True)
    jobs = [j.strip() for j in args.jobs.split(",") if j.strip()] if args.jobs else list(JOBS)
    for j in jobs:
        if j not in JOBS:
            print(f"error: unknown job {j!r}; one of {', '.join(JOBS)}", file=sys.stderr)
            return 2
    if not (pathlib.Path(args.pack) / "manifest.json").is_file():
        print(f"error: {args.pack}: no training pack (run scripts/make_training_pack.py)", file=sys.stderr)
        return 2
    t_start = time.time()
    deadline = t_start + args.budget
    import torch  # decode and cache the VGG19 weights once, before the workers read the cache

    from atelier.encoders.vgg import load_caffe_vgg19

    load_caffe_vgg19()
    print(f"torch {torch.__version__}, cuda {torch.cuda.is_available()}"
          + (f" ({torch.cuda.get_device_name()})" if torch.cuda.is_available() else "")
          + f"; {len(jobs)} jobs, budget {args.budget:.0f} s, parallel {args.parallel}", flush=True)
    base = [sys.executable, str(pathlib.Path(__file__).resolve()), "worker", str(out_dir)]
    opts = ["--pack", str(args.pack), "--size", str(args.size), "--batch", str(args.batch), "--precision", args.precision,
            "--device", args.device, "--max-steps", str(args.max_steps), "--checkpoint-every",
            str(args.checkpoint_every), "--preview-every", str(args.preview_every), "--threads", str(args.threads)] + (["--resume"] if args.resume else []) + (["--init-shipped"] if args.init_shipped else [])
    slots = plan(jobs, args.budget, args.parallel)
    running, results = {}, {}
    while any(slots) or running:
        for i, queue in enumerate(slots):
            if queue and not any(r[4] == i for r in running.values()):
                job, end = queue.pop(0)
                # on the slot's plan: a job after one that overran gets less, never under 20 s
                job_deadline = min(deadline, max(t_start + end, time.time() + EXPORT_MARGIN + 5))
                (out_dir / job).mkdir(parents=True, exist_ok=True)
                log = open(out_dir / "logs" / f"{job}.log", "w")
                cmd = base + ["--job", job, "--deadline", str(job_deadline)] + opts
                running[job] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log, time.time(),
                                job_deadline, i)
        time.sleep(0.2)
        for job, (proc, log, t0, job_deadline, _) in list(running.items()):
            rc = proc.poll()
            if rc is None and time.time() > job_deadline + args.grace:
                proc.terminate()  # SIGTERM: the job overran its export margin
                rc = proc.wait()
            if rc is not None:
                log.close()
                results[job] = {"rc": rc, "seconds": round(time.time() - t0, 1)}
                print(f"{job}: exit {rc} after {results[job]['seconds']} s", flush=True)
                del running[job]
    summary = {"jobs": {}, "budget_s": args.budget, "wall_s": None}
    for job in jobs:
        cards = sorted((out_dir / job).glob("*.json"))
        entry = dict(results.get(job, {}))
        if cards:
            c = json.loads(cards[0].read_text())
            entry.update({k: c.get(k) for k in ("steps", "stopped_by", "final_losses", "wall_seconds", "device",
                                                "precision")})
        else:
            entry["error"] = (out_dir / "logs" / f"{job}.log").read_text()[-2000:]
        summary["jobs"][job] = entry
    if args.speed:
        try:
            summary["speed"] = speed(args)
            (out_dir / "speed.json").write_text(json.dumps(summary["speed"], indent=1) + "\n")
            print("speed: " + json.dumps(summary["speed"]), flush=True)
        except Exception:  # noqa: BLE001 - the models matter more than the speed figures
            summary["speed_error"] = traceback.format_exc()[-2000:]
            print(summary["speed_error"], file=sys.stderr, flush=True)
    summary["wall_s"] = round(time.time() - t_start, 1)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    failed = [j for j, e in summary["jobs"].items() if "error" in e]
    print(f"done in {summary['wall_s']} s; {len(jobs) - len(failed)} of {len(jobs)} models exported"
          + (f"; failed: {', '.join(failed)}" if failed else ""), flush=True)
    return 1 if failed else 0


def pack(args) -> int:
    """Tar the outputs into at most ``--max-files`` files of at most ``--max-mib`` MiB in DEST."""
    src, dest = pathlib.Path(args.out_dir), pathlib.Path(args.dest)
    dest.mkdir(parents=True, exist_ok=True)
    limit = args.max_mib * 2**20 - 64 * 1024
    files = sorted((p for p in src.rglob("*") if p.is_file() and p.suffix != ".ckpt"), key=lambda p: -p.stat().st_size)
    bins: list[list[pathlib.Path]] = []
    sizes: list[int] = []
    for p in files:
        size = p.stat().st_size + 1024
        if size > limit:
            print(f"skipped (over {args.max_mib} MiB): {p}", file=sys.stderr)
            continue
        for i, s in enumerate(sizes):
            if s + size <= limit:
                bins[i].append(p)
                sizes[i] += size
                break
        else:
            bins.append([p])
            sizes.append(size)
    if len(bins) > args.max_files:
        print(f"warning: {len(bins)} tar files needed, only the first {args.max_files} written", file=sys.stderr)
    for i, group in enumerate(bins[: args.max_files]):
        with tarfile.open(dest / f"part{i + 1}.tar", "w") as tar:
            for p in group:
                tar.add(p, arcname=p.relative_to(src).as_posix())
        print(f"part{i + 1}.tar: {len(group)} files, {sizes[i] / 2**20:.1f} MiB")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("run", "worker"):
        p = sub.add_parser(name)
        p.add_argument("out_dir")
        p.add_argument("--pack", default=str(ROOT / ".gpu" / "pack"))
        p.add_argument("--size", type=int, default=256)
        p.add_argument("--batch", type=int, default=8)
        p.add_argument("--precision", default="auto")
        p.add_argument("--device", default="auto")
        p.add_argument("--max-steps", type=int, default=10**7)
        p.add_argument("--checkpoint-every", type=int, default=0)
        p.add_argument("--preview-every", type=int, default=2000)
        p.add_argument("--threads", type=int, default=1)
        p.add_argument("--resume", action="store_true", help="continue from the checkpoints in OUT_DIR")
        p.add_argument("--init-shipped", action="store_true", help="start each new run from the shipped weights")
        p.add_argument("--smoke", action="store_true", help="CPU check: 64 px, batch 2, 2 steps, tiny speed run")
        if name == "run":
            p.add_argument("--budget", type=float, default=420.0, help="seconds until every job stops training")
            p.add_argument("--grace", type=float, default=45.0, help="seconds after the budget before a job is stopped")
            p.add_argument("--jobs", default="", help=f"comma-separated subset of: {', '.join(JOBS)}")
            p.add_argument("--parallel", type=int, default=3, help="jobs at a time on the one GPU")
            p.add_argument("--no-speed", dest="speed", action="store_false")
        else:
            p.add_argument("--job", required=True)
            p.add_argument("--deadline", type=float, required=True)
    p = sub.add_parser("pack")
    p.add_argument("out_dir")
    p.add_argument("dest")
    p.add_argument("--max-files", type=int, default=8)
    p.add_argument("--max-mib", type=float, default=15.0)
    args = ap.parse_args(argv)
    if getattr(args, "smoke", False):
        args.size, args.batch, args.max_steps, args.preview_every = 64, 2, min(args.max_steps, 2), 2
    if args.cmd == "pack":
        return pack(args)
    return run(args) if args.cmd == "run" else worker(args)


if __name__ == "__main__":
    sys.exit(main())
