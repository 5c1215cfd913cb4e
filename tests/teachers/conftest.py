"""The real embedded teacher, loaded once for the whole test session (~15 s, ~1 GB).

It runs on 1 torch thread: tests share a small CPU with other workers, and oversubscribed OpenMP threads
made generation ~3x slower (measured)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def local_teacher():
    from gold.models import ModelNotFound

    try:
        from gold.teachers.local import LocalTeacher

        return LocalTeacher.cached(threads=1)
    except ModelNotFound as e:  # a checkout without `make install`: say so rather than fail obscurely
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def llamacpp_teacher(tmp_path_factory):
    """The same embedded GGUF under llama.cpp, with the weights a run gets by default (the F16 copy, written into
    a data folder of the session's own). `make install` compiles llama-cpp-python (optional: where no compiler is
    at hand the install says so and these tests skip with that reason)."""
    pytest.importorskip("llama_cpp", reason="the optional llama.cpp engine is not installed (`make llama`)")
    from gold.models import ModelNotFound

    saved = os.environ.get("GOLD_HOME")
    os.environ["GOLD_HOME"] = str(tmp_path_factory.mktemp("llamacpp_home"))
    try:
        from gold.teachers.llamacpp import LlamaCppTeacher

        return LlamaCppTeacher.cached(threads=1)
    except ModelNotFound as e:
        pytest.skip(str(e))
    finally:
        if saved is None:
            os.environ.pop("GOLD_HOME", None)
        else:
            os.environ["GOLD_HOME"] = saved
