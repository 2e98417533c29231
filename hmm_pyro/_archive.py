"""Data-only files: NumPy arrays read without pickles, sizes checked before anything is allocated.

Files from anyone are read here, so nothing in this module can run code from a file:

- :func:`read_npy` and :func:`read_npz` read ``.npy`` / ``.npz`` files. Object dtypes (the
  only ones NumPy would unpickle) are refused, as is every dtype that is not numeric. Each
  array header is checked against the bytes that follow it: a header that declares more data
  than the file holds is refused before anything is allocated, and so is an array larger than
  the memory available (:func:`check_memory`). Zip members are read to their end, so their
  CRC-32 is verified.
- :func:`write_archive` / :func:`read_archive`: hmm_pyro's own versioned files (SVI
  checkpoints, saved NUTS chains). An uncompressed ``.npz`` whose member ``__header__`` holds
  UTF-8 JSON (format name, format version, the hmm_pyro version that wrote it, SHA-256 of
  the whole content) and whose other members are plain numeric arrays. A file of another
  format, format version or hmm_pyro version, or one whose content no longer matches its
  checksum, is refused with one line that says which.
- :func:`encode_state` / :func:`decode_state` map nested state (dicts, lists, tuples,
  numbers, strings, ``None``, NumPy arrays, torch tensors and parameters) to JSON plus arrays
  and back. Decoding builds nothing but those types.

Every problem with a file is a ``ValueError`` whose message starts with the argument name and
the path (``"checkpoint: '/runs/a.ckpt' ..."``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import sys
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from hmm_pyro._io import atomic_write
from hmm_pyro._version import __version__

__all__ = [
    "HEADER",
    "NUMERIC_KINDS",
    "READ_ERRORS",
    "check_memory",
    "decode_state",
    "encode_state",
    "file_label",
    "memory_available",
    "read_archive",
    "read_npy",
    "read_npz",
    "refuse_pickle",
    "write_archive",
]

HEADER = "__header__"
"""Name of the member that holds an archive's JSON header."""
NUMERIC_KINDS = "biuf"
"""NumPy dtype kinds read: bool, signed and unsigned integers, floats."""
READ_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    OverflowError,
    RecursionError,
    NotImplementedError,
    RuntimeError,
    struct.error,
    zlib.error,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
)
"""What reading a damaged file can raise in ``zipfile``, ``zlib``, ``json`` and NumPy's header
parser (an unknown compression method is a ``NotImplementedError``, an encrypted member a
``RuntimeError``, a JSON header nested too deep a ``RecursionError``)."""
_PICKLE_START = tuple(bytes([0x80, protocol]) for protocol in range(2, 6))
"""A pickle of protocol 2 to 5 starts with the PROTO opcode and its protocol number."""
_TAG = "__kind__"
_MAX_HEADER_BYTES = 64 * 2**20
"""Largest JSON header read (a checkpoint's is a few kilobytes)."""


