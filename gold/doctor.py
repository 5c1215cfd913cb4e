"""`python -m gold doctor`: finds and loads each embedded model once, and reports versions and timings.

It is the first thing to run on a new machine: it proves the weights came with the packages (no hub), that
they load with the installed torch/transformers, and how long loading takes here.
"""

from __future__ import annotations

import importlib.metadata
import platform
import time
from dataclasses import dataclass, field

from gold import gguf_unpacked, models

PACKAGES = ("torch", "transformers", "accelerate", "gguf", "streamlit", "openai", "plotly", "umap-learn",
            "sqlite-utils", models.TEACHER_DIST, models.ENCODER_DIST, "llama-cpp-python", models.GEMMA_DIST)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    seconds: float = 0.0


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in PACKAGES:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "missing"
    return out


def check_teacher() -> Check:
    t0 = time.perf_counter()
    try:
        loc = models.embedded_teacher()
    except models.ModelNotFound as e:
        return Check("teacher", False, str(e))
    models.force_offline()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = gguf_unpacked.loadable(loc)  # what the transformers engine loads: the GGUF's unpacked copy
    tok = AutoTokenizer.from_pretrained(source.folder, gguf_file=source.gguf_file)
    model = AutoModelForCausalLM.from_pretrained(source.folder, gguf_file=source.gguf_file, dtype=torch.float32)
    load_s = time.perf_counter() - t0
    ids = tok("Here is a movie review:", return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**ids, max_new_tokens=8, do_sample=False, pad_token_id=tok.eos_token_id)
    text = tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    n_params = sum(p.numel() for p in model.parameters())
    return Check(
        "teacher",
        True,
        f"{loc.name} from {loc.weights} ({n_params / 1e6:.0f}M params), loaded in {load_s:.1f} s"
        + (f" (transformers reads its unpacked copy, {source.folder.name})" if source.folder != loc.folder else "")
        + "; "
        f"8 greedy tokens: {text.strip()[:40]!r}",
        time.perf_counter() - t0,
    )


def check_llamacpp() -> Check:
    """The optional llama.cpp engine: absent is fine (the transformers engine always works), broken is not."""
    from gold.teachers import llamacpp

    if not llamacpp.available():
        return Check("teacher on llama.cpp", True, f"optional engine not installed: {llamacpp.INSTALL_HINT}")
    t0 = time.perf_counter()
    try:
        from gold.teachers.base import GenerationSettings

        teacher = llamacpp.LlamaCppTeacher()
        text = teacher.generate(["Here is a movie review:"], GenerationSettings(temperature=0, max_new_tokens=8,
                                                                                stop=()))[0].text
    except Exception as e:  # a wheel built for another CPU, a missing shared library: say so, do not crash
        return Check("teacher on llama.cpp", False, f"llama-cpp-python is installed but does not run: {e}")
    return Check("teacher on llama.cpp", True, f"{teacher.name} loaded in {teacher.load_seconds:.1f} s with "
                 f"{teacher.threads} thread(s), weights {teacher.weights_note}, {teacher.sequences} replies "
                 f"decoded together; 8 greedy tokens: "
                 f"{text.strip()[:40]!r}", time.perf_counter() - t0)


def check_gemma() -> Check:
    """The optional Gemma-3-270m teacher: found or not, never loaded here (a minute on a small CPU); absent is
    fine, since only `make gemma` installs it, under the Gemma Terms of Use."""
    t0 = time.perf_counter()
    try:
        loc = models.gemma_teacher()
    except models.ModelNotFound as e:
        return Check("teacher Gemma-3-270m (optional)", True, str(e))
    return Check("teacher Gemma-3-270m (optional)", True,
                 f"{loc.name} from {loc.weights}, as '{models.GEMMA_TEACHER}'; weights under {models.GEMMA_TERMS}",
                 time.perf_counter() - t0)


def check_encoder() -> Check:
    t0 = time.perf_counter()
    try:
        loc = models.embedded_encoder()
    except models.ModelNotFound as e:
        return Check("student/encoder", False, str(e))
    models.force_offline()
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(loc.folder)
    model = AutoModel.from_pretrained(loc.folder)
    load_s = time.perf_counter() - t0
    with torch.inference_mode():
        h = model(**tok(["a quick check"], return_tensors="pt")).last_hidden_state
    n_params = sum(p.numel() for p in model.parameters())
    return Check(
        "student/encoder",
        True,
        f"{loc.name} from {loc.folder} ({n_params / 1e6:.1f}M params, hidden {h.shape[-1]}), loaded in {load_s:.1f} s",
        time.perf_counter() - t0,
    )


def run_doctor() -> DoctorReport:
    report = DoctorReport(versions=_versions())
    report.checks.append(check_encoder())
    report.checks.append(check_teacher())
    report.checks.append(check_llamacpp())
    report.checks.append(check_gemma())
    return report
