"""Mutations of real files for the loader fuzz tests (:mod:`tests.test_loaders_fuzz`).

Every mutation reads a valid file, draws what to change from a Hypothesis ``data`` object and
writes the damaged copy; it returns a short name for Hypothesis' statistics. Generic byte
mutations apply to any file; the others know the format:

- ``.npz``/``.npy`` (sequences, SVI checkpoints, saved NUTS chains): members with another
  dtype or shape, NaN/inf, empty or missing or extra members, headers that declare huge
  shapes, pickled object arrays, and for hmm_pyro's own archives edited JSON headers, signed
  again (:func:`resign`) so that the edit reaches the checks behind the checksum;
- NetCDF-4/HDF5 (stores, fits): variables deleted, retyped, reshaped, declared huge (a chunked
  dataset holds no data until written, so a tiny file can declare exabytes), NaN/inf written
  in, groups emptied, attributes deleted or replaced;
- CSV: cells replaced by text, NaN, inf or huge numbers; header or columns changed; rows
  duplicated; a table whose padded sequences would not fit in memory.

A pickled object array carries :class:`Trap`, whose unpickling would create
:data:`TRAP_FILE`: the tests check that it never exists.
"""

from __future__ import annotations

import io
import json
import pathlib
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from hypothesis import strategies as st

from hmm_pyro._archive import HEADER, _digest

TRAP_FILE = Path(tempfile.gettempdir()) / "hmm_pyro_fuzz_trap_was_unpickled"
"""Created if a pickle written by a mutation is ever loaded."""

HUGE = 2**40
"""A dimension no array of which fits in memory (8 TiB of float64 along it alone)."""

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


