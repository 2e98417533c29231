"""Checkpoints of SVI runs: the file, the checkpointer, the settings check and deferred Ctrl-C.

A checkpoint is a data-only file written atomically (temporary file, then rename) by
:class:`Checkpointer`: the finished restarts, the restart in progress and the global RNG
states, as plain arrays plus a JSON header (:mod:`hmm_pyro._archive`; the format is described
in ``docs/files.md``). Reading one runs no code from it: pickles, including the ``torch.save``
checkpoints of format version 1, are refused, never loaded. The header records the format
version, the hmm_pyro version, the run's *signature* (settings, model and a SHA-256 of the
data) with its own SHA-256, and a SHA-256 of the whole content; a run resumes from a checkpoint
only if all of them match. While checkpointing, Ctrl-C is deferred to the end of the current
step (:func:`deferred_interrupts`) so that the state saved on interruption is consistent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyro
import torch

from hmm_pyro._archive import (
    decode_state,
    encode_state,
    file_label,
    read_archive,
    write_archive,
)
from hmm_pyro._validation import describe
from hmm_pyro.model import HMM

__all__ = [
    "Checkpointer",
    "Interrupts",
    "check_checkpoint_args",
    "deferred_interrupts",
    "init_name",
    "load_checkpoint",
    "resume_seed",
    "signature_checksum",
]

_CHECKPOINT_FORMAT = "hmm_pyro.svi_checkpoint"
_CHECKPOINT_VERSION = 2
"""Version 1 was a ``torch.save`` pickle: refused, never unpickled. Version 2 is data-only."""
_STATE_KEYS = ("completed", "current", "numpy_rng", "python_rng")
_MT_WORDS = 624
"""Words of a Mersenne Twister state (NumPy's legacy global generator and Python's)."""


class Interrupts:
    """SIGINT deferred to the end of the current step (see :func:`deferred_interrupts`)."""

    def __init__(self) -> None:
        self.requested = False

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` if Ctrl-C arrived during the last step."""
        if self.requested:
            self.requested = False
            raise KeyboardInterrupt


@contextlib.contextmanager
def deferred_interrupts(enabled: bool) -> Iterator[Interrupts]:
    """Defer Ctrl-C to the end of the current step while checkpointing.

    A first Ctrl-C only sets a flag (checked between steps), so that the checkpoint written on
    interruption holds a consistent state; a second Ctrl-C interrupts at once. Only in the main
    thread (signal handlers cannot be set elsewhere).
    """
    flags = Interrupts()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield flags
        return

    def handler(signum: int, frame: Any) -> None:
        if flags.requested:
            raise KeyboardInterrupt
        flags.requested = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flags
    finally:
        signal.signal(signal.SIGINT, previous)


def signature_checksum(signature: dict[str, Any]) -> str:
    """SHA-256 of a run's signature (its canonical JSON): the data and settings it belongs to."""
    return hashlib.sha256(json.dumps(signature, sort_keys=True).encode()).hexdigest()


