"""The parser reads the library's choices and defaults from its source, equal to the imported ones.

Start-up times are measured in ``benchmarks/startup.py``; these tests check which modules the
parser imports (none of the heavy libraries) and that what it reads is right.
"""

from __future__ import annotations

import dataclasses
import inspect
import textwrap

import pytest

from hmm_pyro.cli import _library, build_parser
from tests.test_init import imported_after

COMMANDS = (
    "simulate", "fit", "store", "diagnose", "relabel", "compare", "sweep", "decode", "plot", "demo",
)  # fmt: skip


def test_help_imports_no_heavy_library():
    """``python -m hmm_pyro --help`` and every ``hmm-pyro COMMAND --help``, in one interpreter;
    also that every value the parser read came from the source (none by importing)."""
    code = textwrap.dedent(
        f"""
        import contextlib, io, runpy
        from hmm_pyro.cli import _library, main
        sys.argv = ["hmm_pyro", "--help"]
        with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):
            runpy.run_module("hmm_pyro", run_name="__main__")
        assert "compare" in out.getvalue(), out.getvalue()
        for command in {COMMANDS!r}:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
                main([command, "--help"])
        imported = [key for key, how in _library.READ.items() if how != "source"]
        assert not imported, imported
        """
    )
    assert imported_after(code) == []


def test_values_read_from_the_source_equal_the_imported_ones():
    build_parser()  # the import of the CLI read some values too: all are in READ
    assert ("keys", "hmm_pyro.emissions:FAMILIES") in _library.READ
    assert ("registry", "hmm_pyro.runners:RUNNERS") in _library.READ
    for (reader, path), how in _library.READ.items():
        assert how == "source", (reader, path)
        in_source, imported = _library.READERS[reader]
        assert in_source(path) == imported(path), (reader, path)


def test_values_that_are_not_literals_are_read_by_importing(monkeypatch):
    from hmm_pyro.simulate import REFERENCE_PARAMS

    monkeypatch.setattr(_library, "READ", {})
    value = _library.constant("hmm_pyro.simulate:REFERENCE_PARAMS")
    assert value is not REFERENCE_PARAMS  # a copy, of the same tensors
    assert all(value.pop(name) is tensor for name, tensor in REFERENCE_PARAMS.items())
    assert not value
    assert _library.READ == {("constant", "hmm_pyro.simulate:REFERENCE_PARAMS"): "import"}
    with pytest.raises(ValueError, match=r"path: expected 'module:qualified\.name'"):
        _library.constant("hmm_pyro.simulate.REFERENCE_PARAMS")


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A small ``hmm_pyro`` package in ``tmp_path`` for the source readers."""
    root = tmp_path / "hmm_pyro"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("from hmm_pyro.sub import Thing, run as go\n")
    (root / "sub" / "__init__.py").write_text(
        textwrap.dedent(
            """
            import os
            from hmm_pyro.sub.impl import LIMIT, Thing, run
            SCALE = -LIMIT
            CHOICES = ("a", "b")
            CHOICES = CHOICES + ("c",)
            TABLE = {Thing.kind: Thing, "runner": run}
            PATH = os.sep
            """
        )
    )
    (root / "sub" / "impl.py").write_text(
        textwrap.dedent(
            '''
            import functools

            LIMIT = 1e3

            class Thing:
                """A thing.

                Parameters
                ----------
                size : int
                    How big.
                """

                kind = "thing"
                name: str
                size: int = 3
                scale: float = -LIMIT

                @classmethod
                def make(cls, size=LIMIT, *shape, flag=None, **options):
                    pass

                def method(self, x, y=(1, [2, {"z": None}])):
                    pass

            def run(model, data, steps: int = 10, *, tol=1e-6, **more):
                pass

            @functools.cache
            def cached(x=1):
                pass
            '''
        )
    )
    monkeypatch.setattr(_library, "_ROOT", root)
    _library._module.cache_clear()
    yield root
    _library._module.cache_clear()


def test_source_readers_follow_names_reexports_and_class_attributes(package):
    empty = inspect.Parameter.empty
    assert _library._constant_in_source("hmm_pyro.sub:SCALE") == -1e3
    assert _library._constant_in_source("hmm_pyro.sub.impl:Thing.kind") == "thing"
    assert _library._keys_in_source("hmm_pyro.sub:TABLE") == ("thing", "runner")
    assert _library._registry_in_source("hmm_pyro.sub:TABLE") == {
        "thing": "hmm_pyro.sub.impl:Thing", "runner": "hmm_pyro.sub.impl:run",
    }  # fmt: skip
    assert _library._parameters_in_source("hmm_pyro:go") == {
        "model": empty, "data": empty, "steps": 10, "tol": 1e-6, "more": empty,
    }  # fmt: skip
    assert _library._parameters_in_source("hmm_pyro:Thing.make") == {
        "size": 1e3, "shape": empty, "flag": None, "options": empty,
    }  # fmt: skip
    assert _library._parameters_in_source("hmm_pyro.sub:Thing.method") == {
        "self": empty, "x": empty, "y": (1, [2, {"z": None}]),
    }  # fmt: skip
    assert _library._fields_in_source("hmm_pyro:Thing") == {
        "name": dataclasses.MISSING, "size": 3, "scale": -1e3,
    }  # fmt: skip
    assert _library._docstring_in_source("hmm_pyro:Thing").startswith("A thing.\n\nParameters")


@pytest.mark.parametrize(
    ("reader", "path"),
    [
        ("constant", "hmm_pyro.sub:CHOICES"),  # last binding is computed
        ("constant", "hmm_pyro.sub:PATH"),  # an attribute of an imported module
        ("constant", "hmm_pyro.sub:missing"),
        ("constant", "hmm_pyro.nowhere:X"),
        ("constant", "os:sep"),  # not this package
        ("keys", "hmm_pyro.sub:CHOICES"),  # not a dict
        ("parameters", "hmm_pyro.sub.impl:cached"),  # a decorator may change the signature
        ("parameters", "hmm_pyro.sub.impl:LIMIT"),
    ],
)
def test_source_readers_refuse_what_they_cannot_read(package, reader, path):
    in_source, _ = _library.READERS[reader]
    with pytest.raises(_library._NotInSource):
        in_source(path)