class Trap:
    """Pickles as a call that creates :data:`TRAP_FILE`."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (pathlib.Path.touch, (TRAP_FILE,))


Mutation = Callable[[Path, Path, st.DataObject], str]


# ---------------------------------------------------------------------- bytes, any file
def flip_bits(source: Path, target: Path, data: st.DataObject) -> str:
    raw = bytearray(source.read_bytes())
    for _ in range(data.draw(st.integers(1, 8), label="flips")):
        offset = data.draw(st.integers(0, len(raw) - 1), label="offset")
        raw[offset] ^= 1 << data.draw(st.integers(0, 7), label="bit")
    target.write_bytes(bytes(raw))
    return "bit flips"


def truncate(source: Path, target: Path, data: st.DataObject) -> str:
    raw = source.read_bytes()
    target.write_bytes(raw[: data.draw(st.integers(0, len(raw) - 1), label="cut")])
    return "truncated"


def splice_garbage(source: Path, target: Path, data: st.DataObject) -> str:
    raw = source.read_bytes()
    start = data.draw(st.integers(0, len(raw) - 1), label="start")
    junk = data.draw(st.binary(min_size=1, max_size=64), label="junk")
    zero = data.draw(st.booleans(), label="zeros")
    junk = bytes(len(junk) * 8) if zero else junk
    target.write_bytes(raw[:start] + junk + raw[start + len(junk) :])
    return "zeroed span" if zero else "garbage span"


def append_garbage(source: Path, target: Path, data: st.DataObject) -> str:
    target.write_bytes(source.read_bytes() + data.draw(st.binary(min_size=1, max_size=256)))
    return "appended bytes"


def replace_whole(source: Path, target: Path, data: st.DataObject) -> str:
    choice = data.draw(st.sampled_from(["empty", "random", "pickle", "text"]), label="whole")
    if choice == "pickle":
        import pickle

        target.write_bytes(pickle.dumps({"state": Trap()}))
    elif choice == "text":
        target.write_text(data.draw(st.text(max_size=200), label="text"), encoding="utf-8")
    else:
        size = 0 if choice == "empty" else data.draw(st.integers(1, 2048), label="size")
        target.write_bytes(data.draw(st.binary(min_size=size, max_size=size), label="bytes"))
    return f"whole file: {choice}"


BYTE_MUTATIONS: list[Mutation] = [
    flip_bits,
    truncate,
    splice_garbage,
    append_garbage,
    replace_whole,
]


# ---------------------------------------------------------------------- arrays
def _array_edit(array: np.ndarray, data: st.DataObject) -> tuple[np.ndarray | Trap, str]:
    """One structural edit of an array: dtype, shape, NaN/inf, empty, pickle, extreme ints."""
    edit = data.draw(
        st.sampled_from(["dtype", "shape", "nonfinite", "empty", "pickle", "extreme"]),
        label="array edit",
    )
    if edit == "dtype":
        dtype = data.draw(
            st.sampled_from(["int8", "uint8", "float32", "complex128", "bool", "<U3", "S2", ">f8"])
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return array.astype(dtype), f"dtype {dtype}"
    if edit == "shape":
        how = data.draw(st.sampled_from(["flat", "axis", "transpose", "slice", "doubled"]))
        if how == "flat":
            return array.reshape(-1), "shape: flattened"
        if how == "axis":
            return array[None], "shape: extra axis"
        if how == "transpose":
            return array.T.copy(), "shape: transposed"
        if how == "slice":
            return array[: data.draw(st.integers(0, max(len(array) - 1, 0)))], "shape: sliced"
        return np.concatenate([array, array]) if array.ndim else array, "shape: doubled"
    if edit == "nonfinite" and array.dtype.kind == "f" and array.size:
        array = array.copy()
        index = data.draw(st.integers(0, array.size - 1))
        array.flat[index] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        return array, "NaN/inf"
    if edit == "extreme" and array.dtype.kind in "iu" and array.size:
        array = array.copy()
        info = np.iinfo(array.dtype)
        array.flat[data.draw(st.integers(0, array.size - 1))] = data.draw(
            st.sampled_from([info.min, info.max, 0])
        )
        return array, "extreme integer"
    if edit == "pickle":
        return Trap(), "pickled object array"
    return np.zeros((0, *array.shape[1:]), dtype=array.dtype), "empty array"


def _npy_bytes(value: np.ndarray | Trap) -> bytes:
    buffer = io.BytesIO()
    if isinstance(value, Trap):
        np.save(buffer, np.array([value], dtype=object), allow_pickle=True)
    else:
        np.save(buffer, value)
    return buffer.getvalue()


def _huge_header(raw: bytes, data: st.DataObject) -> bytes:
    """The same ``.npy`` with its header declaring a huge shape (header length unchanged)."""
    if not raw.startswith(b"\x93NUMPY\x01"):
        return raw
    length = int.from_bytes(raw[8:10], "little")
    header = raw[10 : 10 + length].decode("latin1")
    start, stop = header.index("'shape': (") + len("'shape': ("), header.index(")")
    shape = data.draw(
        st.sampled_from([f"{HUGE},", f"{HUGE}, {HUGE}", "1000000, 1000000", f"{2**62}, 16"]),
        label="huge shape",
    )
    text = header[:start] + shape + header[stop:]
    text = text.rstrip("\n ").ljust(length - 1) + "\n"
    if len(text) != length:
        return raw
    return raw[:10] + text.encode("latin1") + raw[10 + length :]


def read_members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_members(path: Path, members: dict[str, bytes] | list[tuple[str, bytes]]) -> None:
    items = members.items() if isinstance(members, dict) else members
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names
        with zipfile.ZipFile(path, "w") as archive:
            for name, raw in items:
                archive.writestr(name, raw)


def _load_member(raw: bytes) -> np.ndarray:
    return np.load(io.BytesIO(raw), allow_pickle=False)


def resign(members: dict[str, bytes]) -> dict[str, bytes]:
    """Recompute an hmm_pyro archive's content checksum, as a forger would."""
    if HEADER + ".npy" not in members:
        return members
    try:
        header = json.loads(_load_member(members[HEADER + ".npy"]).tobytes())
        arrays = {
            name[:-4]: _load_member(raw)
            for name, raw in members.items()
            if name != HEADER + ".npy" and name.endswith(".npy")
        }
    except (ValueError, OSError, RecursionError):
        return members
    if not isinstance(header, dict):
        return members
    header.pop("content_sha256", None)
    header["content_sha256"] = _digest(header, arrays)
    blob = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    return {**members, HEADER + ".npy": _npy_bytes(blob)}


def edit_member(source: Path, target: Path, data: st.DataObject) -> str:
    members = read_members(source)
    names = sorted(name for name in members if name != HEADER + ".npy")
    name = data.draw(st.sampled_from(names), label="member")
    value, what = _array_edit(_load_member(members[name]), data)
    members[name] = _npy_bytes(value)
    signed = data.draw(st.booleans(), label="resign")
    write_members(target, resign(members) if signed else members)
    return f"member {what}" + (" (re-signed)" if signed else "")


def huge_member(source: Path, target: Path, data: st.DataObject) -> str:
    members = read_members(source)
    name = data.draw(st.sampled_from(sorted(members)), label="member")
    members[name] = _huge_header(members[name], data)
    write_members(target, members)
    return "member declares a huge shape"


def huge_zip_size(source: Path, target: Path, data: st.DataObject) -> str:
    """A member whose zip directory entry declares an enormous uncompressed size."""
    raw = bytearray(source.read_bytes())
    at = raw.find(b"PK\x01\x02")  # first central directory entry
    if at < 0:
        target.write_bytes(bytes(raw))
        return "no central directory"
    size = data.draw(st.sampled_from([2**32 - 1, 2**31, 10**9]), label="declared size")
    raw[at + 20 : at + 24] = size.to_bytes(4, "little")  # compressed size
    raw[at + 24 : at + 28] = size.to_bytes(4, "little")  # uncompressed size
    target.write_bytes(bytes(raw))
    return "zip entry declares a huge size"


