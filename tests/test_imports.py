"""No module of keras_ninception imports a module that imports it back.

The import graph is read from the source with `ast` (nothing is imported), as
`../shared/tools/import_cycles.py` reads it: every import counts, also one inside a function
(a local import that exists to dodge a cycle is still one), and a package's `__init__`
re-exporting its own modules is not a cycle.
"""

import ast
import os

PACKAGE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "keras_ninception")


def module_graph(package_dir):
    """`{module: {imported module, ...}}` for the modules (not the `__init__`s) of a package."""
    root = os.path.dirname(os.path.abspath(package_dir))
    package = os.path.basename(os.path.abspath(package_dir))
    imports, packages = {}, set()
    for dirpath, _, files in os.walk(package_dir):
        for file in files:
            if not file.endswith(".py"):
                continue
            path = os.path.join(dirpath, file)
            name = os.path.relpath(path, root)[: -len(".py")].replace(os.sep, ".")
            if file == "__init__.py":
                name = name[: -len(".__init__")]
                packages.add(name)
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read(), path)
            targets = set()
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    targets |= {alias.name for alias in node.names}
                elif isinstance(node, ast.ImportFrom):
                    base = node.module or ""
                    if node.level:  # relative: from the module's package, `level - 1` up
                        parts = name.split(".") if file == "__init__.py" else name.split(".")[:-1]
                        parts = parts[: len(parts) - (node.level - 1)]
                        base = ".".join(parts + ([base] if base else []))
                    targets.add(base)
                    targets |= {f"{base}.{alias.name}" for alias in node.names}
            imports[name] = {t for t in targets if t.split(".")[0] == package}
    modules = set(imports) - packages
    return {m: {t for t in imports[m] if t in modules and t != m} for m in modules}


def find_cycles(graph):
    """Each cycle once, as `[a, b, ..., a]`, found by a depth-first walk."""
    found, state = [], {}

    def visit(module, stack):
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                found.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target, stack)
        stack.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    return found


def write_package(root, files):
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(root / relative.split("/")[0])


def test_keras_ninception_has_no_import_cycle():
    graph = module_graph(PACKAGE_DIR)
    # The walk sees the package: the training modules and their known edges are there.
    assert "keras_ninception.training.run_folder" in graph["keras_ninception.training.run"]
    assert "keras_ninception.training.run_folder" in graph["keras_ninception.training.monitoring"]
    assert "keras_ninception.training.run" in graph["keras_ninception.tuning.run"]
    assert find_cycles(graph) == []


def test_a_cycle_through_a_local_import_is_found(tmp_path):
    package = write_package(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.a import f\n",
            "pkg/a.py": "from pkg import b\n\ndef f():\n    return b.g()\n",
            "pkg/b.py": "def g():\n    from pkg.a import f  # a local import is still an import\n    return f\n",
            "pkg/sub/__init__.py": "",
            "pkg/sub/c.py": "from ..a import f\n",  # relative, no cycle
        },
    )
    graph = module_graph(package)
    assert graph == {"pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}, "pkg.sub.c": {"pkg.a"}}
    assert find_cycles(graph) == [["pkg.a", "pkg.b", "pkg.a"]]


def test_a_three_module_cycle_is_found_once(tmp_path):
    package = write_package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "import pkg.b\n",
            "pkg/b.py": "from pkg.c import x\n",
            "pkg/c.py": "from . import a\nx = 1\n",
        },
    )
    assert find_cycles(module_graph(package)) == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]
