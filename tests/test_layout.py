"""The package layout: every module imports on its own, and the layering rule holds
(docs/architecture.md): a module imports only from its own layer or below, and a method
never imports another method."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

SRC = pathlib.Path(__file__).resolve().parents[1] / "src" / "atelier"

# lowest first; the longest matching prefix wins (docs/architecture.md draws the same picture)
LAYERS = [
    ("atelier.core", 0),                                      # errors, files, limits, runtime
    ("atelier.io", 1), ("atelier.imaging", 1),                # images and video in and out; colour, flow
    ("atelier.encoders", 1), ("atelier.losses", 1),           # VGG19, precision; content/Gram/TV losses
    ("atelier.networks", 2),                                  # the architectures, no training
    ("atelier.training", 3),                                  # the shared loop, data, the model zoo
    ("atelier.methods", 4),                                   # one package per method
    ("atelier.analysis", 5),                                  # metrics, embeddings, robustness
    ("atelier.api", 6), ("atelier.cli", 6), ("atelier.studio", 6), ("atelier", 6),  # interfaces
]
TOP = 6


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for p in sorted(SRC.rglob("*.py")):
        parts = ["atelier", *p.relative_to(SRC).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _layer(mod: str) -> int:
    hits = [(len(prefix), layer) for prefix, layer in LAYERS if mod == prefix or mod.startswith(prefix + ".")]
    assert hits, f"{mod} is in no layer"
    return max(hits)[1]


def _method(mod: str) -> str | None:
    parts = mod.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "methods" else None


def _imports(mod: str, path: pathlib.Path) -> set[str]:
    is_pkg = path.name == "__init__.py"
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "atelier"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                target = ".".join(base[:len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "atelier":
                continue
            subs = [f"{target}.{a.name}" for a in node.names]
            known = _modules()
            found |= {s for s in subs if s in known} or {target}
            if not any(s in known for s in subs):
                found.add(target)
    return found


def test_every_module_imports_on_its_own():
    script = (
        "import importlib, sys\n"
        f"mods = {sorted(_modules())!r}\n"
        "failed = []\n"
        "for m in mods:\n"
        "    for k in [k for k in sys.modules if k == 'atelier' or k.startswith('atelier.')]:\n"
        "        del sys.modules[k]\n"
        "    try:\n"
        "        importlib.import_module(m)\n"
        "    except Exception as e:\n"
        "        failed.append(f'{m}: {type(e).__name__}: {e}')\n"
        "print('\\n'.join(failed))\n"
        "sys.exit(1 if failed else 0)\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


def test_layering_rule():
    mods = _modules()
    bad = []
    for mod, path in mods.items():
        if mod == "atelier":
            continue
        for target in _imports(mod, path):
            if target == "atelier":
                if _layer(mod) < TOP:
                    bad.append(f"{mod} imports the top-level package")
                continue
            if _layer(target) > _layer(mod):
                bad.append(f"{mod} (layer {_layer(mod)}) imports {target} (layer {_layer(target)})")
            m1, m2 = _method(mod), _method(target)
            if m1 and m2 and m1 != m2:
                bad.append(f"method {m1} ({mod}) imports method {m2} ({target})")
    assert not bad, "\n".join(bad)


def test_no_import_circles():
    """No module reaches itself through imports, at module level or inside functions (a lazy import
    hides a circle from Python, not from a reader)."""
    mods = _modules()
    graph = {m: {t for t in _imports(m, p) if t in mods and t != m and t != "atelier"} for m, p in mods.items()}
    cycles, state = [], {}

    def visit(m, stack):
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycles.append(" -> ".join(stack[stack.index(t):] + [t]))
            elif t not in state:
                visit(t, stack + [t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, "\n".join(cycles)


def test_no_module_over_500_lines():
    long = {m: n for m, p in _modules().items() if (n := len(p.read_text().splitlines())) > 500}
    assert not long, long


def test_layering_catches_an_upward_import(tmp_path):
    """The rule itself works: a core module that imported a method would be reported."""
    assert _layer("atelier.core.files") < _layer("atelier.methods.gatys.optimize")
    assert _layer("atelier.analysis.metrics") == 5 and _layer("atelier.training.zoo") == 3
    fake = tmp_path / "x.py"
    fake.write_text("from ..methods.gatys import optimize\n")
    assert "atelier.methods.gatys.optimize" in _imports("atelier.core.x", fake)


def test_inference_never_imports_a_trainer():
    """Running a method (loading its shipped weights and stylizing) imports no training code."""
    script = (
        "import sys\n"
        "import atelier.methods.arbitrary.adain, atelier.methods.arbitrary.wct, atelier.methods.feedforward.apply\n"
        "import atelier.methods.gan.sample, atelier.methods.sketch.contours, atelier.methods.gatys.optimize\n"
        "import atelier.methods.registry\n"
        "m = atelier.methods.arbitrary.adain.load_adain(device='cpu', precision='fp32')\n"
        "bad = sorted(k for k in sys.modules if k.startswith('atelier.') and (k.split('.')[-1] == 'train'\n"
        "             or k.split('.')[-1].startswith('train_') or k.endswith('.loop')))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
