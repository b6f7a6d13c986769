"""The kernel model's modules import in any order, and the state modules form no import cycle.

A cycle hidden by a function-local import still couples two modules, so local imports count
here; `if TYPE_CHECKING:` imports do not (they never run).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

MM = Path(__file__).resolve().parent.parent / "simulator" / "mm"

# The state and bookkeeping modules (the other ones are the fault and shmem engine's).
STATE = {
    "machine", "task", "memcontrol", "page_alloc", "page_alloc_slowpath", "overcommit",
    "oom_kill", "swapfile", "memfd", "mmap", "mlock", "profiles", "extents", "xarray", "errno",
    "debug", "signal", "file", "inode", "exit", "levels",
}
# Loops the kernel itself has: memcg OOM calls the OOM killer, whose kill uncharges; the OOM
# reaper zaps private pages with memory.c's code, which allocates (and so may OOM).
KNOWN = {("memcontrol", "oom_kill"), ("oom_kill", "memcontrol"), ("oom_kill", "memory")}


def import_graph() -> dict[str, set[str]]:
    """Module -> the sibling modules it imports at run time (local imports included)."""
    mods = {p.stem: p for p in MM.glob("*.py") if p.stem != "__init__"}
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        tree = ast.parse(p.read_text())
        skip: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skip.update(id(sub) for sub in ast.walk(node))
        for node in ast.walk(tree):
            if (isinstance(node, ast.ImportFrom) and node.level == 1 and id(node) not in skip
                    and node.module in mods):
                graph[m].add(node.module)
    return graph


def reaches(graph: dict[str, set[str]], a: str, b: str) -> bool:
    """Whether b can be reached from a."""
    seen, todo = set(), [a]
    while todo:
        v = todo.pop()
        for w in graph[v]:
            if w == b:
                return True
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return False


def test_state_modules_form_no_cycle():
    """No state module lies on an import cycle, once the kernel's own loops are set aside."""
    graph = import_graph()
    for a, b in KNOWN:
        graph[a].discard(b)
    cyclic = sorted(m for m in graph if m in STATE and reaches(graph, m, m))
    assert cyclic == []


def test_every_module_imports_first():
    """Each module can be the first one imported (a cycle would fail in some orders)."""
    names = sorted(p.stem for p in MM.glob("*.py") if p.stem != "__init__")
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    for k in [k for k in sys.modules if k.startswith('simulator')]:\n"
        "        del sys.modules[k]\n"
        "    importlib.import_module('simulator.mm.' + name)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=MM.parent.parent)
