"""Finished NUTS chains on disk: one ``.npz`` per chain, written atomically, reused on rerun.

A chain file holds the draws (``draw__<name>``), the sample statistics (``stat__<name>``), the
run time, and a JSON ``signature`` of everything that determines the chain (model, data
fingerprint, start, warm-up, draws, chain seed, sampler settings). A rerun with the same folder
reuses a chain only if its signature matches; a file from other settings raises ``ValueError``
rather than being mixed in silently.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from hmm_pyro._io import atomic_write

__all__ = ["chain_path", "chain_signature", "load_chain", "save_chain", "saved_seed"]

_PREFIX = "chain_"


def chain_path(folder: str | os.PathLike[str], chain: int) -> Path:
    """File of chain ``chain`` in ``folder``."""
    return Path(folder) / f"{_PREFIX}{chain}.npz"


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
    with atomic_write(path, "wb") as handle:
        np.savez(handle, signature=np.asarray(signature), seconds=np.asarray(seconds), **arrays)


def load_chain(
    path: str | os.PathLike[str], signature: str
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], float] | None:
    """Read a chain saved with the same ``signature``; ``None`` if there is no file.

    Raises
    ------
    ValueError
        If the file was written with other settings or data, or is not a chain file.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            saved = str(archive["signature"])
            draws = {k[6:]: archive[k] for k in archive.files if k.startswith("draw__")}
            stats = {k[6:]: archive[k] for k in archive.files if k.startswith("stat__")}
            seconds = float(archive["seconds"])
    except (OSError, KeyError, ValueError) as error:
        raise ValueError(f"chain_dir: {str(path)!r} is not a saved chain ({error})") from error
    if saved != signature:
        old, new = json.loads(saved), json.loads(signature)
        different = sorted(key for key in set(old) | set(new) if old.get(key) != new.get(key))
        raise ValueError(
            f"chain_dir: {str(path)!r} holds a chain run with other settings or data "
            f"(differs in {different}); use another folder or delete the file"
        )
    return draws, stats, seconds


def saved_seed(folder: str | os.PathLike[str], chains: int) -> int | None:
    """Master seed recorded by the first saved chain in ``folder``, if any."""
    for chain in range(chains):
        path = chain_path(folder, chain)
        if path.exists():
            try:
                with np.load(path, allow_pickle=False) as archive:
                    return int(json.loads(str(archive["signature"]))["seed"])
            except (OSError, KeyError, ValueError) as error:
                raise ValueError(
                    f"chain_dir: {str(path)!r} is not a saved chain ({error})"
                ) from error
    return None


def chain_signature(**fields: Any) -> str:
    """Canonical JSON of the settings that determine a chain."""
    return json.dumps(fields, sort_keys=True)
