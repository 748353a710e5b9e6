"""The layers of docs/architecture.md, enforced on the import graph (every import, including those
inside functions and under ``TYPE_CHECKING``), built by grimp (the engine of import-linter).

pure ``pipeline`` < ``models`` < ``pipeline.store`` < ``pipeline.project`` < ``flows`` | ``review`` < ``cli``
"""

from __future__ import annotations

import functools

import pytest

grimp = pytest.importorskip("grimp")

PACKAGES = ("pipeline", "models", "flows", "review", "cli")


def layer(module: str) -> str:
    if module.startswith(("pipeline.store", "pipeline.project")):
        return ".".join(module.split(".")[:2])
    return module.split(".")[0]


# what each layer may import from the project's own packages (a layer may always import itself)
ALLOWED = {
    "pipeline": {"pipeline"},
    "models": {"pipeline", "models"},
    "pipeline.store": {"pipeline", "pipeline.store"},
    "pipeline.project": {"pipeline", "models", "pipeline.store", "pipeline.project"},
    "flows": {"pipeline", "models", "pipeline.store", "pipeline.project", "flows"},
    "review": {"pipeline", "models", "pipeline.store", "pipeline.project", "review"},
    "cli": {"pipeline", "models", "pipeline.store", "pipeline.project", "flows", "review", "cli"},
}
# third-party packages a layer must never import
FORBIDDEN_EXTERNAL = {
    "pipeline": {"sqlalchemy", "alembic", "prefect", "mlflow", "fastapi", "starlette", "typer"},
    "models": {"sqlalchemy", "alembic", "prefect", "mlflow", "fastapi", "starlette", "typer"},
    "pipeline.store": {"prefect", "mlflow", "fastapi", "typer"},
    "pipeline.project": {"prefect", "mlflow", "fastapi", "typer"},
    "review": {"prefect", "mlflow", "typer"},
    "flows": {"fastapi", "typer"},
}


@functools.cache
def graph():  # type: ignore[no-untyped-def]
    return grimp.build_graph(*PACKAGES, include_external_packages=True)


def own_modules() -> list[str]:
    return sorted(m for m in graph().modules if m.split(".")[0] in PACKAGES and ".migrations" not in m)


def where(importer: str, imported: str) -> str:
    details = graph().get_import_details(importer=importer, imported=imported)
    lines = ", ".join(str(d["line_number"]) for d in details)
    return f"{importer} imports {imported} (line {lines})"


def test_no_upward_or_sideways_import() -> None:
    bad = []
    for m in own_modules():
        for d in graph().find_modules_directly_imported_by(m):
            top = d.split(".")[0]
            if top in PACKAGES:
                if layer(d) not in ALLOWED[layer(m)]:
                    bad.append(where(m, d))
            elif top in FORBIDDEN_EXTERNAL.get(layer(m), set()):
                bad.append(where(m, d))
    assert bad == []


def test_no_import_cycle() -> None:
    """Tarjan's strongly connected components over the project's modules: none larger than one."""
    mods = set(own_modules())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph().find_modules_directly_imported_by(v):
            if w not in mods:
                continue
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
                cycles.append(sorted(comp))

    for m in sorted(mods):
        if m not in index:
            visit(m)
    assert cycles == []


def test_the_checker_sees_imports_inside_functions() -> None:
    """cli.run_commands imports flows only inside its commands: the graph must still see it."""
    assert graph().direct_import_exists(importer="cli.run_commands", imported="cli.flows_commands")
    assert graph().direct_import_exists(importer="cli.flows_commands", imported="flows.process")