def _as_json(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(value, sort_keys=True))


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read an SVI checkpoint written by ``fit_svi`` or ``fit_svi_stream``.

    The file is data only: reading it runs no code from it. Pickles (among them the
    ``torch.save`` checkpoints of format version 1), files of another format version or
    hmm_pyro version, damaged files (content that does not match its checksum) and malformed
    state are refused with a ``ValueError`` naming the file and the reason.

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint file.

    Returns
    -------
    dict
        ``format``, ``version``, ``hmm_pyro`` (the version that wrote it), ``signature`` (the
        run's settings, model and data fingerprint), ``signature_sha256``, ``completed``
        (finished restarts: losses, start, point, draws), ``current`` (the restart in
        progress: ``restart``, ``step``, ``losses``, Pyro param-store values ``params``,
        optimiser state ``optim``, torch RNG state ``torch_rng``; ``None`` between restarts),
        ``numpy_rng``, ``python_rng``.
    """
    header, arrays = read_archive(
        path, "checkpoint", _CHECKPOINT_FORMAT, _CHECKPOINT_VERSION, "an SVI checkpoint"
    )
    label = file_label("checkpoint", path)
    signature = header.get("signature")
    if not isinstance(signature, dict) or header.get("signature_sha256") != signature_checksum(
        signature
    ):
        raise ValueError(f"{label}: its signature does not match its checksum")
    state = decode_state(header.get("state"), arrays, label)
    _check_state(state, signature, label)
    return {key: header[key] for key in ("format", "version", "hmm_pyro", "signature_sha256")} | {
        "signature": signature,
        **state,
    }


# ---------------------------------------------------------------------- the state's shape
def _fail(label: str, where: str, expected: str, value: Any) -> None:
    raise ValueError(f"{label}: {where}: expected {expected}, got {describe(value)}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_params(
    label: str, where: str, value: Any, shapes: dict[str, tuple[int, ...]], batch: int = 0
) -> None:
    """``value`` must map every parameter name to a float tensor of its shape."""
    if not isinstance(value, dict) or set(value) != set(shapes):
        _fail(label, where, f"a dict of the parameters {sorted(shapes)}", value)
    for name, shape in shapes.items():
        tensor = value[name]
        if (
            not isinstance(tensor, torch.Tensor)
            or not tensor.is_floating_point()
            or tuple(tensor.shape[batch:]) != shape
            or tensor.dim() != batch + len(shape)
        ):
            _fail(label, f"{where}[{name!r}]", f"a float tensor of shape {shape}", tensor)


def _check_run(label: str, where: str, run: Any, shapes: dict[str, tuple[int, ...]]) -> None:
    """One finished restart: losses, final loss, convergence, start, point (draws)."""
    if not isinstance(run, dict):
        _fail(label, where, "a dict", run)
    losses = run.get("losses")
    if not isinstance(losses, np.ndarray) or losses.ndim != 1 or losses.dtype.kind != "f":
        _fail(label, f"{where}['losses']", "a 1-D float array", losses)
    if not _is_number(run.get("final_loss")):
        _fail(label, f"{where}['final_loss']", "a number", run.get("final_loss"))
    if not isinstance(run.get("converged"), bool):
        _fail(label, f"{where}['converged']", "True or False", run.get("converged"))
    for key in ("start", "point"):
        _check_params(label, f"{where}[{key!r}]", run.get(key), shapes)
    if "draws" in run:
        _check_params(label, f"{where}['draws']", run["draws"], shapes, batch=1)
    for key, value in run.items():
        if key not in ("losses", "final_loss", "converged", "start", "point", "draws"):
            if not _is_number(value):
                _fail(label, f"{where}[{key!r}]", "a number", value)


def _check_current(label: str, current: Any) -> None:
    """The restart in progress (its parameters are checked against the guide on restore)."""
    if current is None:
        return
    if not isinstance(current, dict):
        _fail(label, "current", "a dict or None", current)
    for key in ("restart", "step"):
        if not _is_int(current.get(key)) or current[key] < 0:
            _fail(label, f"current[{key!r}]", "an integer >= 0", current.get(key))
    losses = current.get("losses")
    if not isinstance(losses, list) or not all(_is_number(x) for x in losses):
        _fail(label, "current['losses']", "a list of numbers", losses)
    if len(losses) != current["step"]:
        _fail(label, "current['losses']", f"{current['step']} losses (one per step)", losses)
    params = current.get("params")
    if not isinstance(params, dict) or not all(
        isinstance(value, torch.Tensor) and value.is_floating_point() for value in params.values()
    ):
        _fail(label, "current['params']", "a dict of float tensors", params)
    if not isinstance(current.get("optim"), dict):
        _fail(label, "current['optim']", "a dict", current.get("optim"))
    rng = current.get("torch_rng")
    wanted = torch.get_rng_state()
    if not isinstance(rng, torch.Tensor) or rng.dtype != wanted.dtype or rng.shape != wanted.shape:
        _fail(label, "current['torch_rng']", f"a uint8 tensor of shape {tuple(wanted.shape)}", rng)


def _check_rng_states(label: str, numpy_rng: Any, python_rng: Any) -> None:
    """NumPy's legacy global state and Python's ``random`` state, as their getters give them."""
    if not (
        isinstance(numpy_rng, tuple)
        and len(numpy_rng) == 5
        and numpy_rng[0] == "MT19937"
        and isinstance(numpy_rng[1], np.ndarray)
        and numpy_rng[1].dtype == np.uint32
        and numpy_rng[1].shape == (_MT_WORDS,)
        and _is_int(numpy_rng[2])
        and 0 <= numpy_rng[2] <= _MT_WORDS
        and _is_int(numpy_rng[3])
        and _is_number(numpy_rng[4])
    ):
        _fail(label, "numpy_rng", "NumPy's global MT19937 state", numpy_rng)
    words = python_rng[1] if isinstance(python_rng, tuple) and len(python_rng) == 3 else None
    if not (
        isinstance(words, tuple)
        and len(words) == _MT_WORDS + 1
        and all(_is_int(word) and 0 <= word < 2**32 for word in words[:-1])
        and _is_int(words[-1])
        and 0 <= words[-1] <= _MT_WORDS
        and python_rng[0] == random.getstate()[0]
        and (python_rng[2] is None or _is_number(python_rng[2]))
    ):
        _fail(label, "python_rng", "Python's random state", python_rng)


def _check_state(state: Any, signature: dict[str, Any], label: str) -> None:
    """Refuse a checkpoint whose state is not what :class:`Checkpointer` writes."""
    if not isinstance(state, dict) or set(state) != set(_STATE_KEYS):
        _fail(label, "state", f"a dict with the keys {list(_STATE_KEYS)}", state)
    try:
        shapes = HMM.from_config(signature["model"]).param_shapes()
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ValueError(f"{label}: its model cannot be rebuilt ({error})") from None
    completed = state["completed"]
    restarts = signature.get("restarts")
    if not isinstance(completed, list) or (_is_int(restarts) and len(completed) > restarts):
        _fail(label, "completed", f"a list of at most {restarts} finished restarts", completed)
    for index, run in enumerate(completed):
        _check_run(label, f"completed[{index}]", run, shapes)
    _check_current(label, state["current"])
    _check_rng_states(label, state["numpy_rng"], state["python_rng"])


class Checkpointer:
    """Writes the state of an SVI run atomically; restores it on resume.

    ``completed`` holds the finished restarts (plain tensors and arrays); ``current`` the restart
    in progress, written every ``every`` steps and when the run is interrupted.

    Parameters
    ----------
    path : str or os.PathLike, optional
        The checkpoint file; ``None`` switches checkpointing off.
    every : int
        Steps between saves of the restart in progress.
    signature : dict
        The run's settings, model and data fingerprint (JSON-able), saved with its SHA-256 and
        checked on resume.
    resume : bool
        Restore the state saved at ``path`` if the file exists (``ValueError`` if it was written
        by a run with another signature, or is not a valid checkpoint); restores NumPy's and
        Python's global RNG states.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        every: int,
        signature: dict[str, Any],
        resume: bool,
    ) -> None:
        self.path = None if path is None else Path(path)
        self.every = every
        self.signature = signature
        self.completed: list[dict[str, Any]] = []
        self.current: dict[str, Any] | None = None
        self.resumed_from: dict[str, int] | None = None
        if self.path is not None and resume and self.path.exists():
            payload = load_checkpoint(self.path)
            _check_signature(payload["signature"], signature, self.path)
            self.completed = payload["completed"]
            self.current = payload["current"]
            np.random.set_state(payload["numpy_rng"])  # noqa: NPY002 - the global state
            random.setstate(payload["python_rng"])
            self.resumed_from = {
                "restart": len(self.completed),
                "step": 0 if self.current is None else int(self.current["step"]),
            }

    @property
    def enabled(self) -> bool:
        """True when a checkpoint path was given."""
        return self.path is not None

    def save(self, current: dict[str, Any] | None) -> None:
        """Write the finished restarts and ``current`` (atomically)."""
        if self.path is None:
            return
        state, arrays = encode_state(
            {
                "completed": self.completed,
                "current": current,
                "numpy_rng": np.random.get_state(),  # noqa: NPY002 - the global state
                "python_rng": random.getstate(),
            }
        )
        header = {
            "signature": _as_json(self.signature),
            "signature_sha256": signature_checksum(_as_json(self.signature)),
            "state": state,
        }
        write_archive(self.path, _CHECKPOINT_FORMAT, _CHECKPOINT_VERSION, header, arrays)

    def finish(self, run: dict[str, Any]) -> None:
        """Record a finished restart and save."""
        self.completed.append({key: value for key, value in run.items() if key != "guide"})
        self.current = None
        self.save(None)

    def take_current(self, restart: int) -> dict[str, Any] | None:
        """The saved in-progress state of ``restart`` (once), or ``None``."""
        current, self.current = self.current, None
        if current is not None and int(current["restart"]) != restart:
            raise ValueError(
                f"checkpoint: holds restart {current['restart']} in progress, expected {restart}"
            )
        return current

    def restore(self, current: dict[str, Any], optim: Any) -> None:
        """Put a saved restart in progress back: param-store values, optimiser, torch RNG.

        The guide must have been built (its parameters created) first: the saved values replace
        those of the same names and shapes, under the constraints the guide declared.

        Parameters
        ----------
        current : dict
            From :meth:`take_current`.
        optim : pyro.optim.PyroOptim
            The restart's optimiser; its per-parameter state is set.
        """
        label = file_label("checkpoint", self.path)
        store = pyro.get_param_store()
        live = store.get_state()
        saved = current["params"]
        if set(saved) != set(live["params"]):
            raise ValueError(
                f"{label}: it holds the parameters {sorted(saved)}, the guide has "
                f"{sorted(live['params'])}"
            )
        for name, value in saved.items():
            wanted = live["params"][name]
            if value.shape != wanted.shape or value.dtype != wanted.dtype:
                _fail(label, f"current['params'][{name!r}]", describe(wanted), value)
        _check_optim(label, current["optim"], saved)
        store.set_state({"params": dict(saved), "constraints": live["constraints"]})
        optim.set_state(current["optim"])
        torch.set_rng_state(current["torch_rng"])


