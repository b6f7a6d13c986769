"""The import graph of simulator/: no cycles, so each layer imports only the ones below it.

Every `import` counts, at the top of a module or inside a function, except those under
`if TYPE_CHECKING:` (they never run). One cycle is allowed: the kernel's own, memcontrol.c
<-> oom_kill.c (a memcg charge invokes the OOM killer; `pagefault_out_of_memory` calls
`mem_cgroup_oom_synchronize`), which the model keeps as memcg_charge.py <-> oom_kill.py.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ALLOWED_CYCLES = [{"simulator.mm.memcg_charge", "simulator.mm.oom_kill"}]

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "simulator"


def module_name(path: Path) -> str:
    """`simulator.mm.shmem` for simulator/mm/shmem.py, `simulator.mm` for its __init__.py."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Import statements of a module, skipping the bodies of `if TYPE_CHECKING:`."""
    out: list[ast.Import | ast.ImportFrom] = []

    def walk(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for sub in child.orelse:
                    walk(sub)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                out.append(child)
            walk(child)

    walk(tree)
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of simulator/ it imports."""
    files = sorted((ROOT / PACKAGE).rglob("*.py"))
    modules = {module_name(f): f for f in files}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, f in modules.items():
        is_pkg = f.name == "__init__.py"
        package = mod if is_pkg else mod.rpartition(".")[0]
        for node in _imports(ast.parse(f.read_text(), str(f))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - (node.level - 1)]
                    prefix = ".".join(base + ([node.module] if node.module else []))
                else:
                    prefix = node.module or ""
                # `from .mm import memfd` imports the submodule when there is one.
                subs = [f"{prefix}.{a.name}" for a in node.names if f"{prefix}.{a.name}" in modules]
                targets = subs or [prefix]
            for t in targets:
                while t and t not in modules:  # `import simulator.mm.x.y` -> the nearest module
                    t = t.rpartition(".")[0]
                if t and t != mod:
                    graph[mod].add(t)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_the_packages():
    """A sanity check of the parser: known edges are found, TYPE_CHECKING ones are not."""
    g = import_graph()
    assert "simulator.tasks" in g["simulator.simulation"]
    assert "simulator.mm.memfd" in g["simulator.ops"]
    assert "simulator.simulation" not in g["simulator.tasks"]  # only under TYPE_CHECKING


def test_no_import_cycle_but_the_kernels_own():
    """No cycle in simulator/ but memcontrol.c <-> oom_kill.c."""
    bad = []
    for comp in cycles(import_graph()):
        if set(comp) not in ALLOWED_CYCLES:
            bad.append(" <-> ".join(comp))
    assert not bad, "import cycles:\n" + "\n".join(bad)


def test_every_kernel_module_imports_first():
    """Each module of simulator/mm/ can be the first one imported (a cycle hidden by a local
    import would fail in some orders)."""
    mm = ROOT / PACKAGE / "mm"
    names = sorted(p.stem for p in mm.glob("*.py") if p.stem != "__init__")
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    for k in [k for k in sys.modules if k.startswith('simulator')]:\n"
        "        del sys.modules[k]\n"
        "    importlib.import_module('simulator.mm.' + name)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_no_module_over_500_lines():
    """Small modules with one job each: none of simulator/ is over 500 lines."""
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / PACKAGE).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 500}
    assert not long, long


if __name__ == "__main__":  # `python tests/test_layers.py`: print the graph and its cycles
    graph = import_graph()
    for mod in sorted(graph):
        print(mod, "->", ", ".join(sorted(graph[mod])) or "-")
    for comp in cycles(graph):
        print("cycle:", " <-> ".join(comp))
