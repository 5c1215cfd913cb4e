"""Teachers: the models that write training data. `base` holds the protocol and shared types; `local`
(transformers, the embedded SmolLM2 by default), `llamacpp` (the same GGUF under llama.cpp, optional) and
`remote` (any OpenAI-compatible server) implement it.
The implementations are imported lazily: `local` needs torch, `remote` needs openai, and a caller that only
builds prompts should pay for neither."""

import os

from gold.teachers.base import (
    BudgetExceeded,
    Completion,
    GenerationSettings,
    Prompt,
    PromptStyle,
    Teacher,
    TeacherError,
    Usage,
    default_stop,
)

__all__ = [
    "BudgetExceeded", "Completion", "GenerationSettings", "Prompt", "PromptStyle", "Teacher", "TeacherError",
    "Usage", "default_stop", "local_teacher", "LocalTeacher", "LlamaCppTeacher", "OpenAITeacher",
]


def resolved_engine(engine: str, model: str) -> str:
    """The engine "auto" stands for: llama.cpp when llama-cpp-python is installed and the model is a GGUF file
    (on a CPU it loads in a fraction of a second and runs the quantized weights natively), else transformers,
    which is also what a machine with a CUDA GPU gets (llama.cpp is built here for the CPU). Any other engine is
    itself."""
    if engine != "auto":
        return engine
    from gold.models import ModelNotFound, resolve
    from gold.teachers.llamacpp import available

    if not available():
        return "transformers"
    if os.path.exists("/proc/driver/nvidia/version"):  # an NVIDIA driver, read without importing torch
        return "transformers"
    try:
        return "llama.cpp" if resolve(model).gguf_file else "transformers"
    except ModelNotFound:
        return "transformers"


def local_teacher(model: str, engine: str = "auto", device: str | None = None, threads: int | None = None,
                  gguf_weights: str = "auto", sequences: int | None = None):
    """The loaded local teacher for a model and engine (cached per process): the worker's rounds and
    `gold serve` both get theirs here. llama.cpp runs on the CPU, so `device` only applies to transformers, and
    `gguf_weights` (the file's own or an F16 copy, `gold.teachers.gguf_weights`) and `sequences` (replies decoded
    together, None = the engine's default) only to llama.cpp."""
    if resolved_engine(engine, model) == "llama.cpp":
        from gold.teachers.llamacpp import DEFAULT_SEQUENCES, LlamaCppTeacher

        return LlamaCppTeacher.cached(model, threads=threads, weights=gguf_weights,
                                      sequences=sequences or DEFAULT_SEQUENCES)
    from gold.teachers.local import LocalTeacher

    return LocalTeacher.cached(model, device, threads=threads)


def __getattr__(name: str):
    if name == "LocalTeacher":
        from gold.teachers.local import LocalTeacher

        return LocalTeacher
    if name == "LlamaCppTeacher":
        from gold.teachers.llamacpp import LlamaCppTeacher

        return LlamaCppTeacher
    if name == "OpenAITeacher":
        from gold.teachers.remote import OpenAITeacher

        return OpenAITeacher
    raise AttributeError(name)
