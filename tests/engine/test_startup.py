"""Start-up stays small: a command imports only what the package in hand needs.

Each case runs the real CLI in a fresh interpreter and reads ``sys.modules`` as it exits. Heavy
libraries are imported where they are used: networkx to report a cycle, cryptography to decrypt a
protected package, spnego for NTLM or Kerberos; SQLAlchemy, sqlglot and the database drivers only
by the database plugins, pyarrow and tree-sitter (later plugins) only by the plugins that need them. bench/startup.py measures the time itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HELLO_MAIL = ROOT / "samples" / "hello-mail.dtsx"

# Libraries that no mail-only command needs (the later ones need not be installed to be listed).
HEAVY = (
    "networkx",
    "cryptography",
    "spnego",
    "sqlalchemy",
    "sqlglot",
    "psycopg",
    "pyodbc",
    "pymssql",
    "pyarrow",
    "tree_sitter",
)
# What `dtsx --help` needs is click; it loads no package, plugin or sink.
NOT_FOR_HELP = (*HEAVY, "pydantic", "lxml", "aiosmtpd", "asyncio", "dtsx.engine.model")
# Plugins hello-mail does not use (and the SQL text modules only they use): a run imports a plugin
# only when the package names its key.
OTHER_PLUGINS = (
    "dtsx.tasks.execute_process",
    "dtsx.tasks.execute_package",
    "dtsx.tasks.expression_task",
    "dtsx.tasks.file_system",
    "dtsx.tasks.execute_sql",
    "dtsx.connections.file",
    "dtsx.connections.database",
    "dtsx.engine.sqltext",
    "dtsx.engine.tsql",
)

# Writes the names of every imported module to MODULES_OUT when the command exits.
_PROBE = (
    "import atexit, json, os, sys\n"
    "def dump():\n"
    "    with open(os.environ['MODULES_OUT'], 'w') as out:\n"
    "        json.dump(sorted(sys.modules), out)\n"
    "atexit.register(dump)\n"
    "from dtsx.engine.cli import main\n"
    "main()\n"
)


def imported_by(tmp_path: Path, *args: str) -> set[str]:
    """The modules imported by ``dtsx ARGS``, which must succeed."""
    out = tmp_path / "modules.json"
    env = {**os.environ, "MODULES_OUT": str(out)}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return set(json.loads(out.read_text()))


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` (packages or modules) are among ``modules``."""
    return [n for n in names if any(m == n or m.startswith(n + ".") for m in modules)]


def test_help_imports_only_the_command_line(tmp_path: Path) -> None:
    modules = imported_by(tmp_path, "--help")
    assert loaded(modules, NOT_FOR_HELP) == []


def test_help_of_a_subcommand_imports_only_the_command_line(tmp_path: Path) -> None:
    assert loaded(imported_by(tmp_path, "run", "--help"), NOT_FOR_HELP) == []
    assert loaded(imported_by(tmp_path, "exec", "--help"), NOT_FOR_HELP) == []


def test_list_imports_the_plugins_but_no_engine_library(tmp_path: Path) -> None:
    modules = imported_by(tmp_path, "list")
    assert "dtsx.tasks.send_mail" in modules  # it does look at every plugin
    assert loaded(modules, HEAVY) == []
    assert loaded(modules, ("dtsx.engine.loader", "dtsx.engine.plan", "dtsx.engine.executor")) == []


@pytest.mark.parametrize("command", ["run", "validate"])
def test_a_mail_only_package_imports_no_heavy_library_and_no_other_plugin(
    command: str, tmp_path: Path
) -> None:
    args = [command, str(HELLO_MAIL)]
    if command == "run":
        args += ["--dev-smtp", str(tmp_path / "outbox")]
    modules = imported_by(tmp_path, *args)
    assert "dtsx.tasks.send_mail" in modules and "dtsx.connections.smtp" in modules
    assert loaded(modules, HEAVY) == []
    assert loaded(modules, OTHER_PLUGINS) == []
    if command == "run":
        assert len(list((tmp_path / "outbox").glob("*.eml"))) >= 1  # it really ran


def test_the_probe_sees_a_library_a_command_does_import(tmp_path: Path) -> None:
    """The check above can fail: `show --json` of hello-mail loads the package, so lxml and
    pydantic are there."""
    modules = imported_by(tmp_path, "show", "--json", str(HELLO_MAIL))
    assert loaded(modules, ("lxml", "pydantic", "dtsx.engine.loader")) == [
        "lxml",
        "pydantic",
        "dtsx.engine.loader",
    ]
