"""The package's names are imported on first use: ``import hmm_pyro`` loads no heavy library.

Start-up times are measured in ``benchmarks/startup.py``; these tests check the behaviour that
makes them short (which modules get imported), not a time.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

import hmm_pyro as hp

ROOT = Path(__file__).resolve().parents[1]

HEAVY = (
    "torch",
    "pyro",
    "arviz",
    "numba",
    "distributed",
    "dask",
    "matplotlib",
    "xarray",
    "scipy",
    "pandas",
    "numpy",
)
"""Libraries that take from a tenth of a second (numpy) to seconds (torch, Pyro, ArviZ) to
import: none is needed to import the package or to build the command line's parser."""


def imported_after(code: str) -> list[str]:
    """The heavy libraries in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    check = (
        f"import json, sys\n{code}\nprint(json.dumps(sorted(set({HEAVY!r}) & set(sys.modules))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", check],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_import_loads_no_heavy_library():
    assert imported_after("import hmm_pyro\nassert hmm_pyro.__version__") == []


def test_names_are_imported_on_first_use_from_their_module():
    for name in hp.__all__:
        value = getattr(hp, name)
        if name in hp._SUBPACKAGES:
            assert value is sys.modules[f"hmm_pyro.{name}"]
        elif name != "__version__":
            assert value is getattr(importlib.import_module(hp._SOURCES[name]), name), name
    assert set(hp.__all__) == {*hp._SOURCES, *hp._SUBPACKAGES, "__version__"}
    assert set(hp.__all__) <= set(dir(hp))
    from hmm_pyro import fit_nuts

    assert fit_nuts is hp.inference.fit_nuts
    with pytest.raises(AttributeError, match="no attribute 'fit_nut'"):
        hp.fit_nut  # noqa: B018


@pytest.mark.parametrize("name", ["simulate", "sweep"])
def test_function_stays_bound_when_its_module_is_imported_first(name, monkeypatch):
    """``hmm_pyro.simulate`` is the function even if ``hmm_pyro.simulate`` (the module) is
    imported before the function is first asked for: importing a submodule binds it to the
    package's attribute of the same name, which the package refuses for exported names."""
    monkeypatch.delitem(hp.__dict__, name, raising=False)  # as before the first use
    module = importlib.import_module(f"hmm_pyro.{name}")
    setattr(hp, name, module)  # what the import system does on the first import of the module
    assert isinstance(module, types.ModuleType)
    assert getattr(hp, name) is getattr(module, name)
    assert callable(getattr(hp, name))
    monkeypatch.setattr(hp, name, len)  # other values are set as usual (monkeypatching)
    assert getattr(hp, name) is len


def test_type_checking_imports_match_the_lazy_names():
    """The ``if TYPE_CHECKING:`` imports (what type checkers see) name the same modules."""
    tree = ast.parse((ROOT / "hmm_pyro" / "__init__.py").read_text(encoding="utf-8"))
    (block,) = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    ]
    imported = {
        alias.name: node.module for node in block.body for alias in node.names
    }  # fmt: skip
    expected = {**hp._SOURCES, **dict.fromkeys(hp._SUBPACKAGES, "hmm_pyro")}
    assert imported == expected
