"""Atomic file writes: write to a temporary file in the target's folder, then rename.

``os.replace`` within one file system is atomic: a reader (or a run killed half-way) sees either
the old file or the complete new one, never a half-written file. A temporary file left by a
process killed with ``SIGKILL`` is named ``.<name>.<random>.tmp<suffix>`` and can be deleted.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_path", "atomic_write", "write_text_atomic"]


def _creation_mode() -> int:
    """Permissions ``open(path, "w")`` would give a new file: ``0o666`` minus the umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_CREATION_MODE = _creation_mode()


def _fsync(path: Path) -> None:
    """Flush a written file to disk (best effort: some file systems refuse)."""
    with contextlib.suppress(OSError):
        handle = os.open(path, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` in one rename.

    The temporary file lies in the same folder as ``path`` (so the rename stays on one file
    system) and keeps its suffix (so that writers that infer the format from the name, such as
    ``matplotlib``'s ``savefig``, still work). On an exception the temporary file is removed
    and ``path`` is left as it was.

    Parameters
    ----------
    path : str or os.PathLike
        The final file. Its folder is created if needed.
    durable : bool
        ``fsync`` the file before the rename, so that a power loss cannot leave an empty file.

    Yields
    ------
    pathlib.Path
        The temporary path (an empty file exists there; writers may overwrite it).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(folder / "numbers.txt") as temporary:
    ...     _ = temporary.write_text("1 2 3")
    >>> (folder / "numbers.txt").read_text()
    '1 2 3'
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a str or os.PathLike, got {type(path).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}"
    )
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        if durable:
            _fsync(temporary)
        # mkstemp creates the file private (0o600); give it the permissions of the file it
        # replaces, or those of a newly created file.
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = _CREATION_MODE
        with contextlib.suppress(OSError):
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str], mode: str = "w", durable: bool = True, **kwargs: Any
) -> Iterator[IO[Any]]:
    """Open a temporary file for writing; on success it replaces ``path`` in one rename.

    Parameters
    ----------
    path : str or os.PathLike
        The final file.
    mode : {"w", "wb"}
        Text or binary.
    durable : bool
        ``fsync`` before the rename.
    **kwargs
        Passed to :func:`open` (e.g. ``encoding``, ``newline``).

    Yields
    ------
    file object
        The open temporary file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "report.json"
    >>> with atomic_write(target) as handle:
    ...     _ = handle.write('{"ok": true}')
    >>> target.read_text()
    '{"ok": true}'
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode: expected 'w' or 'wb', got {mode!r}")
    if mode == "w":
        kwargs.setdefault("encoding", "utf-8")
    with atomic_path(path, durable=durable) as temporary, open(temporary, mode, **kwargs) as handle:
        yield handle


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; return the path.

    Parameters
    ----------
    path : str or os.PathLike
        The final file.
    text : str
        Its content.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    with atomic_write(path) as handle:
        handle.write(text)
    return Path(path)