def reshape_members(source: Path, target: Path, data: st.DataObject) -> str:
    members = read_members(source)
    how = data.draw(st.sampled_from(["drop", "extra", "rename", "duplicate", "none", "text"]))
    names = sorted(members)
    name = data.draw(st.sampled_from(names), label="member")
    if how == "drop":
        del members[name]
    elif how == "extra":
        members["extra.npy"] = _npy_bytes(np.arange(data.draw(st.integers(0, 5)), dtype=float))
    elif how == "rename":
        members["renamed_" + name] = members.pop(name)
    elif how == "text":
        members[name[:-4] + ".txt"] = b"not an array"
    elif how == "none":
        members = {}
    if how == "duplicate":
        write_members(target, [*members.items(), (name, _npy_bytes(np.zeros(3)))])
        return "members: duplicate"
    signed = data.draw(st.booleans(), label="resign")
    write_members(target, resign(members) if signed else members)
    return f"members: {how}" + (" (re-signed)" if signed else "")


def _edit_json(node: Any, data: st.DataObject, depth: int = 0) -> Any:
    """Replace, delete or keep a random part of a JSON tree."""
    if isinstance(node, dict) and node and depth < 6 and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(node)))
        if data.draw(st.integers(0, 4)) == 0:
            return {k: v for k, v in node.items() if k != key}
        return {**node, key: _edit_json(node[key], data, depth + 1)}
    if isinstance(node, list) and node and depth < 6 and data.draw(st.booleans()):
        index = data.draw(st.integers(0, len(node) - 1))
        return [*node[:index], _edit_json(node[index], data, depth + 1), *node[index + 1 :]]
    return data.draw(JSON_VALUES, label="json value")


def edit_header(source: Path, target: Path, data: st.DataObject) -> str:
    """Edit an hmm_pyro archive's JSON header; usually signed again to pass the checksum."""
    members = read_members(source)
    header = json.loads(_load_member(members[HEADER + ".npy"]).tobytes())
    how = data.draw(
        st.sampled_from(["tree", "version", "format", "hmm_pyro", "model", "data", "deep", "utf8"])
    )
    if how == "tree":
        header = _edit_json(header, data)
    elif how in ("version", "format", "hmm_pyro"):
        header[how] = data.draw(JSON_VALUES)
    elif how == "model":
        header["signature"]["model"]["num_states"] = data.draw(st.sampled_from([1, 7, 10**6]))
    elif how == "data":
        header["signature"]["data"] = "0" * 64
    text = json.dumps(header).encode()
    if how == "deep":
        text = b"[" * 100_000 + b"]" * 100_000
    elif how == "utf8":
        text = b"\xff\xfe" + text
    members[HEADER + ".npy"] = _npy_bytes(np.frombuffer(text, dtype=np.uint8))
    signed = data.draw(st.booleans(), label="resign")
    write_members(target, resign(members) if signed else members)
    return f"header: {how}" + (" (re-signed)" if signed else "")


NPZ_MUTATIONS: list[Mutation] = [edit_member, huge_member, huge_zip_size, reshape_members]
ARCHIVE_MUTATIONS: list[Mutation] = [*NPZ_MUTATIONS, edit_header]


def edit_npy(source: Path, target: Path, data: st.DataObject) -> str:
    how = data.draw(st.sampled_from(["array", "huge"]), label="npy edit")
    if how == "huge":
        target.write_bytes(_huge_header(source.read_bytes(), data))
        return "header declares a huge shape"
    value, what = _array_edit(_load_member(source.read_bytes()), data)
    target.write_bytes(_npy_bytes(value))
    return what


# ---------------------------------------------------------------------- CSV
CELLS = ["", "nan", "inf", "-inf", "abc", "1e999", "0x1F", "9" * 40, '"', "1,2", "\x00", "-1"]


def edit_csv(source: Path, target: Path, data: st.DataObject) -> str:
    lines = source.read_text(encoding="utf-8").splitlines()
    how = data.draw(
        st.sampled_from(["cell", "header", "drop column", "duplicate row", "only header"]),
        label="csv edit",
    )
    if how == "cell":
        row = data.draw(st.integers(1, len(lines) - 1))
        cells = lines[row].split(",")
        column = data.draw(st.integers(0, len(cells) - 1))
        cells[column] = data.draw(st.sampled_from(CELLS) | st.text(max_size=5), label="cell")
        lines[row] = ",".join(cells)
    elif how == "header":
        lines[0] = data.draw(st.sampled_from(["", "a,b,c", "sequence,time", "value,value,value"]))
    elif how == "drop column":
        column = data.draw(st.integers(0, 2))
        lines = [
            ",".join(c for i, c in enumerate(line.split(",")) if i != column) for line in lines
        ]
    elif how == "duplicate row":
        row = data.draw(st.integers(1, len(lines) - 1))
        lines.insert(row, lines[row])
    else:
        lines = lines[:1]
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return f"csv: {how}"


