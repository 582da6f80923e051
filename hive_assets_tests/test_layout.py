"""The package's shape (ARCHITECTURE.md): the domain layer imports no Dagster, and no module imports
itself back through a cycle. Read from the source with `ast`, so lazy (function-level) imports count too."""

from __future__ import annotations

import ast
import gc
import threading
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hive_assets"
# The only modules allowed to talk to Dagster: the wiring, the code location, and the CLI's runner.
DAGSTER_ALLOWED = ("hive_assets.defs", "hive_assets.definitions", "hive_assets.cli._dagster")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def syntax_tree(path: Path) -> ast.AST:
    """`ast.parse`, kept from CPython 3.11.2's spurious "SystemError: AST constructor recursion depth mismatch"
    (Debian's Python, CI's; CPython gh-106905): it failed CI once, in an xdist worker whose earlier tests left
    SQLAlchemy connections to finalize and threads running. So the collector is held while the tree is built
    (a finalizer run then moves the thread's counter), and a parse that still fails so is made again in a thread
    of its own (a fresh thread state)."""
    held = gc.isenabled()
    gc.disable()
    try:
        return ast.parse(path.read_text())
    except SystemError:
        trees: list[ast.AST] = []
        worker = threading.Thread(target=lambda: trees.append(ast.parse(path.read_text())))
        worker.start()
        worker.join()
        return trees[0]  # an IndexError here: the parse failed in the fresh thread too (its error printed above)
    finally:
        if held:
            gc.enable()


def imported_modules(name: str) -> set[str]:
    """Every module `name` imports: `from pkg import sub` counts as `pkg.sub` when `sub` is a module."""
    path = MODULES[name]
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(syntax_tree(path)):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in MODULES else target)
    return out


def test_the_domain_layer_imports_no_dagster():
    offenders = {
        name: sorted(m for m in imported_modules(name) if m.split(".")[0].startswith("dagster"))
        for name in MODULES if not name.startswith(DAGSTER_ALLOWED)
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_every_stage_of_the_loop_is_a_package_with_its_wiring_beside_it():
    stages = ("data", "features", "training", "evaluation", "registry", "rollout", "monitoring", "runs", "simulator",
              "review", "cli")
    for stage in stages:
        assert f"hive_assets.{stage}" in MODULES, stage
    wired = {name.split(".")[2] for name in MODULES if name.startswith("hive_assets.defs.") and name.count(".") >= 3}
    assert wired <= set(stages), wired - set(stages)


def test_no_import_cycles():
    graph = {name: {m for m in imported_modules(name) if m in MODULES and m != name} for name in MODULES}
    # a package's __init__ importing its own children is how packages work, not a cycle
    for name in graph:
        graph[name] = {m for m in graph[name] if not (MODULES[name].name == "__init__.py" and m.startswith(name + "."))}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("light", ["hive_assets.features", "hive_assets.routing", "hive_assets.serving"])
def test_the_stable_import_paths_for_pods_pull_in_nothing_heavy(light):
    import subprocess
    import sys

    code = (f"import sys; import {light}; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'dagster', 'mlflow', 'sklearn', 'xgboost', 'scipy'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_code_location_loads_without_the_model_libraries():
    """A sensor tick, a `hive` verb or a run that never fits pays no scikit-learn or scipy import (1.3 s of
    the location's 3.8 s, BENCHMARKS.md): they load with the first fit, drift test or A/B statistic."""
    import subprocess
    import sys

    code = ("import sys; import hive_assets.definitions; print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'sklearn', 'scipy', 'xgboost', 'mlflow', 'matplotlib', 'skops'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_public_training_name_is_the_one_its_module_defines():
    """`hive_assets.training` loads its scikit-learn parts on first use: each public name, asked for, is the
    one object its private modules hold under that name, and `dir()` lists them all."""
    import importlib
    import pkgutil

    import hive_assets.training as training

    modules = [importlib.import_module(f"hive_assets.training.{m.name}")
               for m in pkgutil.iter_modules(training.__path__)]
    for name in training.__all__:
        [found] = {id(vars(m)[name]): vars(m)[name] for m in modules if name in vars(m)}.values()  # one object
        assert getattr(training, name) is found, name
    assert set(training.__all__) <= set(dir(training))
    with pytest.raises(AttributeError, match="no attribute 'fit'"):
        training.fit


def reachable(name: str) -> set[str]:
    """Every module `name` can import, directly or through others, lazy imports included."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for imported in imported_modules(current) if current in MODULES else ():
            # `import a.b.c` also runs a/__init__ and a/b/__init__
            parts = imported.split(".")
            todo.extend(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return seen


def test_the_serving_client_reaches_no_dagster_on_any_path():
    """Not at import only: whatever the client runs (refresh, model loading, opinions) imports no Dagster,
    so a specialist service installs and runs it without the code location."""
    offenders = {m for m in reachable("hive_assets.serving")
                 if m.split(".")[0] == "dagster" or m.split(".")[0].startswith("dagster_")
                 or m.startswith(DAGSTER_ALLOWED) or m.startswith("hive_assets.cli")}
    assert not offenders, sorted(offenders)


def test_the_serving_client_imports_only_the_standard_library_at_import():
    """Its import time is the standard library's (measured in BENCHMARKS.md): numpy, pandas, MLflow and
    the model libraries load with the first refresh, not with the import."""
    import subprocess
    import sys

    code = ("import sys; before = set(sys.modules); import hive_assets.serving; "
            "print(sorted({m.split('.')[0] for m in set(sys.modules) - before} - set(sys.stdlib_module_names)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['hive_assets']"


def test_a_process_forked_after_importing_the_serving_client_imports_nothing_more():
    """The serving client's at-fork handler runs in every forked child of the process (a service's workers,
    `multiprocessing`, a `preexec_fn`): it imported MLflow there (0.77 s a fork, measured once) to reset sessions
    that a process without MLflow has none of."""
    import subprocess
    import sys

    code = ("import os, sys; import hive_assets.serving; before = set(sys.modules); pid = os.fork()\n"
            "if pid == 0:\n"
            "    print(sorted({m.split('.')[0] for m in set(sys.modules) - before}), flush=True); os._exit(0)\n"
            "os.waitpid(pid, 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
