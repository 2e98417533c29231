"""_archive: NumPy files read without pickles or surprises; versioned data-only archives."""

import io
import pickle
import re
import zipfile
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch

from hmm_pyro import _archive
from hmm_pyro._archive import (
    decode_state,
    encode_state,
    read_archive,
    read_npy,
    read_npz,
    write_archive,
)
from hmm_pyro._version import __version__
from tests.file_mutations import TRAP_FILE, Trap

PACKAGE = Path(__file__).resolve().parents[1] / "hmm_pyro"


PIPES_ONLY = {"_pool.py"}
"""Modules that unpickle only the messages of their own worker processes, read from the
workers' standard output and input pipes (the chains' worker pool), never from a file."""


def test_no_code_runs_from_a_file():
    """No loader in the package can unpickle (the issue's grep, and torch.load/pickle.loads).

    The worker pool exchanges pickled tasks and results with the processes it started, over
    their pipes: it is listed in :data:`PIPES_ONLY` and checked to open no file.
    """
    pattern = re.compile(r"weights_only=False|allow_pickle=True|pickle\.loads?\(|torch\.load\(")
    found = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if str(path.relative_to(PACKAGE)) not in PIPES_ONLY
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == []
    for name in PIPES_ONLY:
        source = (PACKAGE / name).read_text(encoding="utf-8")
        assert not re.search(r"\bopen\(|read_bytes\(|\.load\(", source), name


def test_state_round_trip_keeps_types_bits_and_gradient_flags(tmp_path):
    parameter = torch.nn.Parameter(torch.tensor([0.1, -2.5], dtype=torch.float64))
    state = {
        "params": {"AutoDelta.pi": parameter},
        "optim": {"state": {0: {"step": 3, "exp_avg": torch.zeros(2)}}, "betas": (0.9, 0.999)},
        "rng": ("MT19937", np.arange(4, dtype=np.uint32), 2, 0, 0.0),
        "losses": [1.5, float("nan"), float("inf")],
        "flag": np.bool_(True),
        "none": None,
    }
    tree, arrays = encode_state(state)
    write_archive(tmp_path / "s.npz", "test.kind", 3, {"state": tree}, arrays)
    header, loaded = read_archive(tmp_path / "s.npz", "state", "test.kind", 3, "a test file")
    back = decode_state(header["state"], loaded, "state")
    restored = back["params"]["AutoDelta.pi"]
    assert isinstance(restored, torch.nn.Parameter) and restored.requires_grad
    assert torch.equal(restored, parameter)
    assert back["optim"]["state"][0]["step"] == 3 and back["optim"]["betas"] == (0.9, 0.999)
    assert not back["optim"]["state"][0]["exp_avg"].requires_grad
    assert back["rng"][0] == "MT19937" and back["rng"][1].dtype == np.uint32
    assert back["losses"][0] == 1.5 and np.isnan(back["losses"][1]) and back["losses"][2] > 1e308
    assert back["flag"] is True and back["none"] is None
    with pytest.raises(TypeError, match="cannot store a object"):
        encode_state({"x": object()})


def test_archives_of_another_kind_version_or_hmm_pyro_or_with_other_content_are_refused(
    tmp_path,
):
    path = tmp_path / "a.npz"
    write_archive(path, "test.kind", 2, {"x": 1}, {"v": np.arange(3.0)})
    with pytest.raises(ValueError, match=r"not a test file \(format 'test.kind'\)"):
        read_archive(path, "thing", "other.kind", 2, "a test file")
    with pytest.raises(ValueError, match="format version 2, this hmm_pyro reads version 3"):
        read_archive(path, "thing", "test.kind", 3, "a test file")
    with mock.patch.object(_archive, "__version__", "9.9.9"):
        write_archive(path, "test.kind", 2, {"x": 1}, {"v": np.arange(3.0)})
    with pytest.raises(ValueError, match=f"hmm_pyro '9.9.9', this is hmm_pyro {__version__}"):
        read_archive(path, "thing", "test.kind", 2, "a test file")
    # Content changed behind the header's back: the checksum no longer matches.
    write_archive(path, "test.kind", 2, {"x": 1}, {"v": np.arange(3.0)})
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    buffer = io.BytesIO()
    np.save(buffer, np.arange(3.0) + 1)
    members["v.npy"] = buffer.getvalue()
    with zipfile.ZipFile(path, "w") as archive:
        for name, raw in members.items():
            archive.writestr(name, raw)
    with pytest.raises(ValueError, match=r"^thing: cannot read '.*a\.npz': it is damaged"):
        read_archive(path, "thing", "test.kind", 2, "a test file")


