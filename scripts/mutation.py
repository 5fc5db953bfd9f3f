"""Mutation testing of the six modules of issue 29, one module at a time (docs/mutation-testing.md).

    pip install -e '.[mutation,test]'
    nice -n 19 python scripts/mutation.py preference          # one module
    nice -n 19 python scripts/mutation.py                     # all six, one after the other
    python scripts/mutation.py --list
    nice -n 19 python scripts/mutation.py wct_model --only-from survivors.txt   # rerun only those mutants

For each module, a scratch copy of src/, tests/ and pyproject.toml is made under
``$ATELIER_MUTMUT_DIR`` (default: /tmp/atelier-mutmut/<module>), its ``[tool.mutmut]`` narrowed
to that module and to the fast tests that exercise it (``-m "not slow"``), and ``mutmut run``
is run there (mutmut 3 writes its ``mutants/`` folder in the current directory; the working tree
is left alone). At the end the script prints ``mutmut results`` (the survivors) and one JSON line:
module, killed, survived, timeout, no_tests, total, score (killed + timeout over total, mutants no
test reaches counted as survivors). ``mutmut show <name>`` in that folder shows a survivor's diff.
The plain ``mutmut run`` in the repository root (``[tool.mutmut]`` in pyproject.toml) mutates
all six at once with the union of the test files: slower, same mutants.

``--only NAME`` (repeatable, fnmatch patterns such as ``'*x_wct__mutmut_*'``) or ``--only-from FILE``
(one name a line, e.g. the ``survivors.txt`` a run leaves in its folder) runs only those mutants
(again in a fresh folder, with the current tests): the counts then cover those mutants only.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ATELIER_TEST_DATA", REPO.parent / "shared" / "data"))

# name: (module, the fast test files that exercise it)
MODULES = {
    "metrics": ("src/atelier/analysis/metrics.py", ["tests/test_metrics.py", "tests/test_flow.py", "tests/test_robustness.py"]),
    "flow": ("src/atelier/imaging/flow.py", ["tests/test_flow.py"]),
    "boundary_eval": ("src/atelier/methods/sketch/boundary_eval.py", ["tests/test_sketch.py"]),
    "distribution": ("src/atelier/analysis/distribution.py", ["tests/test_gan.py"]),
    "preference": ("src/atelier/studio/preference.py", ["tests/test_preference.py"]),
    "wct_model": ("src/atelier/methods/arbitrary/wct_model.py", ["tests/test_wct.py"]),
}


def _config(module: str, tests: list[str]) -> str:
    return ("[tool.mutmut]\n"
            'source_paths = ["src/"]\n'
            f"only_mutate = [{json.dumps(module)}]\n"
            f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
            'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-x", "-m", "not slow"]\n'
            # tests that import scripts/ (test_gan's gpu_train job) or benchmarks/ need them beside tests/
            'also_copy = ["scripts/", "benchmarks/"]\n'
            # on a shared machine a test can take several times its measured time: without slack, mutants
            # that change nothing are reported as timeouts (mutmut's default is 15 x the test time + 1 s)
            "timeout_constant = 30.0\n"
            # OpenCV's and torch's thread pools do not survive fork(): forked workers hung on flow tests
            'process_isolation = "forkserver"\n')


def _scratch(name: str) -> Path:
    """The module's folder, made afresh (mutmut 3.8.1 lost its test map when a stopped run was
    continued in the same folder, and then reported every mutant as having no tests)."""
    module, tests = MODULES[name]
    root = Path(os.environ.get("ATELIER_MUTMUT_DIR", "/tmp/atelier-mutmut")) / name
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for folder in ("tests", "scripts", "benchmarks"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    text = (REPO / "pyproject.toml").read_text()
    text = re.sub(r"(?ms)^\[tool\.mutmut\]\n.*?(?=^\[|\Z)", "", text) + "\n" + _config(module, tests)
    (root / "pyproject.toml").write_text(text)
    return root


def _default_sigint() -> None:  # a job started in the background inherits SIGINT ignored; the Ctrl-C tests need it
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run(name: str, only: list[str] | None = None) -> dict:
    root = _scratch(name)
    env = dict(os.environ, ATELIER_TEST_DATA=str(DATA))
    mutmut = [sys.executable, "-m", "mutmut"]
    t = time.perf_counter()
    subprocess.run([*mutmut, "run", "--max-children", os.environ.get("MUTMUT_CHILDREN", "2"), *(only or [])],
                   cwd=root, env=env, preexec_fn=_default_sigint, check=False)
    seconds = time.perf_counter() - t
    res = subprocess.run([*mutmut, "results", "--all", "true"], cwd=root, env=env, capture_output=True, text=True)
    status: dict[str, list[str]] = {}
    for line in res.stdout.splitlines():
        m = re.match(r"\s*(\S+): (.+)$", line)
        if m and (not only or any(fnmatch.fnmatch(m.group(1), p) for p in only)):
            status.setdefault(m.group(2).strip(), []).append(m.group(1))
    count = {k: len(v) for k, v in status.items()}
    total = sum(count.values())
    killed = count.get("killed", 0) + count.get("timeout", 0)
    for k in ("survived", "no tests"):
        for mutant in status.get(k, []):
            print(f"{k}: {mutant}")
    (root / "survivors.txt").write_text("".join(f"{m}\n" for k in ("survived", "no tests") for m in status.get(k, [])))
    return {"module": MODULES[name][0], "tests": MODULES[name][1], "killed": count.get("killed", 0),
            "timeout": count.get("timeout", 0), "survived": count.get("survived", 0),
            "no_tests": count.get("no tests", 0), "other": {k: v for k, v in count.items()
                                                          if k not in ("killed", "timeout", "survived", "no tests")},
            "total": total, "score": round(killed / total, 3) if total else None, "seconds": round(seconds),
            "survivors": status.get("survived", []) + status.get("no tests", []), "folder": str(root),
            "only": only or None}


def main(argv: list[str]) -> None:
    if "--list" in argv:
        for k, (module, tests) in MODULES.items():
            print(f"{k:14} {module}  <- {' '.join(tests)}")
        return
    only: list[str] = []
    names: list[str] = []
    args = iter(argv)
    for a in args:
        if a in ("--only", "--only-from"):
            value = next(args, None)
            if value is None:
                raise SystemExit(f"{a} needs a value")
            only += [value] if a == "--only" else [ln.strip() for ln in Path(value).read_text().splitlines() if ln.strip()]
        else:
            names.append(a)
    if only and len(names) != 1:
        raise SystemExit("--only/--only-from take exactly one module")
    for name in names or list(MODULES):
        if name not in MODULES:
            raise SystemExit(f"unknown module {name!r}; one of {', '.join(MODULES)}")
        print(json.dumps(run(name, only)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
