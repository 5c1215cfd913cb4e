"""Labeler references: the strings that name a candidate labeler in a run's settings (`LabelerSpec.models`).

    teacher               the model that generates (the default)
    none                  nobody reads labels back: the student trains on the labels the teacher was asked for
    seeds                 the run's student model fine-tuned on the task's seeds alone (`gold.seed_labeler`)
    embedded:NAME, a folder or a .gguf file   a local model
    openai:MODEL@BASE_URL an OpenAI-compatible server (openai:MODEL alone: the OpenAI API)

Parsing lives apart from `gold.labelers` (which loads and runs labelers) so that the settings can validate a
reference without importing the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from gold.models import ModelNotFound, resolve

TEACHER = "teacher"
NONE = "none"
SEEDS = "seeds"
ENSEMBLE = "ensemble"


@dataclass(frozen=True)
class LabelerRef:
    """One candidate labeler, parsed from its reference string (see the module docstring)."""

    kind: str  # "teacher" | "none" | "seeds" | "local" | "openai"
    model: str = ""
    base_url: str = ""

    @classmethod
    def parse(cls, text: str) -> "LabelerRef":
        text = str(text or "").strip()
        if text in ("", TEACHER):
            return cls(TEACHER)
        if text in (NONE, SEEDS):
            return cls(text)
        if text.startswith("openai:"):
            rest = text[len("openai:"):]
            model, sep, url = rest.rpartition("@")
            if not sep or not url.startswith(("http://", "https://")):  # no server: the OpenAI API
                model, url = rest, ""
            return cls("openai", model.strip(), url.strip())
        return cls("local", text)

    def __str__(self) -> str:
        if self.kind in (TEACHER, NONE, SEEDS):
            return self.kind
        if self.kind == "openai":
            return f"openai:{self.model}" + (f"@{self.base_url}" if self.base_url else "")
        return self.model

    def problems(self) -> list[str]:
        if self.kind == "openai" and not self.model:
            return [f"The labeler '{self}' names no model: write it as openai:MODEL@BASE_URL."]
        if self.kind == "local":
            try:
                resolve(self.model)
            except ModelNotFound as e:
                return [f"The labeler '{self.model}': {e}"]
        return []