def huge_csv(source: Path, target: Path, data: st.DataObject) -> str:
    """Many one-step sequences and one long one: the padded table would exceed memory."""
    count = data.draw(st.integers(2000, 2500), label="sequences")
    rows = [f"{n},0,1" for n in range(count)] + [f"{count},{t},1" for t in range(40_000)]
    target.write_text("sequence,time,value\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return "csv: padded size beyond memory"


CSV_MUTATIONS: list[Mutation] = [edit_csv, huge_csv]


# ---------------------------------------------------------------------- NetCDF-4 / HDF5
def _datasets(handle: h5py.File) -> list[str]:
    found: list[str] = []
    handle.visititems(
        lambda name, item: found.append(name) if isinstance(item, h5py.Dataset) else None
    )
    return sorted(found)


def edit_hdf5(source: Path, target: Path, data: st.DataObject) -> str:
    shutil.copyfile(source, target)
    with h5py.File(target, "r+") as handle:
        names = _datasets(handle)
        name = data.draw(st.sampled_from(names), label="variable")
        how = data.draw(
            st.sampled_from(["delete", "retype", "reshape", "nonfinite", "huge", "empty", "group"]),
            label="hdf5 edit",
        )
        dataset = handle[name]
        if how == "nonfinite" and dataset.size and dataset.dtype.kind in "fiu":
            index = tuple(data.draw(st.integers(0, n - 1)) for n in dataset.shape)
            if dataset.dtype.kind == "f":
                dataset[index] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
            else:
                info = np.iinfo(dataset.dtype)
                dataset[index] = data.draw(st.sampled_from([info.min, info.max, -1, 0]))
            return "hdf5: NaN/inf or extreme value"
        if how == "group":
            group = name.rsplit("/", 1)[0] if "/" in name else None
            for other in names:
                if group is None or other.startswith(group + "/"):
                    if other in handle and "_Netcdf4Dimid" not in handle[other].attrs:
                        del handle[other]
            return "hdf5: variables of a group deleted"
        values = dataset[()] if dataset.size < 1e6 else np.zeros(1)
        shape, dtype = dataset.shape, dataset.dtype
        del handle[name]
        if how == "delete":
            return "hdf5: variable deleted"
        if how == "huge":
            huge = tuple(HUGE if i == 0 else max(n, 1) for i, n in enumerate(shape or (1,)))
            handle.create_dataset(name, shape=huge, dtype=dtype, chunks=True, maxshape=huge)
            return "hdf5: huge declared shape"
        if how == "empty":
            handle.create_dataset(name, shape=(0, *shape[1:]), dtype=dtype)
            return "hdf5: empty variable"
        if how == "retype":
            kind = data.draw(st.sampled_from(["S5", "int8", "complex128", "bool"]))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                handle.create_dataset(name, data=np.asarray(values).astype(kind))
            return f"hdf5: retyped {kind}"
        new = np.asarray(values)
        new = new.reshape(-1) if new.ndim > 1 else np.stack([new, new])
        handle.create_dataset(name, data=new)
        return "hdf5: reshaped"


def edit_attributes(source: Path, target: Path, data: st.DataObject) -> str:
    shutil.copyfile(source, target)
    with h5py.File(target, "r+") as handle:
        groups = ["/", *[name for name, item in handle.items() if isinstance(item, h5py.Group)]]
        pairs = [(g, key) for g in groups for key in sorted(handle[g].attrs) if key[0] != "_"]
        name, key = data.draw(st.sampled_from(pairs), label="attribute")
        holder = handle[name]
        how = data.draw(st.sampled_from(["delete", "json", "text", "number", "deep", "model"]))
        if how == "delete":
            del holder.attrs[key]
        elif how == "json":
            holder.attrs[key] = json.dumps(data.draw(JSON_VALUES))
        elif how == "text":
            holder.attrs[key] = data.draw(st.text(max_size=20))
        elif how == "number":
            holder.attrs[key] = data.draw(st.integers(-(2**63), 2**63 - 1))
        elif how == "deep":
            holder.attrs[key] = "[" * 50_000 + "]" * 50_000
        else:
            config = {"num_states": data.draw(st.sampled_from([10**6, 0, 2])), "emission": {}}
            holder.attrs[key] = json.dumps(config)
    return f"attributes: {how}"


HDF5_MUTATIONS: list[Mutation] = [edit_hdf5, edit_attributes]
