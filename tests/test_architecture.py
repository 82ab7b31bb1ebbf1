"""DESIGN.md's architecture, checked: imports run one way, and every module declares ``__all__``.

Imports are read from the source with ``ast`` (function-level imports included), so a lazy
import cannot slip past the rule.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {
    "dtsx/engine": "dtsx.engine",
    "dtsx/tasks": "dtsx.tasks",
    "dtsx/connections": "dtsx.connections",
}


def _modules() -> dict[str, Path]:
    found = {}
    for folder, package in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            name = ".".join((package, *parts)).removesuffix(".__init__")
            found[name] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def _project(imports: set[str]) -> set[str]:
    return {name for name in imports if name.startswith("dtsx.")}


# module (or prefix) -> what it may import from the project, by prefix.
ALLOWED = {
    "dtsx.engine.errors": set(),
    "dtsx.engine.model": set(),
    "dtsx.engine.registry": {"dtsx.engine.errors"},
    "dtsx.engine.expressions": {
        "dtsx.engine.errors",
        "dtsx.engine.model",
        "dtsx.engine.expressions",
    },
    # The loader also owns decryption of password-protected packages, kept in a module of its own
    # (a change to DESIGN.md's map: the loader sees the model, the errors and protection).
    "dtsx.engine.loader": {
        "dtsx.engine.errors",
        "dtsx.engine.model",
        "dtsx.engine.registry",
        "dtsx.engine.protection",
        "dtsx.engine.files",
        "dtsx.engine.gcpause",
    },
    "dtsx.engine.protection": {"dtsx.engine.errors"},
    # Opening the files a package names (no FIFO hang, no device read) is one job below everything
    # that reads them: the loader, the connection managers and the tasks.
    "dtsx.engine.files": set(),
    "dtsx.engine.gcpause": set(),
    # Windows paths in packages and --path-map: asked by the planner, connections and tasks alike.
    "dtsx.engine.paths": {"dtsx.engine.errors"},
    "dtsx.engine.writer": {"dtsx.engine.errors", "dtsx.engine.model"},
    "dtsx.engine.events": {"dtsx.engine.errors"},
    "dtsx.tasks.base": {"dtsx.engine.errors", "dtsx.engine.model", "dtsx.engine.registry"},
    "dtsx.connections.base": {"dtsx.engine.errors", "dtsx.engine.registry", "dtsx.engine.files"},
}


def _allowed(module: str) -> set[str] | None:
    for prefix, allowed in ALLOWED.items():
        if module == prefix or module.startswith(prefix + "."):
            return allowed
    return None


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _allowed(m) is not None))
def test_lower_layers_import_only_what_design_allows(module: str) -> None:
    allowed = _allowed(module) or set()
    stray = {
        name
        for name in _project(_imports(MODULES[module]))
        if not any(name == a or name.startswith(a + ".") for a in allowed)
    }
    assert not stray, f"{module} imports {sorted(stray)}; DESIGN.md allows only {sorted(allowed)}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_nothing_imports_the_cli_and_plugins_do_not_reach_up(module: str) -> None:
    imports = _project(_imports(MODULES[module]))
    if module != "dtsx.engine.cli":
        assert "dtsx.engine.cli" not in imports, f"{module} imports the CLI, which only prints"
    if module.startswith(("dtsx.tasks.", "dtsx.connections.")):
        upward = {
            "dtsx.engine.executor",
            "dtsx.engine.plan",
            "dtsx.engine.loader",
            "dtsx.engine.writer",
        }
        assert not imports & upward, f"{module} reaches up into {sorted(imports & upward)}"
    if module.startswith("dtsx.connections."):
        assert not {n for n in imports if n.startswith("dtsx.tasks")}, f"{module} imports a task"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_only_the_smtp_modules_touch_sockets_tls_and_spnego(module: str) -> None:
    imports = {name.split(".")[0] for name in _imports(MODULES[module])}
    if not module.startswith("dtsx.connections.smtp"):
        assert not imports & {"smtplib", "ssl", "spnego"}, (
            f"{module} imports {sorted(imports & {'smtplib', 'ssl', 'spnego'})}"
        )
    if module.startswith("dtsx.tasks."):
        assert "socket" not in imports, f"{module} opens sockets itself"


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
