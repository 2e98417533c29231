"""Checkpoints of SVI runs: the file, the checkpointer, the settings check and deferred Ctrl-C.

A checkpoint is a ``torch.save`` pickle written atomically (temporary file, then rename) by
:class:`Checkpointer`: the finished restarts, the restart in progress and the global RNG states.
A run resumes from it only if its settings and data (the *signature*) are those of the run that
wrote it. While checkpointing, Ctrl-C is deferred to the end of the current step
(:func:`deferred_interrupts`) so that the state saved on interruption is consistent.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hmm_pyro._io import atomic_write
from hmm_pyro._validation import describe

__all__ = [
    "Checkpointer",
    "Interrupts",
    "check_checkpoint_args",
    "deferred_interrupts",
    "init_name",
    "load_checkpoint",
    "resume_seed",
]

_CHECKPOINT_FORMAT = "hmm_pyro.svi_checkpoint"
_CHECKPOINT_VERSION = 1


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


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read an SVI checkpoint written by ``fit_svi`` or ``fit_svi_stream``.

    A checkpoint is a ``torch.save`` pickle: load only files you trust.

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint file.

    Returns
    -------
    dict
        ``signature`` (the run's settings), ``completed`` (finished restarts: losses, start,
        point, draws), ``current`` (the restart in progress: ``restart``, ``step``, ``losses``,
        Pyro param-store state ``params``, optimiser state ``optim``, torch RNG state
        ``torch_rng``; ``None`` between restarts), ``numpy_rng``, ``python_rng``.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint: expected an existing file, got {str(path)!r}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        raise ValueError(f"checkpoint: cannot read {str(path)!r}: {error}") from error
    if not isinstance(payload, dict) or payload.get("format") != _CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint: {str(path)!r} is not a hmm_pyro SVI checkpoint")
    return payload


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
        The run's settings and data fingerprint, saved and checked on resume.
    resume : bool
        Restore the state saved at ``path`` if the file exists (``ValueError`` if it was written
        by a run with another signature); restores NumPy's and Python's global RNG states.
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
            _check_signature(payload["signature"], signature)
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
        payload = {
            "format": _CHECKPOINT_FORMAT,
            "version": _CHECKPOINT_VERSION,
            "signature": self.signature,
            "completed": self.completed,
            "current": current,
            "numpy_rng": np.random.get_state(),  # noqa: NPY002 - the global state
            "python_rng": random.getstate(),
        }
        with atomic_write(self.path, "wb") as handle:
            torch.save(payload, handle)

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


def _check_signature(saved: dict[str, Any], wanted: dict[str, Any]) -> None:
    """Refuse to resume a checkpoint of a run with other settings or other data."""
    keys = sorted(set(saved) | set(wanted))
    different = [key for key in keys if saved.get(key) != wanted.get(key)]
    if different:
        shown = "; ".join(
            f"{key}: checkpoint {describe(saved.get(key))}, now {describe(wanted.get(key))}"
            for key in different
        )
        raise ValueError(
            f"checkpoint: was written by a run with other settings or data ({shown}); "
            "pass resume=False (or another checkpoint path) to start over"
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
        return load_checkpoint(checkpoint)["signature"]["seed"]
    return seed