def _check_optim(label: str, optim: dict[str, Any], params: dict[str, torch.Tensor]) -> None:
    """Per-parameter optimiser states as ``torch.optim.Optimizer.state_dict`` gives them."""
    for name, state in optim.items():
        where = f"current['optim'][{name!r}]"
        if name not in params or not isinstance(state, dict):
            _fail(label, where, f"the state of one of the parameters {sorted(params)}", state)
        groups, slots = state.get("param_groups"), state.get("state")
        if not isinstance(groups, list) or not all(
            isinstance(group, dict)
            and all(isinstance(key, str) for key in group)
            and isinstance(group.get("params"), list)
            and all(_is_int(index) for index in group["params"])
            for group in groups
        ):
            _fail(label, f"{where}['param_groups']", "a list of parameter groups", groups)
        if not isinstance(slots, dict) or set(state) != {"state", "param_groups"}:
            _fail(label, where, "a dict with 'state' and 'param_groups'", state)
        shape = params[name].shape
        for index, slot in slots.items():
            if not _is_int(index) or not isinstance(slot, dict):
                _fail(label, f"{where}['state']", "a dict of per-parameter states", slot)
            for key, value in slot.items():
                good = _is_number(value) or (
                    isinstance(value, torch.Tensor)
                    and value.is_floating_point()
                    and value.shape in (shape, torch.Size([]))
                )
                if not good:
                    _fail(label, f"{where}['state'][{index}][{key!r}]", f"shape {shape}", value)


