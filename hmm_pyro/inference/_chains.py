"""Finished NUTS chains on disk: one data-only ``.npz`` per chain, written atomically, reused.

A chain file is an archive of :mod:`hmm_pyro._archive` (format ``hmm_pyro.nuts_chain``; see
``docs/files.md``): the draws (``draw__<name>``) and sample statistics (``stat__<name>``) as
plain arrays, and a JSON header with the run time, the *signature* of everything that
determines the chain (model, data fingerprint, start, warm-up, draws, chain seed, sampler
settings) and its SHA-256, the format and hmm_pyro versions and a SHA-256 of the content. A
rerun with the same folder reuses a chain only if all of them match and the arrays have the
shapes the signature implies; anything else (a chain from other settings, another data set or
model, another version, a damaged file, a pickle) raises ``ValueError`` rather than being
mixed in silently. Reading a chain runs no code from the file.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from hmm_pyro._archive import file_label, read_archive, write_archive
from hmm_pyro.model import HMM

__all__ = [
    "CHAIN_STATS",
    "chain_path",
    "chain_signature",
    "load_chain",
    "save_chain",
    "saved_seed",
]

_PREFIX = "chain_"
_FORMAT = "hmm_pyro.nuts_chain"
_VERSION = 2
"""Version 1 files (no header, signature and run time as arrays) are refused: rerun them."""
CHAIN_STATS = {
    "diverging": "b",
    "step_size": "f",
    "acceptance_rate": "f",
    "n_steps": "i",
    "tree_depth": "i",
    "lp": "f",
}
"""Sample statistics of a saved chain and their NumPy dtype kinds, one value per draw."""
_KIND = {"data": "data set", "model": "model"}


def chain_path(folder: str | os.PathLike[str], chain: int) -> Path:
    """File of chain ``chain`` in ``folder``."""
    return Path(folder) / f"{_PREFIX}{chain}.npz"


def _checksum(signature: str) -> str:
    return hashlib.sha256(signature.encode()).hexdigest()


def save_chain(
    path: str | os.PathLike[str],
    draws: dict[str, np.ndarray],
    stats: dict[str, np.ndarray],
    seconds: float,
    signature: str,
) -> None:
    """Write one finished chain atomically."""
    arrays = {f"draw__{name}": value for name, value in draws.items()}
    arrays.update({f"stat__{name}": value for name, value in stats.items()})
    header = {
        "signature": json.loads(signature),
        "signature_sha256": _checksum(signature),
        "seconds": float(seconds),
    }
    write_archive(path, _FORMAT, _VERSION, header, arrays)


def _read(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray], str]:
    """Header, arrays and canonical signature of a chain file (checked against its checksum)."""
    header, arrays = read_archive(path, "chain_dir", _FORMAT, _VERSION, "a saved chain")
    saved = header.get("signature")
    canonical = json.dumps(saved, sort_keys=True)
    if not isinstance(saved, dict) or header.get("signature_sha256") != _checksum(canonical):
        raise ValueError(
            f"{file_label('chain_dir', path)}: its signature does not match its checksum"
        )
    return header, arrays, canonical


def load_chain(
    path: str | os.PathLike[str], signature: str
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], float] | None:
    """Read a chain saved with the same ``signature``; ``None`` if there is no file.

    Raises
    ------
    ValueError
        If the file was written with other settings, model or data, by another format or
        hmm_pyro version, is damaged, or is not a chain file; one line naming the file.
    """
    path = Path(path)
    if not path.exists():
        return None
    header, arrays, saved = _read(path)
    label = file_label("chain_dir", path)
    if saved != signature:
        old, new = json.loads(saved), json.loads(signature)
        different = sorted(key for key in set(old) | set(new) if old.get(key) != new.get(key))
        which = [f"another {_KIND[key]}" for key in _KIND if key in different]
        which += ["other settings"] if set(different) - set(_KIND) else []
        raise ValueError(
            f"chain_dir: {str(path)!r} holds a chain run with other settings or data "
            f"({' and '.join(which)}: differs in {different}); use another folder or delete "
            "the file"
        )
    seconds = header.get("seconds")
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
        raise ValueError(f"{label}: its run time is not a number")
    expected = json.loads(signature)
    shapes = HMM.from_config(expected["model"]).param_shapes()
    count = expected["draws"]
    wanted = {f"draw__{name}": ((count, *shape), "f") for name, shape in shapes.items()}
    wanted.update({f"stat__{name}": ((count,), kind) for name, kind in CHAIN_STATS.items()})
    if set(arrays) != set(wanted):
        raise ValueError(f"{label}: expected the arrays {sorted(wanted)}, got {sorted(arrays)}")
    for name, (shape, kind) in wanted.items():
        array = arrays[name]
        if array.shape != shape or array.dtype.kind != kind:
            raise ValueError(
                f"{label}: array {name!r}: expected shape {shape} of kind {kind!r}, got shape "
                f"{array.shape} of dtype {array.dtype}"
            )
    draws = {name[6:]: value for name, value in arrays.items() if name.startswith("draw__")}
    stats = {name[6:]: value for name, value in arrays.items() if name.startswith("stat__")}
    return draws, stats, float(seconds)


def saved_seed(folder: str | os.PathLike[str], chains: int) -> int | None:
    """Master seed recorded by the first saved chain in ``folder``, if any."""
    for chain in range(chains):
        path = chain_path(folder, chain)
        if path.exists():
            seed = _read(path)[0]["signature"].get("seed")
            if not isinstance(seed, int) or isinstance(seed, bool):
                raise ValueError(f"{file_label('chain_dir', path)}: holds no seed")
            return seed
    return None


def chain_signature(**fields: Any) -> str:
    """Canonical JSON of the settings that determine a chain."""
    return json.dumps(fields, sort_keys=True)
