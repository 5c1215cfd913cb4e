"""Architecture rules: the engine never imports streamlit; pages reach data only through gold/."""

from __future__ import annotations

import ast
import subprocess

from support import PYTHON, ROOT


def imported_modules(path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_engine_never_imports_streamlit():
    offenders = [p for p in (ROOT / "gold").rglob("*.py") if "streamlit" in imported_modules(p)]
    assert offenders == []
    modules = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for p in (ROOT / "gold").rglob("*.py") if p.name != "__main__.py"
    )
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print('streamlit' in sys.modules)"
    r = subprocess.run([PYTHON, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_pages_never_speak_sql():
    for p in [ROOT / "app.py", *(ROOT / "views").glob("*.py")]:
        mods = imported_modules(p)
        assert not mods & {"sqlite3", "sqlite_utils"}, p
        assert "execute(" not in p.read_text(), p
