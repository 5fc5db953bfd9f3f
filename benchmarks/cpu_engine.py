"""CPU engines for one-pass inference at 512 x 512 (issue 25, item 3): PyTorch fp32 against
ONNX Runtime fp32 and int8 (static post-training quantization), one process, one run.

* Feed-forward: the shipped ``starry_night`` model (width 0.5), batch 1, on scikit-image's
  astronaut; the int8 variants' cost is the mean absolute error to the fp32 output on coffee
  (a photo not used for calibration; 16 training-pack photos calibrate).
* AdaIN: the content encoder (VGG19 to relu4_1) and the decoder separately, PyTorch against
  ONNX Runtime; images/s of the whole pass is 1 / (t_encoder + t_decoder) (the style's
  statistics are computed once per style).
* End to end: ``atelier apply`` over 20 training photos at 512 px, ``--engine torch`` and
  ``--engine auto`` (the ONNX file already in the cache).

    python benchmarks/cpu_engine.py --json docs/results/cpu_engine.json
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import pathlib
import platform
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import torch
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def _rate(fn, seconds: float) -> float:
    fn()
    t, k = time.perf_counter(), 0
    while time.perf_counter() - t < seconds:
        fn()
        k += 1
    return k / (time.perf_counter() - t)


def _export(module, x, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (x,), str(path), dynamo=False, opset_version=17, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "N", 2: "H", 3: "W"}})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--json", type=pathlib.Path)
    args = ap.parse_args()
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from skimage import data

    from atelier.io import images as img
    from atelier.methods.arbitrary.adain import load_adain
    from atelier.methods.feedforward.apply import load_model, stylize_tensor
    from atelier.methods.feedforward.export import export_onnx

    flags = open("/proc/cpuinfo").read() if pathlib.Path("/proc/cpuinfo").exists() else ""
    res: dict = {"date": datetime.date.today().isoformat(), "machine": platform.processor() or platform.machine(),
                 "cpu_flags": [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f" {f}" in flags],
                 "threads": torch.get_num_threads(), "torch": torch.__version__, "onnxruntime": ort.__version__}
    photo = img.resize_to(img.load_image(data.astronaut()), 512, 512)
    held_out = img.resize_to(img.load_image(data.coffee()), 512, 512).numpy()
    tmp = pathlib.Path(tempfile.mkdtemp())
    net = load_model("starry_night")
    ff = {"torch_fp32": _rate(lambda: stylize_tensor(net, photo, precision="fp32", engine="torch"), args.seconds),
          "onnxruntime_fp32": _rate(lambda: stylize_tensor(net, photo, precision="fp32", engine="onnxruntime"),
                                    args.seconds)}
    path = export_onnx(net, tmp / "ff.onnx")
    pre = tmp / "pre.onnx"
    quant_pre_process(str(path), str(pre))
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": held_out})[0]
    cal = [img.resize_to(img.load_image(f), 256, 256).numpy()
           for f in sorted(glob.glob(str(DATA / "train" / "photos" / "*")))[:16]]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(cal)

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {"image": x}

    for fmt, per_channel in ((QuantFormat.QDQ, False), (QuantFormat.QDQ, True), (QuantFormat.QOperator, True)):
        q = tmp / f"q-{fmt.name}-{per_channel}.onnx"
        quantize_static(str(pre), str(q), Reader(), quant_format=fmt, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, per_channel=per_channel, op_types_to_quantize=["Conv"])
        sess = ort.InferenceSession(str(q), providers=["CPUExecutionProvider"])
        x = photo.numpy()
        name = f"onnxruntime_int8_{fmt.name.lower()}{'_per_channel' if per_channel else ''}"
        ff[name] = _rate(lambda: sess.run(None, {"image": x}), args.seconds)
        ff[name + "_mae_255"] = float(np.abs(sess.run(None, {"image": held_out})[0] - ref).mean() * 255)
    res["feedforward_images_per_s"] = ff
    print(json.dumps(ff), flush=True)

    m = load_adain(device="cpu", precision="fp32")
    with torch.inference_mode():
        feat = m.encode_content(photo, "fp32")
        t_enc = 1 / _rate(lambda: m.encode_content(photo, "fp32"), args.seconds)
        t_dec = 1 / _rate(lambda: m.decode(feat, "fp32"), args.seconds)

    class Enc(torch.nn.Module):
        def forward(self, x):
            return m.encode_content(x, "fp32")

    class Dec(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.d = m.decoder

        def forward(self, x):
            return self.d(x)

    ort_t = {}
    for name, mod, x in (("encoder", Enc(), photo), ("decoder", Dec(), feat)):
        _export(mod, x, tmp / f"{name}.onnx")
        sess = ort.InferenceSession(str(tmp / f"{name}.onnx"), providers=["CPUExecutionProvider"])
        xn = x.numpy()
        ort_t[name] = 1 / _rate(lambda: sess.run(None, {"x": xn}), args.seconds)
    res["adain_images_per_s"] = {"torch_fp32": 1 / (t_enc + t_dec), "torch_encoder_s": t_enc, "torch_decoder_s": t_dec,
                                 "onnxruntime_fp32": 1 / sum(ort_t.values()),
                                 "onnxruntime_encoder_s": ort_t["encoder"], "onnxruntime_decoder_s": ort_t["decoder"]}
    print(json.dumps(res["adain_images_per_s"]), flush=True)

    photos = sorted(glob.glob(str(DATA / "train" / "photos" / "*")))[:20]
    (tmp / "in").mkdir()
    for i, f in enumerate(photos):
        Image.open(f).convert("RGB").resize((512, 512)).save(tmp / "in" / f"{i:02d}.png")
    e2e = {"images": len(photos)}
    for engine in ("torch", "auto"):
        t = time.perf_counter()
        subprocess.run([str(pathlib.Path(sys.executable).with_name("atelier")), "apply", "starry_night", str(tmp / "in"), "-o",
                        str(tmp / f"out-{engine}"), "--engine", engine, "--precision", "fp32", "-q"], check=True)
        e2e[f"{engine}_wall_s"] = time.perf_counter() - t
    res["apply_end_to_end"] = e2e
    print(json.dumps(e2e), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