def test_pickles_are_refused_and_never_run(tmp_path):
    TRAP_FILE.unlink(missing_ok=True)
    np.save(tmp_path / "objects.npy", np.array([Trap()], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "objects.npz", a=np.array([Trap()], dtype=object))
    (tmp_path / "plain.pkl").write_bytes(pickle.dumps(Trap()))
    torch.save({"state": Trap()}, tmp_path / "torch.ckpt")
    with pytest.raises(ValueError, match=r"objects\.npy'.*Python objects"):
        read_npy(tmp_path / "objects.npy", "path")
    with pytest.raises(ValueError, match=r"objects\.npz'.*Python objects"):
        read_npz(tmp_path / "objects.npz", "path")
    with pytest.raises(ValueError, match=r"plain\.pkl': it is a pickle"):
        read_archive(tmp_path / "plain.pkl", "checkpoint", "k", 2, "a checkpoint")
    with pytest.raises(ValueError, match=r"torch\.ckpt': it holds a pickle"):
        read_archive(tmp_path / "torch.ckpt", "checkpoint", "k", 2, "a checkpoint")
    assert not TRAP_FILE.exists()


def _npy_with_shape(shape: str) -> bytes:
    """A small float64 ``.npy`` whose header declares ``shape`` (header length unchanged)."""
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(4))
    raw = buffer.getvalue()
    length = int.from_bytes(raw[8:10], "little")
    header = raw[10 : 10 + length].decode("latin1").replace("(4,)", f"({shape})")
    return raw[:10] + (header.rstrip("\n ").ljust(length - 1) + "\n").encode("latin1")


def test_huge_declared_shapes_are_refused_before_allocating(tmp_path):
    (tmp_path / "huge.npy").write_bytes(_npy_with_shape(f"{2**40},"))
    with (
        mock.patch.object(np, "empty", side_effect=AssertionError("allocated")),
        pytest.raises(ValueError, match=r"huge.npy'.*declares shape \(1099511627776,\)"),
    ):
        read_npy(tmp_path / "huge.npy", "path")
    # A consistent file larger than the memory available is refused before it is read.
    np.save(tmp_path / "big.npy", np.zeros(1000))
    with (
        mock.patch.object(_archive, "memory_available", return_value=4000),
        pytest.raises(ValueError, match=r"big.npy'.*would need 7.8 KiB of memory, only 3.9 KiB"),
    ):
        read_npy(tmp_path / "big.npy", "path")
    # A zip entry that declares more bytes than the archive holds.
    np.savez(tmp_path / "z.npz", a=np.zeros(8))
    raw = bytearray((tmp_path / "z.npz").read_bytes())
    at = raw.find(b"PK\x01\x02")
    raw[at + 20 : at + 28] = (2**32 - 1).to_bytes(4, "little") * 2
    (tmp_path / "z.npz").write_bytes(bytes(raw))
    with (
        mock.patch.object(_archive, "memory_available", return_value=2**30),
        pytest.raises(ValueError, match=r"z\.npz'.*would need 4\.0 GiB"),
    ):
        read_npz(tmp_path / "z.npz", "path")


def test_npz_reads_numeric_members_in_order_and_refuses_other_members(tmp_path):
    np.savez(tmp_path / "a.npz", second=np.arange(3), first=np.ones((2, 2), order="F"))
    arrays = read_npz(tmp_path / "a.npz", "path")
    assert list(arrays) == ["second", "first"]
    assert arrays["first"].flags.writeable and arrays["first"].flags.c_contiguous
    np.save(tmp_path / "big_endian.npy", np.arange(3, dtype=">f8"))
    assert read_npy(tmp_path / "big_endian.npy", "path").dtype == np.float64
    with zipfile.ZipFile(tmp_path / "b.npz", "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(ValueError, match=r"b.npz'.*member 'notes.txt' is not a .npy array"):
        read_npz(tmp_path / "b.npz", "path")
    np.save(tmp_path / "text.npy", np.array(["a", "b"]))
    with pytest.raises(ValueError, match=r"text.npy'.*expected numeric data, got dtype <U1"):
        read_npy(tmp_path / "text.npy", "path")
    assert read_npy(tmp_path / "text.npy", "path", kinds="U").tolist() == ["a", "b"]
