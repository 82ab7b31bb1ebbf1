"""docs/architecture.md's import map, checked: every module's place in a layer, imports that run one
way, and every module declaring ``__all__``.

Imports are read from the source with ``ast`` (function-level and TYPE_CHECKING imports included),
so a lazy import cannot slip past the rule. The tables below are the page's picture; a change to
one is a change to the other, in the same commit.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Lowest first. A module may import any module of a lower layer; within its own layer only what
# SAME_LAYER lists. Names are module prefixes: "dtsx.engine.expressions" covers its submodules.
LAYERS: list[tuple[str, list[str]]] = [
    (
        "foundation",
        [
            "dtsx.engine.errors",
            "dtsx.engine.model",
            "dtsx.engine.files",
            "dtsx.engine.gcpause",
            "dtsx.engine.paths",
            "dtsx.engine.registry",
            "dtsx.engine.references",
            "dtsx.engine.recordset",
        ],
    ),
    (
        "language and state",
        [
            "dtsx.engine.expressions",
            "dtsx.engine.variables",
            "dtsx.engine.events",
            "dtsx.engine.sqltext",
            "dtsx.engine.tsql",
            "dtsx.scripting",
        ],
    ),
    ("plugin contract", ["dtsx.tasks.base", "dtsx.connections.base"]),
    (
        "plugins and tools",
        [
            "dtsx.tasks.send_mail",
            "dtsx.tasks.mail_message",
            "dtsx.tasks.execute_process",
            "dtsx.tasks.file_system",
            "dtsx.tasks.execute_package",
            "dtsx.tasks.expression_task",
            "dtsx.tasks.execute_sql",
            "dtsx.tasks.execute_sql_bindings",
            "dtsx.tasks.execute_sql_run",
            "dtsx.tasks.execute_sql_checks",
            "dtsx.tasks.script_project",
            "dtsx.connections.smtp",
            "dtsx.connections.smtp_auth",
            "dtsx.connections.smtp_options",
            "dtsx.connections.file",
            "dtsx.connections.database",
            "dtsx.connections.db_session",
            "dtsx.connections.db_strings",
            "dtsx.connections.db_targets",
            "dtsx.connections.db_drivers",
            "dtsx.mailsink",
        ],
    ),
    ("reading and writing", ["dtsx.engine.loader", "dtsx.engine.protection", "dtsx.engine.writer"]),
    ("planning", ["dtsx.engine.plan"]),
    (
        "running",
        [
            "dtsx.engine.bind",
            "dtsx.engine.overrides",
            "dtsx.engine.executor",
            "dtsx.engine.containers",
            "dtsx.engine.scheduler",
            "dtsx.engine.dispatch",
            "dtsx.engine.workers",
            "dtsx.engine.results",
            "dtsx.engine.runstate",
            "dtsx.engine.frames",
            "dtsx.engine.scopes",
            "dtsx.engine.taskhost",
            "dtsx.engine.enumerators",
            "dtsx.engine.transactions",
            "dtsx.connections.collection",
        ],
    ),
    ("front end", ["dtsx.engine.cli", "dtsx.engine.render", "dtsx.engine.sqlcheck"]),
    ("harness", ["dtsx.testing"]),
]

# Imports inside a layer, by importing module prefix -> the same-layer prefixes it may import.
SAME_LAYER: dict[str, set[str]] = {
    "dtsx.engine.paths": {"dtsx.engine.errors"},
    "dtsx.engine.registry": {"dtsx.engine.errors"},
    "dtsx.engine.references": {"dtsx.engine.errors", "dtsx.engine.model"},
    "dtsx.engine.expressions": {"dtsx.engine.expressions"},
    "dtsx.engine.variables": {"dtsx.engine.expressions"},
    # Strict T-SQL translation works batch by batch, on sqltext's reading of the text.
    "dtsx.engine.tsql": {"dtsx.engine.sqltext"},
    # Script Tasks' languages: the interpreter, the .NET library shims and their value contract.
    "dtsx.scripting": {"dtsx.scripting"},
    # The Protocols of what a connection hands out (a mail session) are the task's side of it.
    "dtsx.tasks.base": {"dtsx.connections.base"},
    "dtsx.tasks.send_mail": {"dtsx.tasks.mail_message"},
    "dtsx.connections.smtp": {"dtsx.connections.smtp_auth", "dtsx.connections.smtp_options"},
    "dtsx.connections.smtp_auth": {"dtsx.connections.smtp_options"},
    "dtsx.tasks.execute_sql": {
        "dtsx.tasks.execute_sql_bindings",
        "dtsx.tasks.execute_sql_run",
        "dtsx.tasks.execute_sql_checks",
    },
    "dtsx.tasks.execute_sql_run": {"dtsx.tasks.execute_sql_bindings"},
    "dtsx.tasks.execute_sql_checks": {"dtsx.tasks.execute_sql_bindings"},
    # The database managers: the manager classes on the session, the session on the drivers'
    # quirks and the targets (connection string or URL -> driver), the targets on the SQL Server
    # and ODBC mappings of db_targets.
    "dtsx.connections.database": {"dtsx.connections.db_session", "dtsx.connections.db_strings"},
    "dtsx.connections.db_session": {"dtsx.connections.db_drivers", "dtsx.connections.db_strings"},
    "dtsx.connections.db_strings": {"dtsx.connections.db_targets"},
    "dtsx.engine.loader": {"dtsx.engine.protection"},
    # The running layer is one stage split into modules, drawn bottom-up on the page: the records
    # (results, frames, scopes), the pool (workers), enumerators, the Connections and the overrides
    # import nothing of the layer; dispatch and the scheduler sit on the records; the run's books
    # (runstate) on dispatch; the task host on the books; containers on the scheduler; bind on the
    # overrides; the executor assembles them all.
    "dtsx.engine.dispatch": {"dtsx.engine.results", "dtsx.engine.frames"},
    "dtsx.engine.scheduler": {"dtsx.engine.results", "dtsx.engine.frames", "dtsx.engine.workers"},
    "dtsx.engine.runstate": {
        "dtsx.engine.results",
        "dtsx.engine.frames",
        "dtsx.engine.dispatch",
        "dtsx.connections.collection",
    },
    "dtsx.engine.frames": {"dtsx.engine.transactions"},
    "dtsx.engine.taskhost": {
        "dtsx.engine.results",
        "dtsx.engine.frames",
        "dtsx.engine.dispatch",
        "dtsx.engine.runstate",
        "dtsx.engine.transactions",
    },
    "dtsx.engine.containers": {
        "dtsx.engine.results",
        "dtsx.engine.frames",
        "dtsx.engine.enumerators",
        "dtsx.engine.runstate",
        "dtsx.engine.scheduler",
        "dtsx.engine.transactions",
    },
    "dtsx.engine.bind": {"dtsx.engine.overrides", "dtsx.engine.scopes"},
    "dtsx.engine.executor": {
        "dtsx.engine.bind",
        "dtsx.engine.overrides",
        "dtsx.engine.containers",
        "dtsx.engine.scheduler",
        "dtsx.engine.dispatch",
        "dtsx.engine.taskhost",
        "dtsx.engine.runstate",
        "dtsx.engine.workers",
        "dtsx.engine.results",
        "dtsx.engine.frames",
        "dtsx.engine.scopes",
        "dtsx.engine.transactions",
        "dtsx.connections.collection",
    },
    "dtsx.engine.cli": {"dtsx.engine.render", "dtsx.engine.sqlcheck"},
}

# Edges the layering would allow but the page forbids.
CONCRETE_PLUGINS = [
    name
    for name in dict(LAYERS)["plugins and tools"]
    if name.startswith(("dtsx.tasks.", "dtsx.connections."))
    and name != "dtsx.tasks.script_project"  # a reader of the model, not a plugin: no entry point
]


def _forbidden(module: str, imported: str) -> str | None:
    """Why ``module`` must not import ``imported``, or None."""
    if imported == "dtsx.engine.cli" and module != "dtsx.engine.cli":
        return "nothing imports the CLI, which only prints"
    if imported == "dtsx.engine.loader" and _layer(module) == "running":
        if module != "dtsx.engine.bind":
            return "only the bind stage reads packages and configuration files"
    plugin_family = (
        module.split(".")[1] if module.startswith(("dtsx.tasks", "dtsx.connections")) else ""
    )
    if _within(imported, CONCRETE_PLUGINS) and not imported.startswith(f"dtsx.{plugin_family}."):
        # Plugins are found through the registry, so a package pays only for the ones it uses.
        return "a concrete plugin is imported only through its entry point"
    if module.startswith("dtsx.connections.") and imported.startswith("dtsx.tasks"):
        return "connection managers do not know tasks"
    return None


def _within(name: str, prefixes: list[str] | set[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _layer_index(module: str) -> int | None:
    for index, (_, members) in enumerate(LAYERS):
        if _within(module, members):
            return index
    return None


def _layer(module: str) -> str | None:
    index = _layer_index(module)
    return None if index is None else LAYERS[index][0]


def _same_layer_allowed(module: str) -> set[str]:
    for prefix, allowed in SAME_LAYER.items():
        if module == prefix or module.startswith(prefix + "."):
            return allowed
    return set()


def _modules() -> dict[str, Path]:
    found = {}
    for path in (ROOT / "dtsx").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts).removesuffix(".__init__")] = path
    return found


MODULES = _modules()
PACKAGES = {"dtsx", "dtsx.engine", "dtsx.tasks", "dtsx.connections"}


def _imports(path: Path, module: str) -> set[str]:
    names: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            # `from dtsx.engine import executor` imports a module, not a name of the package.
            names.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n.startswith("dtsx") and n not in PACKAGES}


@pytest.mark.parametrize("module", sorted(set(MODULES) - PACKAGES))
def test_every_module_has_a_place_on_the_map(module: str) -> None:
    assert _layer_index(module) is not None, (
        f"{module} is on no layer of docs/architecture.md; add it to the page and to LAYERS"
    )


def _wrong_imports(module: str, path: Path) -> list[str]:
    """Each import of ``path`` (read as ``module``) that the page forbids, with the reason."""
    own = _layer_index(module)
    wrong = []
    for imported in sorted(_imports(path, module)):
        if imported == module or imported.startswith(module + "."):
            continue
        other = _layer_index(imported)
        reason = _forbidden(module, imported)
        if reason is None and (own is None or other is None or other > own):
            reason = f"it is on a higher layer ({_layer(imported)})"
        if reason is None and other == own and not _within(imported, _same_layer_allowed(module)):
            reason = f"the page allows {module} no import of it within the {_layer(module)} layer"
        if reason is not None:
            wrong.append(f"{imported}: {reason}")
    return wrong


@pytest.mark.parametrize("module", sorted(set(MODULES) - PACKAGES))
def test_imports_run_one_way(module: str) -> None:
    wrong = _wrong_imports(module, MODULES[module])
    assert not wrong, f"{module} ({_layer(module)}) imports " + "; ".join(wrong)


def test_the_rule_catches_a_wrong_import(tmp_path: Path) -> None:
    """The checker itself: an executor that reads a package, a task that uses a concrete
    connection manager, a planner that reaches up into the executor are each caught."""
    cases = {
        "dtsx.engine.scheduler": "from dtsx.engine.loader import load\n",
        "dtsx.tasks.send_mail": "def f():\n    from dtsx.connections.smtp import SmtpSession\n",
        "dtsx.engine.plan": "from dtsx.engine import executor\n",
        "dtsx.engine.model": "from dtsx.engine.events import RunEvent\n",
    }
    for module, source in cases.items():
        path = tmp_path / (module.rpartition(".")[2] + ".py")
        path.write_text(source, encoding="utf-8")
        assert _wrong_imports(module, path), (
            f"a wrong import in {module} went unnoticed: {source!r}"
        )


@pytest.mark.parametrize("module", sorted(MODULES))
def test_only_the_smtp_modules_touch_sockets_tls_and_spnego(module: str) -> None:
    imports = {name.split(".")[0] for name in _raw_imports(MODULES[module])}
    if not module.startswith("dtsx.connections.smtp"):
        assert not imports & {"smtplib", "ssl", "spnego"}, (
            f"{module} imports {sorted(imports & {'smtplib', 'ssl', 'spnego'})}"
        )
    if module.startswith("dtsx.tasks."):
        assert "socket" not in imports, f"{module} opens sockets itself"


def _raw_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_declares_all(module: str) -> None:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    names = {
        t.id
        for node in tree.body
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(t, ast.Name)
    }
    package_init = MODULES[module].name == "__init__.py" and len(tree.body) <= 1
    assert "__all__" in names or package_init, f"{module} has no __all__"
