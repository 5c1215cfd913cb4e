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


def gold_imports(path) -> set[str]:
    """The gold modules a file imports, at its top or inside a function (a cycle hidden in a function is a cycle)."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "gold"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "gold":
            if node.level == 0:
                found.add(node.module)
                found |= {f"{node.module}.{a.name}" for a in node.names}  # `from gold import labelers`
    return found


def module_graph() -> dict[str, set[str]]:
    files = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
             for p in (ROOT / "gold").rglob("*.py")}
    return {name: {m for m in gold_imports(p) if m in files and m != name} for name, p in files.items()}


def test_the_engine_has_no_import_cycles():
    """A module may import a package's __init__ above it (gold.steps.train imports gold.steps) but no module is
    reached again by following imports from itself, counting imports inside functions."""
    graph = module_graph()
    cycles = []

    def visit(node, path, seen):
        for nxt in graph[node]:
            if nxt == path[0]:
                cycles.append(" → ".join([*path, nxt]))
            elif nxt not in seen and not path[0].startswith(nxt + "."):
                seen.add(nxt)
                visit(nxt, [*path, nxt], seen)

    for start in graph:
        visit(start, [start], {start})
    assert not cycles, "\n".join(sorted(set(cycles))[:10])


def test_each_step_and_strategy_lives_in_the_file_that_bears_its_name():
    from gold import strategies
    from gold.steps import STEPS

    for name in STEPS:
        assert (ROOT / "gold" / "steps" / f"{name}.py").is_file(), name
    for registry, folder in ((strategies.FEEDBACK, "feedback"), (strategies.NOISE, "noise")):
        for name, module in registry.items():
            assert module == f"gold.strategies.{folder}.{name}", module
            assert (ROOT / "gold" / "strategies" / folder / f"{name}.py").is_file(), module


def test_pages_reach_models_and_data_only_through_the_engine():
    for p in [ROOT / "app.py", *(ROOT / "views").glob("*.py")]:
        assert not imported_modules(p) & {"torch", "transformers", "sqlite3", "sqlite_utils", "umap"}, p


def test_the_served_app_watches_no_source_files():
    """Streamlit's watcher would put the app's folder (venv and default data folder included) under inotify; the
    worker's reads and writes there kept the app on most of a core while a tab was open (bench/app_cpu.py)."""
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["fileWatcherType"] == "none"
