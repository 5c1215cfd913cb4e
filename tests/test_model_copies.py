"""Converted model copies (gold/model_copies.py): named by their source, written whole or not at all, in the
folder the environment names; and the transformers engine's fallback where no copy can be written."""

from __future__ import annotations

import os

import pytest
from support import gguf_header

from gold import gguf_unpacked, model_copies
from gold.models import ModelLocation, embedded_teacher


def test_a_copy_is_named_by_its_source_and_written_once(tmp_path):
    src = tmp_path / "teacher.gguf"
    src.write_bytes(b"weights")
    calls = []

    def write(partial):
        calls.append(partial)
        partial.mkdir()
        (partial / "model.safetensors").write_bytes(b"unpacked")

    target = model_copies.copy_path(src, "transformers", tmp_path / "models")
    assert target.name.startswith("teacher.") and target.name.endswith(".transformers")
    assert model_copies.write_once(target, write) == target and (target / "model.safetensors").is_file()
    assert model_copies.write_once(target, write) == target and len(calls) == 1  # reused
    stat = src.stat()
    os.utime(src, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # an edited source gets a copy of its own
    assert model_copies.copy_path(src, "transformers", tmp_path / "models") != target
    assert model_copies.copy_path(src, "f16.gguf", tmp_path / "models").name.endswith(".f16.gguf")


def test_a_failed_conversion_leaves_neither_a_copy_nor_its_partial(tmp_path):
    target = tmp_path / "models" / "teacher.abc.transformers"

    def half_then_fail(partial):
        partial.mkdir()
        (partial / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("killed mid-way")

    with pytest.raises(RuntimeError, match="killed"):
        model_copies.write_once(target, half_then_fail)
    assert not target.exists() and list((tmp_path / "models").iterdir()) == []
    with pytest.raises(OSError, match="wrote nothing"):
        model_copies.write_once(target, lambda partial: None)
    assert not target.exists()


def test_the_copies_live_in_the_data_folder_unless_the_environment_names_a_shared_folder(tmp_path, monkeypatch):
    monkeypatch.delenv(model_copies.ENV, raising=False)
    monkeypatch.setenv("GOLD_HOME", str(tmp_path / "home"))
    assert model_copies.folder() == (tmp_path / "home" / "models").resolve()
    assert model_copies.folder(tmp_path / "other") == (tmp_path / "other" / "models").resolve()
    monkeypatch.setenv(model_copies.ENV, str(tmp_path / "shared"))
    assert model_copies.folder(tmp_path / "other") == (tmp_path / "shared").resolve()


def test_where_no_copy_can_be_written_the_gguf_itself_is_loaded(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv(model_copies.ENV, str(blocker / "models"))  # a folder cannot be made under a file
    loc = embedded_teacher()
    with pytest.raises(OSError):
        gguf_unpacked.unpacked(loc)
    assert gguf_unpacked.loadable(loc) == loc and loc.gguf_file
    assert gguf_unpacked.loadable(loc.__class__(name="folder", folder=tmp_path)).folder == tmp_path  # not a GGUF


def test_a_model_whose_fp32_copy_would_be_large_or_fill_the_disk_is_loaded_from_its_gguf(tmp_path, monkeypatch):
    """A 7B GGUF unpacked to fp32 would take ~28 GB: such a model loads from the file, as transformers does it."""
    monkeypatch.setenv(model_copies.ENV, str(tmp_path / "models"))
    big = tmp_path / "big.gguf"
    gguf_header(big, 3, size=600 * 2**20)  # Q4_1, 600 MB (sparse): up to 4.7 GB in fp32
    loc = ModelLocation(name="big", folder=tmp_path, gguf_file="big.gguf")
    assert gguf_unpacked.copy_bytes(big) == 8 * 600 * 2**20
    with pytest.raises(OSError, match="would take up to 4.7 GB"):
        gguf_unpacked.unpacked(loc)
    assert gguf_unpacked.loadable(loc) == loc
    small = tmp_path / "small.gguf"
    gguf_header(small, 1, size=2**20)  # F16, 1 MB: 2 MB in fp32
    assert gguf_unpacked.copy_bytes(small) == 2 * 2**20
    monkeypatch.setattr(model_copies, "free_mb", lambda where: 400.0)
    monkeypatch.setenv("GOLD_MIN_FREE_MB", "500")
    with pytest.raises(OSError, match="400 MB free"):  # the disk's last 500 MB stay free for the runs
        gguf_unpacked.unpacked(ModelLocation(name="small", folder=tmp_path, gguf_file="small.gguf"))
    assert not (tmp_path / "models").exists()
