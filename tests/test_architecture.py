"""The house's shape: imports run one way, without cycles.

Every module of the project's packages is parsed with `ast`; module-level and function-level
imports alike become edges of the import graph. An import inside a function does not hide a cycle
here: a cycle means a piece lives in the wrong module.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("asr", "kws", "common", "corpora", "bench")
# Which packages each package may import (besides itself): bench -> asr/kws -> common;
# corpora (the corpus programs) -> common. asr and kws never import each other.
ALLOWED = {
    "common": set(),
    "asr": {"common"},
    "kws": {"common"},
    "corpora": {"common"},
    "bench": {"asr", "kws", "common", "corpora"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def imported_modules(path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules `path` imports anywhere in its body; `from pkg import mod` counts as pkg.mod."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                     for alias in node.names]
        else:
            continue
        for name in names:
            # `import a.b.c` imports a.b.c; the longest prefix that is a project module is the edge.
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imported_modules(path, modules) - {name} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as [a, b, ..., a], or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            following = next(stack[-1], None)
            if following is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(following) == 1:
                return path[path.index(following):] + [following]
            elif not state.get(following):
                state[following] = 1
                path.append(following)
                stack.append(iter(sorted(graph.get(following, ()))))
    return None


def test_the_cycle_finder_finds_a_cycle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_function_level_imports_are_edges(tmp_path, monkeypatch):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "one.py").write_text("def f():\n    from pkg import two\n    import pkg.three.x\n")
    modules = {"pkg.one": None, "pkg.two": None, "pkg.three": None}
    assert imported_modules(tmp_path / "pkg" / "one.py", modules) == {"pkg.two", "pkg.three"}


def test_the_project_import_graph_has_no_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_run_one_way(package):
    wrong = sorted(f"{module} imports {target}" for module, targets in import_graph().items()
                   if module.split(".")[0] == package for target in targets
                   if target.split(".")[0] not in ALLOWED[package] | {package})
    assert not wrong, f"{package}/ may import only {sorted(ALLOWED[package])}: " + "; ".join(wrong)