_KIND = {"data": "data set", "model": "model", "runner": "runner"}


def _check_signature(
    saved: dict[str, Any], wanted: dict[str, Any], path: str | os.PathLike[str]
) -> None:
    """Refuse to resume a checkpoint of a run with other settings, another model or other data."""
    wanted = _as_json(wanted)
    keys = sorted(set(saved) | set(wanted))
    different = [key for key in keys if saved.get(key) != wanted.get(key)]
    if different:
        which = [f"another {_KIND[key]}" for key in _KIND if key in different]
        if set(different) - set(_KIND):
            which.append("other settings")
        shown = "; ".join(
            f"{key}: checkpoint {describe(saved.get(key))}, now {describe(wanted.get(key))}"
            for key in different
        )
        raise ValueError(
            f"checkpoint: was written by a run with other settings or data "
            f"({' and '.join(which)}: {shown}); pass resume=False (or a checkpoint path other "
            f"than {str(path)!r}) to start over"
        )


def init_name(init: Any) -> Any:
    """JSON-friendly description of ``init`` for checkpoint signatures."""
    if isinstance(init, str):
        return init
    if isinstance(init, dict):
        return {name: torch.as_tensor(value).tolist() for name, value in sorted(init.items())}
    return "callable"


def check_checkpoint_args(
    checkpoint: str | os.PathLike[str] | None,
    resume: bool,
    callback: Callable[..., Any] | None,
) -> None:
    """Validate the checkpoint arguments shared by the SVI runners."""
    if checkpoint is not None and not isinstance(checkpoint, (str, os.PathLike)):
        raise TypeError(f"checkpoint: expected a path or None, got {describe(checkpoint)}")
    if checkpoint is not None and Path(checkpoint).is_dir():
        raise ValueError(f"checkpoint: expected a file path, got the folder {str(checkpoint)!r}")
    if not isinstance(resume, bool):
        raise TypeError(f"resume: expected True or False, got {describe(resume)}")
    if resume and checkpoint is None:
        raise ValueError("resume: needs a checkpoint path (checkpoint=PATH)")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback: expected a callable or None, got {describe(callback)}")


def resume_seed(
    seed: int | None, checkpoint: str | os.PathLike[str] | None, resume: bool
) -> int | None:
    """``seed``, or the seed saved in ``checkpoint`` when resuming with ``seed=None``."""
    if seed is None and resume and checkpoint is not None and Path(checkpoint).exists():
        saved = load_checkpoint(checkpoint)["signature"].get("seed")
        if not _is_int(saved):
            raise ValueError(f"{file_label('checkpoint', checkpoint)}: holds no seed")
        return saved
    return seed
