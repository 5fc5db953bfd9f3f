"""Plant the bugs of issue 29 one at a time, run the tests meant to catch each, restore the file.

    python scripts/planted_bugs.py            # every bug
    python scripts/planted_bugs.py V1 S2      # some of them
    python scripts/planted_bugs.py A1 -- -k search   # arguments after -- go to pytest
    python scripts/planted_bugs.py --list

Each bug is a minimal edit (one exact string replaced by another, checked to occur exactly once)
in a module under src/; the script runs the fast tests named for it (``-m "not slow"``), records
which failed, and writes the original file back whatever happens (check with ``git status``).
One JSON line per bug goes to stdout: id, file, caught (bool), failed (test ids), seconds.
Not in CI (a minute or two per bug on 2 cores); the results are in docs/mutation-testing.md.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VIDEO = ["tests/test_flow.py", "tests/test_video.py", "tests/test_video_io.py"]

# id: (what, file, old, new, tests)
BUGS = {
    "V1": ("warping error divided by every pixel, not the mask's weight", "src/atelier/analysis/metrics.py",
           "return float((d2 * m).sum()) / total", "return float((d2 * m).sum()) / d2.numel()", VIDEO),
    "V2": ("blend colour tracking holds the overall mean, not each channel's",
           "src/atelier/methods/video/consistency.py",
           "y = y + (s.mean(dim=(2, 3), keepdim=True) - y.mean(dim=(2, 3), keepdim=True))",
           "y = y + (s.mean(dim=(1, 2, 3), keepdim=True) - y.mean(dim=(1, 2, 3), keepdim=True))", VIDEO),
    "V2b": ("optimize colour tracking holds the overall mean, not each channel's",
            "src/atelier/methods/video/consistency.py",
            "offset = y.mean(dim=(2, 3), keepdim=True) - x.mean(dim=(2, 3), keepdim=True)",
            "offset = y.mean(dim=(1, 2, 3), keepdim=True) - x.mean(dim=(1, 2, 3), keepdim=True)", VIDEO),
    "V3": ("resumed frame folder renumbered from 0 (off by one)", "src/atelier/io/video.py",
           "shutil.copyfile(f, self._tmp / FRAME_NAME.format(self.frames_written + 1))",
           "shutil.copyfile(f, self._tmp / FRAME_NAME.format(self.frames_written))", VIDEO),
    "S1": ("OIS as the mean of per-photo F", "src/atelier/methods/sketch/boundary_eval.py",
           "ois=float(_f(op, orr))", "ois=float(fi[np.arange(len(counts)), choice].mean())",
           ["tests/test_sketch.py"]),
    "S2": ("hysteresis thresholds swapped", "src/atelier/methods/sketch/draw.py",
           "apply_hysteresis_threshold(ridge, low, high)", "apply_hysteresis_threshold(ridge, high, low)",
           ["tests/test_sketch.py"]),
    "A1": ("search cache kept after an update", "src/atelier/analysis/index.py",
           "        self._cache = None\n        return report\n\n    def _store_stream",
           "        return report\n\n    def _store_stream", ["tests/test_analysis.py"]),
    "A1b": ("search cache kept after a streamed update", "src/atelier/analysis/index.py",
            "            self._cache = None\n            return report", "            return report",
            ["tests/test_analysis.py"]),
    "A2": ("exported intercept without the standardization mean", "src/atelier/analysis/classify.py",
           "b = lr.intercept_ - w @ scaler.mean_", "b = lr.intercept_", ["tests/test_analysis.py"]),
    "T1": ("store image path not contained in its folder", "src/atelier/studio/store.py",
           "return p if p.parent == self.images and p.is_file() else None", "return p if p.is_file() else None",
           ["tests/test_studio.py", "tests/test_studio_security.py"]),
    "T1b": ("store result path not contained in its folder", "src/atelier/studio/store.py",
            "return p if p.parent == self.results and p.is_file() else None", "return p if p.is_file() else None",
            ["tests/test_studio.py", "tests/test_studio_security.py"]),
    "T2": ("Thompson draws with the transposed Cholesky factor", "src/atelier/studio/preference.py",
           "mean + chol @ rng.standard_normal", "mean + chol.T @ rng.standard_normal",
           ["tests/test_preference.py"]),
    "G1": ("DiffAugment on the fake batch only", "src/atelier/methods/gan/train.py",
           "real_aug = diff_augment(real, self.policy, self.generator)", "real_aug = real", ["tests/test_gan.py"]),
    "G2": ("EMA decay swapped", "src/atelier/training/adversarial.py",
           "pe.lerp_(pm.detach(), 1.0 - decay)", "pe.lerp_(pm.detach(), decay)", ["tests/test_gan.py"]),
    "W1": ("WCT alpha ignored with a mask", "src/atelier/methods/arbitrary/wct_model.py",
           "    out = alpha * out + (1.0 - alpha) * f.double()\n",
           "    if mask is None:\n        out = alpha * out + (1.0 - alpha) * f.double()\n", ["tests/test_wct.py"]),
    "W2": ("WCT eigenvalue cut-off absolute", "src/atelier/methods/arbitrary/wct_model.py",
           "keep = d > EIG_RTOL * d.max().clamp_min(1e-30)", "keep = d > EIG_RTOL", ["tests/test_wct.py"]),
}


def plant(bug_id: str, extra: list[str]) -> dict:
    what, rel, old, new, tests = BUGS[bug_id]
    path = REPO / rel
    original = path.read_text()
    if original.count(old) != 1:
        raise SystemExit(f"{bug_id}: the text to replace occurs {original.count(old)} times in {rel}")
    t = time.perf_counter()
    try:
        path.write_text(original.replace(old, new))
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "not slow", "-p", "no:cacheprovider",
                              "-rf", *extra, *tests], cwd=REPO, capture_output=True, text=True,
                             # a job started in the background inherits SIGINT ignored; the Ctrl-C tests need it
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    finally:
        path.write_text(original)
    if run.returncode not in (0, 1):
        raise SystemExit(f"{bug_id}: pytest could not run the tests (exit {run.returncode}):\n{run.stdout[-2000:]}")
    failed = sorted(set(re.findall(r"^FAILED (\S+)", run.stdout, re.M)))
    return {"id": bug_id, "bug": what, "file": rel, "caught": run.returncode == 1, "failed": failed,
            "seconds": round(time.perf_counter() - t, 1), "tail": run.stdout.strip().splitlines()[-1:]}


def main(argv: list[str]) -> None:
    if "--list" in argv:
        for k, (what, rel, *_rest) in BUGS.items():
            print(f"{k:4} {rel}: {what}")
        return
    extra = argv[argv.index("--") + 1:] if "--" in argv else []  # passed to pytest, e.g. -- -k name
    ids = (argv[:argv.index("--")] if "--" in argv else argv) or list(BUGS)
    for k in ids:
        print(json.dumps(plant(k, extra)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