# ---------------------------------------------------------------------- memory
def memory_available() -> int:
    """Bytes of memory available now (``MemAvailable`` on Linux, else the physical memory)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return sys.maxsize


def _size(nbytes: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def check_memory(nbytes: int, label: str) -> None:
    """Raise ``ValueError`` if ``nbytes`` exceed the memory available (``label`` names what)."""
    available = memory_available()
    if nbytes > available:
        raise ValueError(
            f"{label}: would need {_size(nbytes)} of memory, only {_size(available)} is "
            "available; refused before allocating"
        )


def file_label(what: str, path: str | os.PathLike[str]) -> str:
    """The start of an error message about a file: ``"what: cannot read '/the/path'"``."""
    return f"{what}: cannot read {str(path)!r}"


def refuse_pickle(head: bytes, label: str) -> None:
    """Raise ``ValueError`` if ``head`` (a file's first bytes) starts a pickle."""
    if head[:2] in _PICKLE_START:
        raise ValueError(
            f"{label}: it is a pickle; pickles can run code when loaded and are never read "
            "(an old hmm_pyro checkpoint, or a torch.save/pickle file)"
        )


# ---------------------------------------------------------------------- .npy / .npz
def _read_array(handle: IO[bytes], size: int, label: str, kinds: str) -> np.ndarray:
    """One ``.npy`` array from ``handle``, which holds ``size`` bytes from its position 0."""
    head = handle.read(6)
    refuse_pickle(head, label)
    if head != b"\x93NUMPY":
        raise ValueError(f"{label}: not a .npy array (no NumPy magic string)")
    version = tuple(handle.read(2))
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
    else:
        raise ValueError(f"{label}: .npy format version {version} is not supported")
    if dtype.hasobject:
        raise ValueError(
            f"{label}: it holds Python objects (dtype {dtype}), which would have to be unpickled; "
            "refused"
        )
    if dtype.kind not in kinds or dtype.fields is not None or dtype.subdtype is not None:
        raise ValueError(f"{label}: expected numeric data, got dtype {dtype}")
    if any(length < 0 for length in shape):
        raise ValueError(f"{label}: negative dimension in shape {shape}")
    nbytes = math.prod(shape) * dtype.itemsize
    left = size - handle.tell()
    if nbytes != left:
        raise ValueError(
            f"{label}: its header declares shape {shape} of {dtype} ({nbytes} bytes), the file "
            f"holds {left} bytes of data"
        )
    check_memory(nbytes, label)
    buffer = np.empty(nbytes, dtype=np.uint8)
    view, done = memoryview(buffer), 0
    while done < nbytes:
        count = handle.readinto(view[done:])
        if not count:
            raise ValueError(f"{label}: truncated after {done} of {nbytes} bytes")
        done += count
    if handle.read(1):  # also makes a zip member check its CRC-32
        raise ValueError(f"{label}: holds more data than its header declares")
    array = buffer.view(dtype)
    array = array.reshape(shape[::-1]).transpose() if fortran else array.reshape(shape)
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    return np.ascontiguousarray(array)


def read_npy(path: str | os.PathLike[str], what: str, kinds: str = NUMERIC_KINDS) -> np.ndarray:
    """Read a ``.npy`` file; any problem is a ``ValueError`` naming ``what`` and the path.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    what : str
        The argument the path came from, first word of every error message.
    kinds : str
        Accepted NumPy dtype kinds (default: bool, integers, floats).

    Returns
    -------
    numpy.ndarray
        A writable, C-contiguous array in native byte order.
    """
    label = file_label(what, path)
    try:
        with open(path, "rb") as handle:
            return _read_array(handle, os.fstat(handle.fileno()).st_size, label, kinds)
    except READ_ERRORS as error:
        raise _file_error(label, error) from error


def read_npz(
    path: str | os.PathLike[str],
    what: str,
    kinds: str = NUMERIC_KINDS,
    max_members: int | None = None,
) -> dict[str, np.ndarray]:
    """Read every array of a ``.npz`` archive, in the archive's order, without pickles.

    Parameters
    ----------
    path : str or os.PathLike
        The archive.
    what : str
        The argument the path came from, first word of every error message.
    kinds : str
        Accepted NumPy dtype kinds.
    max_members : int, optional
        Refuse archives with more members than this.

    Returns
    -------
    dict of numpy.ndarray
        Member name (without ``.npy``) to array.
    """
    label = file_label(what, path)
    try:
        return _read_npz(Path(path), label, kinds, max_members)
    except READ_ERRORS as error:
        raise _file_error(label, error) from error


def _read_npz(path: Path, label: str, kinds: str, max_members: int | None) -> dict[str, np.ndarray]:
    with open(path, "rb") as handle:
        refuse_pickle(handle.read(2), label)
    size = path.stat().st_size
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        if max_members is not None and len(members) > max_members:
            raise ValueError(
                f"{label}: it holds {len(members)} members, at most {max_members} read"
            )
        if any(member.filename.endswith(".pkl") for member in members):
            raise ValueError(
                f"{label}: it holds a pickle (a torch.save file, or an old hmm_pyro checkpoint); "
                "pickles can run code when loaded and are never read"
            )
        check_memory(sum(member.file_size for member in members), label)
        arrays: dict[str, np.ndarray] = {}
        for member in members:
            name = member.filename
            if not name.endswith(".npy"):
                raise ValueError(f"{label}: member {name!r} is not a .npy array")
            key = name[: -len(".npy")]
            if key in arrays:
                raise ValueError(f"{label}: member {name!r} appears twice")
            if member.compress_size > size or (
                member.compress_type == zipfile.ZIP_STORED
                and member.compress_size != member.file_size
            ):
                raise ValueError(
                    f"{label}: member {name!r} declares {member.file_size} bytes "
                    f"({member.compress_size} stored), the archive holds {size}"
                )
            with archive.open(member) as stream:
                arrays[key] = _read_array(
                    stream, member.file_size, f"{label}: array {key!r}", kinds
                )
    return arrays


def _file_error(label: str, error: BaseException) -> ValueError:
    """One-line ``ValueError`` for a failed read: ``label`` first, then what went wrong."""
    text = " ".join(str(error).split())
    if text.startswith(label):
        return ValueError(text)
    detail = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return ValueError(f"{label}: {detail[:300]}")


# ---------------------------------------------------------------------- our archives
def _digest(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 of the header (canonical JSON) and of every array's name, dtype, shape, bytes."""
    digest = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(json.dumps([name, array.dtype.str, list(array.shape)]).encode())
        digest.update(array.data)
    return digest.hexdigest()


def write_archive(
    path: str | os.PathLike[str],
    kind: str,
    version: int,
    header: dict[str, Any],
    arrays: dict[str, np.ndarray],
) -> None:
    """Write a versioned archive atomically (see the module notes).

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    kind : str
        Format name, e.g. ``"hmm_pyro.svi_checkpoint"``.
    version : int
        Format version.
    header : dict
        JSON-able fields stored in the header.
    arrays : dict of numpy.ndarray
        Numeric arrays.
    """
    arrays = {name: np.ascontiguousarray(value) for name, value in arrays.items()}
    for name, value in arrays.items():
        if name == HEADER or value.dtype.kind not in NUMERIC_KINDS:
            raise ValueError(f"arrays: cannot store {name!r} ({value.dtype}) in an archive")
    document = {"format": kind, "version": version, "hmm_pyro": __version__, **header}
    document["content_sha256"] = _digest(document, arrays)
    blob = np.frombuffer(json.dumps(document, sort_keys=True).encode(), dtype=np.uint8)
    with atomic_write(path, "wb") as handle:
        np.savez(handle, **{HEADER: blob}, **arrays)


def read_archive(
    path: str | os.PathLike[str], what: str, kind: str, version: int, description: str
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read an archive written by :func:`write_archive`, refusing anything else.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    what : str
        The argument the path came from, first word of every error message.
    kind : str
        The format expected.
    version : int
        The format version this hmm_pyro reads.
    description : str
        What the file should be, in words (``"an SVI checkpoint"``).

    Returns
    -------
    header : dict
        The JSON header (``format``, ``version``, ``hmm_pyro``, ``content_sha256`` and the
        writer's fields).
    arrays : dict of numpy.ndarray
        The other members.

    Raises
    ------
    ValueError
        For a missing file, a pickle, a file that is not an archive of ``kind``, another
        format version, another hmm_pyro version, or content that does not match its
        checksum; one line naming the file and the reason.
    """
    label = file_label(what, path)
    if not Path(path).is_file():
        raise ValueError(f"{what}: expected an existing file, got {str(path)!r}")
    with open(path, "rb") as handle:
        head = handle.read(4)
    refuse_pickle(head, label)
    if not head.startswith(b"PK"):
        raise ValueError(f"{label}: not {description} (not an .npz archive)")
    # Text members are read too, so that a file of an older format (a signature as text) is
    # told apart from a damaged one below; hmm_pyro writes numeric members only.
    arrays = read_npz(path, what, kinds=NUMERIC_KINDS + "U", max_members=100_000)
    blob = arrays.pop(HEADER, None)
    if blob is None or blob.dtype != np.uint8 or blob.ndim != 1:
        raise ValueError(
            f"{label}: not {description} (no {HEADER} JSON member: written by an older "
            "hmm_pyro, or not by hmm_pyro)"
        )
    if blob.size > _MAX_HEADER_BYTES:
        raise ValueError(f"{label}: its header holds {blob.size} bytes, more than a header can")
    try:
        header = json.loads(blob.tobytes().decode("utf-8"))
    except (ValueError, RecursionError) as error:
        raise ValueError(f"{label}: its header is not JSON ({type(error).__name__})") from None
    if not isinstance(header, dict) or header.get("format") != kind:
        found = header.get("format") if isinstance(header, dict) else None
        raise ValueError(f"{label}: not {description} (format {found!r})")
    if header.get("version") != version:
        raise ValueError(
            f"{label}: it is {kind} format version {header.get('version')!r}, this hmm_pyro reads "
            f"version {version}; start over (or delete the file)"
        )
    if header.get("hmm_pyro") != __version__:
        raise ValueError(
            f"{label}: it was written by hmm_pyro {header.get('hmm_pyro')!r}, this is hmm_pyro "
            f"{__version__}: results are reproducible only with the same version; start over "
            "(or delete the file)"
        )
    saved = header.pop("content_sha256", None)
    if saved != _digest(header, arrays):
        raise ValueError(f"{label}: it is damaged, its content does not match its SHA-256 checksum")
    return header, arrays


# ---------------------------------------------------------------------- nested state
def encode_state(state: Any) -> tuple[Any, dict[str, np.ndarray]]:
    """Split nested state into a JSON-able tree and the arrays it refers to.

    Dicts with string keys and lists stay as they are; tuples, dicts with other keys, NumPy
    arrays and torch tensors (with their ``requires_grad`` and whether they are
    ``torch.nn.Parameter``) become tagged dicts; NumPy scalars become Python numbers.

    Parameters
    ----------
    state : object
        Nested dicts, lists and tuples of ``None``, bool, int, float, str, arrays, tensors.

    Returns
    -------
    tree : object
        JSON-able.
    arrays : dict of numpy.ndarray
        Named ``a0``, ``a1``, ... in the order met.

    Raises
    ------
    TypeError
        For any other type.
    """
    arrays: dict[str, np.ndarray] = {}

    def store(array: np.ndarray) -> str:
        name = f"a{len(arrays)}"
        arrays[name] = array
        return name

    def encode(value: Any) -> Any:
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, torch.Tensor):
            return {
                _TAG: "tensor",
                "array": store(value.detach().cpu().numpy()),
                "parameter": isinstance(value, torch.nn.Parameter),
                "requires_grad": bool(value.requires_grad),
            }
        if isinstance(value, np.ndarray):
            return {_TAG: "array", "array": store(value)}
        if isinstance(value, tuple):
            return {_TAG: "tuple", "items": [encode(item) for item in value]}
        if isinstance(value, list):
            return [encode(item) for item in value]
        if isinstance(value, dict):
            if all(isinstance(key, str) for key in value) and _TAG not in value:
                return {key: encode(item) for key, item in value.items()}
            return {_TAG: "dict", "items": [[encode(k), encode(v)] for k, v in value.items()]}
        raise TypeError(f"state: cannot store a {type(value).__name__} in a data-only file")

    return encode(state), arrays


def decode_state(tree: Any, arrays: dict[str, np.ndarray], label: str) -> Any:
    """Rebuild the state :func:`encode_state` split; ``ValueError`` for a malformed tree.

    Parameters
    ----------
    tree : object
        The JSON tree.
    arrays : dict of numpy.ndarray
        The arrays it refers to.
    label : str
        Start of the error messages (the file).

    Returns
    -------
    object
        Dicts, lists, tuples, ``None``, bool, int, float, str, arrays and tensors only.
    """

    def array(node: dict[str, Any]) -> np.ndarray:
        name = node.get("array")
        if not isinstance(name, str) or name not in arrays:
            raise ValueError(f"{label}: it refers to an array {name!r} it does not hold")
        return arrays[name]

    def tensor(node: dict[str, Any]) -> torch.Tensor:
        data = array(node)
        if data.dtype.kind not in NUMERIC_KINDS:
            raise ValueError(f"{label}: a tensor holds {data.dtype} data")
        value = torch.from_numpy(data)
        parameter, grad = node.get("parameter"), node.get("requires_grad")
        if not isinstance(parameter, bool) or not isinstance(grad, bool):
            raise ValueError(f"{label}: a tensor's flags are not booleans")
        if (parameter or grad) and not value.is_floating_point():
            raise ValueError(f"{label}: a {value.dtype} tensor cannot require gradients")
        return (
            torch.nn.Parameter(value, requires_grad=grad)
            if parameter
            else value.requires_grad_(grad)
        )

    def decode(node: Any) -> Any:
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [decode(item) for item in node]
        if not isinstance(node, dict):  # pragma: no cover - json.loads builds nothing else
            raise ValueError(f"{label}: it holds a {type(node).__name__}")
        if _TAG not in node:
            return {key: decode(item) for key, item in node.items()}
        kind = node[_TAG]
        if kind == "tensor":
            return tensor(node)
        if kind == "array":
            return array(node)
        items = node.get("items")
        if kind == "tuple" and isinstance(items, list):
            return tuple(decode(item) for item in items)
        if kind == "dict" and isinstance(items, list):
            if not all(isinstance(pair, list) and len(pair) == 2 for pair in items):
                raise ValueError(f"{label}: a dict's items are not key-value pairs")
            decoded = [(decode(key), decode(value)) for key, value in items]
            if not all(isinstance(key, (str, int, float, bool)) for key, _ in decoded):
                raise ValueError(f"{label}: a dict key is not a number or a string")
            return dict(decoded)
        raise ValueError(f"{label}: it holds an unknown node {kind!r}")

    try:
        return decode(tree)
    except RecursionError:
        raise ValueError(f"{label}: its state is nested too deep") from None
