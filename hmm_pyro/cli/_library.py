"""The library's choices and defaults for the parser, read from its source without importing it.

The help texts state the library's own choices and defaults (``--guide`` choices, the fields of
``Prior``, the runners' defaults): the library is their one source. Importing the modules that
define them loads torch, Pyro and ArviZ, seconds of start-up for ``hmm-pyro --help``; so the
parser reads them from the module files with :mod:`ast` instead. What is read: literals
(numbers, strings, ``None``, tuples, lists, sets and dicts of them, negated numbers), names
bound to such values at module level or in a class body, ``from hmm_pyro... import``
re-exports (followed to the defining module), function signatures and dataclass fields.
Anything else (a computed default, a decorated function, a missing source file) is read by
importing the module: correct, only slow. :data:`READ` records which way every value was read;
the tests check that the parser reads everything from the source and that each value equals
the imported one.

Every reader takes a path ``"module:qualified.name"``, as in an entry point:
``"hmm_pyro.inference.svi:GUIDES"``, ``"hmm_pyro.data:Sequences.from_file"``.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import functools
import importlib
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "READ",
    "READERS",
    "constant",
    "docstring",
    "fields",
    "keys",
    "parameters",
    "registry",
]

_ROOT = Path(__file__).resolve().parents[1]
"""The folder of the ``hmm_pyro`` package."""

READ: dict[tuple[str, str], str] = {}
"""``(reader, path) -> "source"`` or ``"import"``: how each value asked for was read."""

_MAX_DEPTH = 20
"""Longest chain of names and re-exports followed."""


class _NotInSource(Exception):
    """The value is not one the reader can take from the source: import the module instead."""


# ---------------------------------------------------------------------------- source
@functools.cache
def _module(name: str) -> ast.Module:
    """The parsed source of module ``name`` of this package."""
    package, *parts = name.split(".")
    if package != _ROOT.name:
        raise _NotInSource(name)
    base = _ROOT.joinpath(*parts)
    files = (base.with_suffix(".py"), base / "__init__.py") if parts else (base / "__init__.py",)
    for file in files:
        if file.is_file():
            return ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
    raise _NotInSource(name)


def _binding(module: str, body: list[ast.stmt], name: str, depth: int = 0) -> tuple[str, Any]:
    """``(module, node)``: what the last statement of ``body`` binding ``name`` binds it to.

    A definition (function or class) or an expression; ``from hmm_pyro.x import name`` is
    followed into ``hmm_pyro.x``.
    """
    if depth > _MAX_DEPTH:
        raise _NotInSource(name)
    found: tuple[str, Any] | None = None
    unreadable = False
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name == name:
                found, unreadable = (module, node), False
        elif isinstance(node, ast.Assign):
            if any(isinstance(target, ast.Name) and target.id == name for target in node.targets):
                found, unreadable = (module, node.value), False
        elif isinstance(node, ast.AnnAssign):
            target = node.target
            if isinstance(target, ast.Name) and target.id == name and node.value is not None:
                found, unreadable = (module, node.value), False
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if (alias.asname or alias.name.partition(".")[0]) != name:
                    continue
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found, unreadable = ("from", (node.module, alias.name)), False
                else:
                    unreadable = True
    if unreadable or found is None:
        raise _NotInSource(f"{module}: {name}")
    if found[0] == "from":
        source, original = found[1]
        return _binding(source, _module(source).body, original, depth + 1)
    return found


def _target(module: str, node: ast.expr, depth: int = 0) -> tuple[str, Any]:
    """``(module, node)`` that a name or an attribute of a class (``Cls.name``) refers to."""
    if isinstance(node, ast.Name):
        return _binding(module, _module(module).body, node.id, depth)
    if isinstance(node, ast.Attribute):
        where, owner = _target(module, node.value, depth + 1)
        if isinstance(owner, ast.ClassDef):
            return _binding(where, owner.body, node.attr, depth + 1)
    raise _NotInSource(ast.dump(node))


def _value(module: str, node: Any, depth: int = 0) -> Any:
    """The value of expression ``node`` of ``module``: a literal, or a name bound to one."""
    if depth > _MAX_DEPTH:
        raise _NotInSource(module)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        items = [_value(module, item, depth + 1) for item in node.elts]
        return {ast.Tuple: tuple, ast.List: list, ast.Set: set}[type(node)](items)
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {
            _value(module, key, depth + 1): _value(module, item, depth + 1)
            for key, item in zip(node.keys, node.values, strict=True)
        }
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = _value(module, node.operand, depth + 1)
        if isinstance(operand, (int, float)) and not isinstance(operand, bool):
            return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, (ast.Name, ast.Attribute)):
        where, bound = _target(module, node, depth + 1)
        if isinstance(bound, ast.expr):
            return _value(where, bound, depth + 1)
    raise _NotInSource(f"{module}: {ast.dump(node)}")


def _definition(path: str) -> tuple[str, Any]:
    """``(module, node)`` of ``"module:qualified.name"``."""
    module, colon, qualname = path.partition(":")
    if not colon or not qualname:
        raise ValueError(f"path: expected 'module:qualified.name', got {path!r}")
    first, *rest = qualname.split(".")
    where, node = _binding(module, _module(module).body, first)
    for part in rest:
        if not isinstance(node, ast.ClassDef):
            raise _NotInSource(path)
        where, node = _binding(where, node.body, part)
    return where, node


def _imported(path: str) -> Any:
    """The object at ``"module:qualified.name"``, by importing the module."""
    module, _, qualname = path.partition(":")
    value: Any = importlib.import_module(module)
    for part in qualname.split("."):
        value = getattr(value, part)
    return value


# ---------------------------------------------------------------------------- the readers
def _constant_in_source(path: str) -> Any:
    return _value(*_definition(path))


def _keys_in_source(path: str) -> tuple[Any, ...]:
    where, node = _definition(path)
    if not isinstance(node, ast.Dict) or None in node.keys:
        raise _NotInSource(path)
    return tuple(_value(where, key) for key in node.keys)


def _registry_in_source(path: str) -> dict[Any, str]:
    where, node = _definition(path)
    if not isinstance(node, ast.Dict) or None in node.keys:
        raise _NotInSource(path)
    entries = {}
    for key, item in zip(node.keys, node.values, strict=True):
        defined_in, definition = _target(where, item)
        if not isinstance(definition, (ast.FunctionDef, ast.ClassDef)):
            raise _NotInSource(path)
        entries[_value(where, key)] = f"{defined_in}:{definition.name}"
    return entries


def _registry_imported(path: str) -> dict[Any, str]:
    return {key: f"{item.__module__}:{item.__qualname__}" for key, item in _imported(path).items()}


def _parameters_in_source(path: str) -> dict[str, Any]:
    where, node = _definition(path)
    if not isinstance(node, ast.FunctionDef):
        raise _NotInSource(path)
    decorators = [ast.unparse(decorator) for decorator in node.decorator_list]
    if any(decorator not in ("classmethod", "staticmethod") for decorator in decorators):
        raise _NotInSource(path)  # a decorator may change the signature
    arguments = node.args
    empty = inspect.Parameter.empty
    positional = arguments.posonlyargs + arguments.args
    defaults = [None] * (len(positional) - len(arguments.defaults)) + list(arguments.defaults)
    pairs = list(zip(positional, defaults, strict=True))
    if arguments.vararg is not None:
        pairs.append((arguments.vararg, None))
    pairs += zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True)
    if arguments.kwarg is not None:
        pairs.append((arguments.kwarg, None))
    if "classmethod" in decorators:  # bound to the class: no ``cls``
        pairs = pairs[1:]
    return {
        argument.arg: empty if default is None else _value(where, default)
        for argument, default in pairs
    }


def _parameters_imported(path: str) -> dict[str, Any]:
    parameters = inspect.signature(_imported(path)).parameters.values()
    return {parameter.name: parameter.default for parameter in parameters}


def _fields_in_source(path: str) -> dict[str, Any]:
    where, node = _definition(path)
    if not isinstance(node, ast.ClassDef) or node.bases or node.keywords:
        raise _NotInSource(path)  # inherited fields come first: not read here
    fields = {}
    for statement in node.body:
        if not isinstance(statement, ast.AnnAssign) or not isinstance(statement.target, ast.Name):
            continue
        if "ClassVar" in ast.unparse(statement.annotation):
            continue
        if "InitVar" in ast.unparse(statement.annotation):
            raise _NotInSource(path)
        fields[statement.target.id] = (
            dataclasses.MISSING if statement.value is None else _value(where, statement.value)
        )
    return fields


def _fields_imported(path: str) -> dict[str, Any]:
    return {field.name: field.default for field in dataclasses.fields(_imported(path))}


def _docstring_in_source(path: str) -> str:
    _, node = _definition(path)
    if not isinstance(node, (ast.FunctionDef, ast.ClassDef)):
        raise _NotInSource(path)
    return ast.get_docstring(node) or ""


READERS: dict[str, tuple[Callable[[str], Any], Callable[[str], Any]]] = {
    "constant": (_constant_in_source, _imported),
    "keys": (_keys_in_source, lambda path: tuple(_imported(path))),
    "registry": (_registry_in_source, _registry_imported),
    "parameters": (_parameters_in_source, _parameters_imported),
    "fields": (_fields_in_source, _fields_imported),
    "docstring": (_docstring_in_source, lambda path: inspect.cleandoc(_imported(path).__doc__)),
}
"""Reader -> (read from the source, read by importing)."""


def _read(reader: str, path: str) -> Any:
    """The value, read once (from the source if it can be); a copy of it, which callers may edit."""
    return copy.copy(_read_once(reader, path))


@functools.cache
def _read_once(reader: str, path: str) -> Any:
    in_source, imported = READERS[reader]
    try:
        value = in_source(path)
    except _NotInSource:
        READ[(reader, path)] = "import"
        return imported(path)
    READ[(reader, path)] = "source"
    return value


def constant(path: str) -> Any:
    """The value at ``path``: ``constant("hmm_pyro.inference.svi:GUIDES")``."""
    return _read("constant", path)


def keys(path: str) -> tuple[Any, ...]:
    """The keys of the dict at ``path``: ``keys("hmm_pyro.emissions:FAMILIES")``."""
    return _read("keys", path)


def registry(path: str) -> dict[Any, str]:
    """``{key: "module:name"}``: where each value of the dict of functions or classes is defined.

    For example ``registry("hmm_pyro.runners:RUNNERS")["nuts"]`` is
    ``"hmm_pyro.inference.nuts:fit_nuts"``.
    """
    return _read("registry", path)


def parameters(path: str) -> dict[str, Any]:
    """``{parameter: default}`` of the function at ``path``, as :func:`inspect.signature` has it.

    ``inspect.Parameter.empty`` marks a parameter without a default; a class method's ``cls``
    is left out.
    """
    return _read("parameters", path)


def fields(path: str) -> dict[str, Any]:
    """``{field: default}`` of the dataclass at ``path`` (``dataclasses.MISSING``: none)."""
    return _read("fields", path)


def docstring(path: str) -> str:
    """The docstring of the class or function at ``path``, indentation removed."""
    return _read("docstring", path)
