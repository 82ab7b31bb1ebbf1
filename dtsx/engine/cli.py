"""The ``dtsx`` command. The only module that prints.

Exit codes are dtexec's: 0 success, 1 failure, 3 canceled, 4 package not found,
5 load or validation failure, 6 usage or internal error.
"""

from __future__ import annotations

import gc
import os
import pathlib
import re
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    from dtsx.connections.base import Redirect
    from dtsx.engine.events import LogSink
    from dtsx.engine.executor import RunOptions, RunResult
    from dtsx.engine.model import Executable, Package
    from dtsx.engine.overrides import PropertySet
    from dtsx.engine.errors import Problem
    from dtsx.engine.plan import Plan
    from dtsx.engine.registry import PluginEntry
    from dtsx.mailsink import MailSink
    from dtsx.tasks.script_project import ScriptProject, ScriptSource

__all__ = ["main", "cli"]

EXIT_SUCCESS = 0
EXIT_FAILURE = 1
EXIT_CANCELED = 3
EXIT_NOT_FOUND = 4
EXIT_LOAD_FAILED = 5
EXIT_USAGE = 6


# Whether --debug was given: main() then lets an unexpected error show its traceback.
_DEBUG = threading.Event()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dtsx")
@click.option(
    "--debug",
    is_flag=True,
    help="Show the exception chain, with tracebacks, of an internal error (also DTSX_DEBUG=1, or "
    "--debug after run/exec).",
)
def cli(debug: bool) -> None:
    """Run SQL Server Integration Services (.dtsx) packages."""
    if debug:
        _DEBUG.set()


def _fail(message: str, code: int) -> NoReturn:
    """Print one ``dtsx: ...`` line on stderr and exit with a dtexec code."""
    click.echo(f"dtsx: {message}", err=True)
    raise SystemExit(code)


# Commands are registered below, one section per command, each owned by one module's author.


# --- dtsx mailsink (dtsx/mailsink.py) -----------------------------------------------------------


@cli.command("mailsink")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=2525,
    show_default=True,
    help="TCP port to listen on; 0 lets the system pick a free one.",
)
@click.option(
    "--dir",
    "directory",
    required=True,
    type=click.Path(file_okay=False, path_type=pathlib.Path),
    help="Folder where each message is stored as a .eml file (created if missing).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--max-size",
    type=click.IntRange(0),
    default=None,
    metavar="BYTES",
    help="Largest message taken, advertised as SIZE (default 100 MiB; 0 = no limit).",
)
def mailsink_command(port: int, directory: pathlib.Path, host: str, max_size: int | None) -> None:
    """Run a local SMTP server that stores every message it receives; Ctrl-C stops it."""
    from dtsx.mailsink import MailSink
    from dtsx.engine.errors import DtsxError

    def received(path: pathlib.Path) -> None:
        env = MailSink.envelope(path)
        click.echo(
            f"received {path.name} from <{env['mail_from']}> to {', '.join(env['rcpt_tos'])}"
        )

    try:
        limit = {} if max_size is None else {"max_message_size": max_size}
        sink = MailSink(directory, host=host, port=port, on_message=received, **limit)
        sink.start()
    except DtsxError as exc:
        _fail(str(exc), EXIT_FAILURE)
    except OSError as exc:  # the folder or the address, as the system refused it
        where = exc.filename if exc.filename is not None else f"{host}:{port}"
        _fail(
            f"mailsink: cannot use {where}: {exc.strerror or exc}; choose another --dir, --host or "
            "--port.",
            EXIT_FAILURE,
        )
    click.echo(
        f"dtsx mailsink: listening on {host}:{sink.port}; messages are stored in "
        f"{directory.resolve()} (Ctrl-C to stop)"
    )
    if host not in ("127.0.0.1", "::1", "localhost"):
        click.echo(
            f"dtsx mailsink: warning: {host} is not a loopback address; other machines can send "
            "here",
            err=True,
        )
    stop = threading.Event()
    # Both signals set the event, so Ctrl-C works even where SIGINT was inherited as ignored.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sink.stop()
    click.echo("dtsx mailsink: stopped")


# --- dtsx validate / show / graph (loader, planner, render) ----------------------------------


_PROJECT_DIR_HELP = (
    "Folder with the project's .conmgr files and Project.params (default: the package's folder)."
)
# validate, show and graph take the same option.
_project_dir_option = click.option(
    "--project-dir", type=click.Path(file_okay=False), default=None, help=_PROJECT_DIR_HELP
)
_DECRYPT_HELP_ENV = (
    "Environment variable holding the password of an EncryptAllWithPassword or "
    "EncryptSensitiveWithPassword package (dtexec /Decrypt)."
)
_DECRYPT_HELP_FILE = "File holding that password (the line break at its end is ignored)."


def _decrypt_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--decrypt-env / --decrypt-file: the package password, never on the command line itself."""
    command = click.option("--decrypt-file", default=None, metavar="FILE", help=_DECRYPT_HELP_FILE)(
        command
    )
    return click.option("--decrypt-env", default=None, metavar="VARIABLE", help=_DECRYPT_HELP_ENV)(
        command
    )


def _package_password(env: str | None, file: str | None) -> str | None:
    """The password --decrypt-env or --decrypt-file names; a missing one is a usage error (6)."""
    if env is not None and file is not None:
        _fail(
            "give the package password once: --decrypt-env or --decrypt-file, not both.", EXIT_USAGE
        )
    if env is not None:
        value = os.environ.get(env)
        if value is None:
            _fail(
                f"--decrypt-env {env}: that environment variable is not set; export it with the "
                "package password.",
                EXIT_USAGE,
            )
        return value
    if file is not None:
        from dtsx.engine.files import read_secret_file

        try:
            return read_secret_file(file)
        except (OSError, UnicodeDecodeError) as exc:
            _fail(
                f"--decrypt-file {file}: cannot read it ({getattr(exc, 'strerror', None) or exc}).",
                EXIT_USAGE,
            )
    return None


def _load_or_exit(path: str, project_dir: str | None, password: str | None = None) -> Package:
    """Load one package; a load error is one line on stderr and exit 4 (missing) or 5."""
    from dtsx.engine.errors import PackageLoadError, PackageNotFoundError
    from dtsx.engine.loader import load

    try:
        return load(path, project_dir=project_dir, password=password)
    except PackageNotFoundError as exc:
        _fail(str(exc), EXIT_NOT_FOUND)
    except PackageLoadError as exc:
        _fail(str(exc), EXIT_LOAD_FAILED)


@dataclass
class _Validation:
    """One package's entry of ``dtsx validate``: exit code, problems and warnings."""

    path: str
    code: int
    problems: list[Problem]
    warnings: list[Problem]

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "valid": self.code == EXIT_SUCCESS,
            "problems": [p.to_json() for p in self.problems],
            "warnings": [p.to_json() for p in self.warnings],
        }


def _validate_one(
    path: str,
    project_dir: str | None,
    unsupported: str,
    password: str | None = None,
    path_map: Callable[[str], str] | None = None,
) -> _Validation:
    """What checking one package found; its code is 0 valid, 4 missing, 5 invalid."""
    from dtsx.engine.errors import (
        PackageLoadError,
        PackageNotFoundError,
        PackageValidationError,
        Problem,
    )
    from dtsx.engine.loader import load
    from dtsx.engine.plan import build

    warnings: list[Problem] = []
    try:
        # Without --path-map every Windows path is unmapped, as the run would find it.
        plan = build(
            load(path, project_dir=project_dir, password=password),
            unsupported=unsupported,
            path_map=path_map or _unmapped,
        )
        warnings = plan.warnings
        code, problems = EXIT_SUCCESS, []
    except PackageNotFoundError as exc:
        code, problems = EXIT_NOT_FOUND, [Problem("not-found", exc.message, exc.file, exc.line)]
    except PackageLoadError as exc:
        code, problems = (
            EXIT_LOAD_FAILED,
            [Problem("load-error", exc.message, exc.file or path, exc.line)],
        )
    except PackageValidationError as exc:
        code, problems = EXIT_LOAD_FAILED, exc.problems
    return _Validation(path, code, problems, warnings)


@cli.command("validate")
@click.argument("packages", nargs=-1, required=True)
@click.option(
    "--json", "as_json", is_flag=True, help='Print {"packages": [{path, valid, problems}]} as JSON.'
)
@_project_dir_option
@click.option(
    "--unsupported",
    type=click.Choice(["fail", "skip"]),
    default="fail",
    show_default=True,
    help="Whether tasks dtsx cannot run make the package invalid, or are skipped with a warning.",
)
@click.option(
    "--path-map",
    "path_maps",
    multiple=True,
    metavar="WINDOWS=LOCAL",
    help="Map a Windows path prefix to a local folder, as for run; unmapped Windows paths are "
    "problems.",
)
@_decrypt_options
def validate_command(
    packages: tuple[str, ...],
    as_json: bool,
    project_dir: str | None,
    unsupported: str,
    path_maps: tuple[str, ...],
    decrypt_env: str | None,
    decrypt_file: str | None,
) -> None:
    """Load and check packages without running them; list every problem with file:line and refId."""
    import json

    from dtsx.engine.errors import DtsxError

    password = _package_password(decrypt_env, decrypt_file)
    try:
        path_map = _path_map(list(path_maps))
    except DtsxError as exc:
        _fail(str(exc), EXIT_USAGE)
    results = [_validate_one(p, project_dir, unsupported, password, path_map) for p in packages]
    codes = {result.code for result in results}
    if as_json:
        entries = [result.to_json() for result in results]
        click.echo(json.dumps({"packages": entries}, ensure_ascii=False, indent=2))
    else:
        for result in results:
            _print_validation(result)
    if EXIT_NOT_FOUND in codes:
        raise SystemExit(EXIT_NOT_FOUND)
    raise SystemExit(EXIT_LOAD_FAILED if EXIT_LOAD_FAILED in codes else EXIT_SUCCESS)


def _print_validation(result: _Validation) -> None:
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    if result.code == EXIT_SUCCESS:
        click.echo(f"{result.path}: valid")
        return
    problems = result.problems
    noun = "problem" if len(problems) == 1 else "problems"
    click.echo(f"{result.path}: {len(problems)} {noun}")
    for problem in problems:
        click.echo(f"  {problem}")


@cli.command("show")
@click.argument("package")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the package as the stable JSON document."
)
@click.option(
    "--scripts",
    is_flag=True,
    help="Print each Script Task's project instead: refId, language, entry point, variables and "
    'every source file with its line numbers (with --json: {"package", "scripts": [...]}).',
)
@_project_dir_option
@_decrypt_options
def show_command(
    package: str,
    as_json: bool,
    scripts: bool,
    project_dir: str | None,
    decrypt_env: str | None,
    decrypt_file: str | None,
) -> None:
    """Print a package's structure: executables, constraints, handlers, connections, variables."""
    import json

    from dtsx.engine.render import show_document, show_text

    model = _load_or_exit(package, project_dir, _package_password(decrypt_env, decrypt_file))
    if scripts:
        _show_scripts(model, package, as_json)
    elif as_json:
        click.echo(json.dumps(show_document(model), ensure_ascii=False, indent=2))
    else:
        click.echo(show_text(model), nl=False)


@cli.command("graph")
@click.argument("package")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["dot", "mermaid"]),
    default="dot",
    show_default=True,
    help="Graphviz DOT or a Mermaid flowchart.",
)
@_project_dir_option
@_decrypt_options
def graph_command(
    package: str,
    fmt: str,
    project_dir: str | None,
    decrypt_env: str | None,
    decrypt_file: str | None,
) -> None:
    """Draw the control flow: containers as clusters, constraints as labelled edges."""
    from dtsx.engine.render import graph_dot, graph_mermaid

    model = _load_or_exit(package, project_dir, _package_password(decrypt_env, decrypt_file))
    click.echo(graph_dot(model) if fmt == "dot" else graph_mermaid(model), nl=False)


# --- dtsx show --scripts / dtsx scripts (tasks.script_project) ---------------------------------


def _script_projects(model: Package) -> list[tuple[Executable, ScriptProject]]:
    """Every Script Task of the package with its project; a damaged project is one line, exit 5."""
    from dtsx.engine.errors import PackageLoadError
    from dtsx.tasks.script_project import read_script_project, script_tasks

    try:
        return [
            (exe, read_script_project(exe, format_version=model.format_version))
            for exe in script_tasks(model)
        ]
    except PackageLoadError as exc:
        _fail(str(exc), EXIT_LOAD_FAILED)


def _show_scripts(model: Package, path: str, as_json: bool) -> None:
    import json

    found = _script_projects(model)
    if as_json:
        scripts = [_script_json(exe, project, with_text=True) for exe, project in found]
        click.echo(json.dumps({"package": path, "scripts": scripts}, ensure_ascii=False, indent=2))
        return
    if not found:
        click.echo(f"{path}: no Script Tasks")
    for exe, project in found:
        for line in _script_lines(exe, project):
            click.echo(line)


def _script_json(exe: Executable, project: ScriptProject, *, with_text: bool) -> dict[str, Any]:
    """One Script Task as ``show --scripts --json`` and ``script.json`` give it; ``line`` is the
    package line of a file's first line."""

    def item(source: ScriptSource) -> dict[str, Any]:
        entry = {"name": source.name, "path": source.path, "line": source.line}
        return {**entry, "text": source.text} if with_text else entry

    return {
        "ref_id": exe.ref_id,
        "name": exe.name,
        "dtsid": exe.dtsid,
        "disabled": exe.disabled,
        "project_name": project.name,
        "language": project.language,
        "entry_point": project.entry_point,
        "read_only_variables": list(project.read_only_variables),
        "read_write_variables": list(project.read_write_variables),
        "sources": [item(s) for s in project.sources],
        "project_files": [item(s) for s in project.project_files],
        "binaries": [
            {"name": b.name, "path": b.path, "size": len(b.data), "sha256": b.sha256}
            for b in project.binaries
        ],
    }


def _script_lines(exe: Executable, project: ScriptProject) -> list[str]:
    """One Script Task as ``show --scripts`` prints it: the header, then each source numbered."""
    where = f"  ({exe.location})" if exe.location is not None else ""
    disabled = "  (disabled)" if exe.disabled else ""
    binary = project.binary
    lines = [
        f"Script Task {exe.name!r} [{exe.ref_id}]{where}{disabled}",
        f"  DTSID: {exe.dtsid or '-'}",
        f"  Language: {project.language}; entry point: {project.entry_point}; "
        f"project: {project.name or '-'}",
        f"  ReadOnlyVariables: {', '.join(project.read_only_variables) or '(none)'}",
        f"  ReadWriteVariables: {', '.join(project.read_write_variables) or '(none)'}",
        f"  Binary: {project.binary_name} ({len(binary)} bytes, kept, never run)"
        if binary is not None
        else "  Binary: none",
        f"  Project files: {', '.join(f.path for f in project.project_files) or '(none)'}",
    ]
    if not project.sources:
        lines.append("  No source files.")
    for source in project.sources:
        start = f", package line {source.line}" if source.line is not None else ""
        lines.append(f'  Source {source.path} (item "{_printable(source.name)}"{start}):')
        numbered = source.lines
        width = len(str(len(numbered)))
        lines.extend(f"    {n:>{width}}  {_printable(t)}" for n, t in enumerate(numbered, 1))
    lines.append("")
    return lines


# Control characters other than tab, shown escaped: a package's script must not drive the terminal.
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F)}


def _printable(text: str) -> str:
    return text.translate(_CONTROL)


@cli.group("scripts")
def scripts_group() -> None:
    """Script Tasks: their projects as folders (running them is not built yet)."""


@scripts_group.command("extract")
@click.argument("package")
@click.argument("directory", metavar="DIR")
@click.option(
    "--force",
    is_flag=True,
    help="Write into DIR even if it is not empty (same-named files are "
    "overwritten, others left alone).",
)
@_project_dir_option
@_decrypt_options
def scripts_extract_command(
    package: str,
    directory: str,
    force: bool,
    project_dir: str | None,
    decrypt_env: str | None,
    decrypt_file: str | None,
) -> None:
    """Write each Script Task's project as a folder under DIR.

    One folder per task: every project item at its project-relative path, the compiled binary if
    the package keeps one, and script.json (refId, DTSID, language, entry point, variables)."""
    model = _load_or_exit(package, project_dir, _package_password(decrypt_env, decrypt_file))
    found = _script_projects(model)
    if not found:
        click.echo(f"{package}: no Script Tasks; nothing written")
        return
    root = pathlib.Path(directory)
    _check_extract_target(root, force)
    folders = _script_folders([exe for exe, _ in found])
    for (exe, project), folder in zip(found, folders, strict=True):
        count = _extract_script(root, folder, exe, project, package)
        click.echo(f"{exe.ref_id}: {count} file{'' if count == 1 else 's'} in {root / folder}")


def _check_extract_target(root: pathlib.Path, force: bool) -> None:
    if root.exists() and not root.is_dir():
        _fail(f"{root} is not a folder; give a folder to extract the scripts into.", EXIT_USAGE)
    if root.is_dir() and not force and any(root.iterdir()):
        _fail(
            f"{root} is not empty; give an empty or new folder, or --force to write into it.",
            EXIT_USAGE,
        )


def _script_folders(exes: list[Executable]) -> list[str]:
    """One folder name per task: its name made safe; its refId where two tasks share a name; a
    number after that where even those meet (compared case-insensitively, as Windows would)."""
    from collections import Counter

    from dtsx.tasks.script_project import safe_file_name

    names = [safe_file_name(e.name, "Script Task") for e in exes]
    shared = Counter(n.lower() for n in names)
    names = [
        safe_file_name(e.ref_id, "Script Task") if shared[n.lower()] > 1 else n
        for e, n in zip(exes, names, strict=True)
    ]
    used: set[str] = set()
    unique = []
    for name in names:
        candidate, number = name, 2
        while candidate.lower() in used:
            candidate, number = f"{name} ({number})", number + 1
        used.add(candidate.lower())
        unique.append(candidate)
    return unique


def _extract_script(
    root: pathlib.Path, folder: str, exe: Executable, project: ScriptProject, package: str
) -> int:
    """Write one project; returns how many files. Text is UTF-8 with a BOM, which Visual Studio
    and the .NET Framework compiler read as UTF-8 (without it they may take the ANSI code page)."""
    import json

    files: dict[str, bytes] = {s.path: s.text.encode("utf-8-sig") for s in project.items}
    files.update({b.path: b.data for b in project.binaries})
    document = {"package": package, **_script_json(exe, project, with_text=False)}
    taken = {p.lower() for p in files}
    meta, number = "script.json", 2
    while meta in taken:  # a project item of that name keeps it: the document takes another
        meta, number = f"script ({number}).json", number + 1
    files[meta] = (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    base = root.resolve()  # DIR, not the task's folder: that may be a link already
    for path, data in files.items():
        _write_inside(base, f"{folder}/{path}", data)
    return len(files)


def _write_inside(base: pathlib.Path, path: str, data: bytes) -> None:
    """Write ``data`` at the ``/`` path below ``base``; paths come made safe from the reader, and
    a symbolic link already in the folder must not lead the write out of it either."""
    target = base.joinpath(*path.split("/"))
    if not target.resolve().is_relative_to(base):
        _fail(f"{target} leads out of {base} (a symbolic link?); nothing more written.", EXIT_USAGE)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


# --- dtsx list -------------------------------------------------------------------------------


@cli.command("sql-check")
@click.argument("packages", nargs=-1, required=True)
@click.option(
    "--target",
    type=click.Choice(["postgres", "sqlite", "duckdb", "mysql"]),
    required=True,
    help="The engine the SQL is to run on.",
)
@click.option("--json", "as_json", is_flag=True, help='Print {"packages": [report, ...]} as JSON.')
@_project_dir_option
@_decrypt_options
def sql_check_command(
    packages: tuple[str, ...],
    target: str,
    as_json: bool,
    project_dir: str | None,
    decrypt_env: str | None,
    decrypt_file: str | None,
) -> None:
    """Report, per Execute SQL task and GO batch, whether its T-SQL translates exactly to the
    target, and what is in the way; exit 0 when everything translates, 1 otherwise."""
    import json

    from dtsx.engine.sqlcheck import check_package

    password = _package_password(decrypt_env, decrypt_file)
    reports = [
        check_package(_load_or_exit(path, project_dir, password), target) for path in packages
    ]
    if as_json:
        entries = [report.to_json() for report in reports]
        click.echo(json.dumps({"packages": entries}, ensure_ascii=False, indent=2))
    else:
        for report in reports:
            for line in report.lines():
                click.echo(line)
    all_translate = all(report.translates for report in reports)
    raise SystemExit(EXIT_SUCCESS if all_translate else EXIT_FAILURE)


@cli.command("list")
def list_plugins() -> None:
    """List every task and connection manager plugin: where it comes from, its distribution and
    version, and why it cannot load when it is broken (only packages using that one fail)."""
    from dtsx.connections.base import CONNECTIONS
    from dtsx.tasks.base import TASKS

    for title, registry in (("Tasks", TASKS), ("Connection managers", CONNECTIONS)):
        click.echo(f"{title}:")
        for entry in registry.entries():
            click.echo(_plugin_line(entry))
            if entry.error is not None:
                click.echo(f"      BROKEN: {entry.error}")


def _plugin_line(entry: PluginEntry) -> str:
    """``  KEY  origin  (distribution version)``; the distribution is left out when unknown."""
    line = f"  {entry.key:<34} {entry.origin}"
    if entry.distribution is not None:
        line += f"  ({entry.distribution} {entry.version or '?'})"
    return line


# --- dtsx eval -------------------------------------------------------------------------------


@cli.command("eval")
@click.argument("expression")
@click.option(
    "--var",
    "variables",
    multiple=True,
    metavar="NS::NAME=TYPE:VALUE",
    help="A variable, e.g. User::Count=Int32:5 (repeatable).",
)
@click.option(
    "--assign", is_flag=True, help="Evaluate the For Loop assignment form @[User::X] = expr."
)
@click.option("--json", "as_json", is_flag=True, help='Print {"value", "type"} as JSON.')
def eval_command(expression: str, variables: tuple[str, ...], assign: bool, as_json: bool) -> None:
    """Evaluate an SSIS expression and print its value and type."""
    import json

    from dtsx.engine.errors import DtsxError
    from dtsx.engine.expressions import evaluate

    try:
        values = dict(_parse_var(spec) for spec in variables)
        result = evaluate(expression, variables=values, assignment=assign)
    except DtsxError as exc:
        offset = getattr(exc, "offset", None)
        if offset is not None:
            click.echo(f"  {expression}\n  {' ' * offset}^", err=True)
        _fail(str(exc), EXIT_FAILURE)
    if as_json:
        # json_text() keeps a decimal's scale (124.00), which json.dumps cannot write.
        click.echo(f'{{"value": {result.json_text()}, "type": {json.dumps(result.type)}}}')
    else:
        click.echo(
            f"{result.to_json()!s}  ({result.type})"
            if not result.is_null
            else f"NULL  ({result.type})"
        )


def _parse_var(spec: str) -> tuple[str, tuple[str, str]]:
    name, sep, typed = spec.partition("=")
    type_name, colon, raw = typed.partition(":")
    if not sep or not colon or not name.strip():
        raise click.UsageError(
            f"--var {spec!r} is not NS::NAME=TYPE:VALUE, e.g. User::Count=Int32:5"
        )
    return name.strip(), (type_name.strip(), raw)


# --- dtsx run / dtsx exec (dtsx/engine/executor.py) -----------------------------------------------


def _split_pair(spec: str, sep: str, what: str, example: str) -> tuple[str, str]:
    name, found, value = spec.partition(sep)
    if not found or not name.strip():
        raise click.UsageError(
            f"{what} {spec!r} is not NAME{sep}VALUE; write it like {example}, "
            "or NAME@env:VARIABLE / NAME@file:PATH to keep the value off the command line"
        )
    return name.strip(), value


# NAME@env:VARIABLE / NAME@file:PATH: the one way to give --set, --param, --conn (and dtexec's
# /Set, /Par, /Conn) a value that is not on the command line, where every user's `ps` shows it.
# The name may hold neither '=' nor ';', so NAME=VALUE and PATH;VALUE forms always stay literal.
_REFERENCE = re.compile(
    r"(?P<name>[^=;]+?)@(?P<kind>env|file):(?P<source>.+)", re.IGNORECASE | re.DOTALL
)


def _reference(spec: str, option: str) -> tuple[str, str] | None:
    """(NAME, value) for ``NAME@env:VARIABLE`` or ``NAME@file:PATH``; None for a literal value.

    A file gives its first line without the line break, and must be private (as --decrypt-file).
    """
    match = _REFERENCE.fullmatch(spec.strip())
    if match is None:
        return None
    name, kind, source = match["name"].strip(), match["kind"].lower(), match["source"]
    if kind == "env":
        value = os.environ.get(source)
        if value is None:
            _fail(
                f"{option} {name}@env:{source}: the environment variable {source} is not set; "
                "export it with the value.",
                EXIT_USAGE,
            )
        return name, value
    from dtsx.engine.files import read_secret_file

    try:
        return name, read_secret_file(source)
    except (OSError, UnicodeDecodeError) as exc:
        _fail(
            f"{option} {name}@file:{source}: cannot read it "
            f"({getattr(exc, 'strerror', None) or exc}).",
            EXIT_USAGE,
        )


def _set_argument(spec: str, option: str, req: _RunRequest) -> None:
    """One --set / /Set; a referenced value is marked $Sensitive:: so no message shows it."""
    found = _reference(spec, option)
    if found is None:
        req.sets.append(spec)
        req.on_command_line.append((option, spec))
        return
    name, value = found
    body = name[12:] if name[:12].lower() == "$sensitive::" else name
    req.sets.append(
        f"$Sensitive::{body};{value}" if body.startswith("\\") else f"$Sensitive::{body}={value}"
    )


def _pair_argument(spec: str, option: str, example: str) -> tuple[str, str, bool]:
    """(name, value, given literally) of one NAME=VALUE option, dtexec's NAME;VALUE form (a
    ``/`` option, value unquoted), or a NAME@env:/NAME@file: reference."""
    found = _reference(spec, option)
    if found is not None:
        return found[0], found[1], False
    if not option.startswith("/"):
        name, value = _split_pair(spec, "=", option, example)
        return name, value, True
    name, _, value = spec.partition(";")
    return name.strip(), value.strip('"'), True


def _param_argument(spec: str, option: str, req: _RunRequest) -> None:
    """One --param NAME=VALUE, or dtexec's /Par NAME[(type)];VALUE."""
    name, value, literal = _pair_argument(spec, option, "'$Package::Count=3'")
    if option == "/Par":  # dtexec may name the type: "$Package::Count(Int32)";3
        name = re.sub(r"\([A-Za-z0-9]+\)$", "", name.strip('"'))
    req.params[name] = value
    if literal:
        req.on_command_line.append((option, name))


def _conn_argument(spec: str, option: str, req: _RunRequest) -> None:
    """One --conn NAME=STRING, or dtexec's /Conn NAME;STRING."""
    name, value, literal = _pair_argument(spec, option, "'SMTP=SmtpServer=mail;'")
    if option == "/Conn":  # dtexec quotes names: "Mail";...
        name = name.strip('"')
    req.conns[name] = value
    if literal:
        req.on_command_line.append((option, name))


class _RunRequest:
    """Everything ``run`` and ``exec`` collect from their command lines."""

    def __init__(self) -> None:
        self.package: str | None = None
        self.sets: list[str] = []
        self.config_files: list[str] = []
        self.params: dict[str, str] = {}
        self.conns: dict[str, str] = {}
        self.project_dir: str | None = None
        self.max_concurrent: int | None = None
        self.reporting: str | None = None
        self.unsupported = "fail"
        self.report_json: str | None = None
        self.log_jsonl: str | None = None
        self.path_maps: list[str] = []
        self.dev_smtp: str | None = None
        self.validate_only = False
        self.password: str | None = None  # the package password (dtexec /Decrypt); never printed
        # (option, argument or name) of every value given literally, to warn about secrets in argv.
        self.on_command_line: list[tuple[str, str]] = []


def _run_request(req: _RunRequest) -> int:
    """Load, plan and run one package; every failure is one line and a dtexec exit code."""
    from dtsx.engine.errors import DtsxError
    from dtsx.engine.events import ConsoleLog
    from dtsx.engine.executor import RunOptions
    from dtsx.engine.overrides import parse_set

    try:
        sets = [parse_set(s) for s in req.sets]
        console = ConsoleLog(lambda line: click.echo(line), req.reporting)
        path_map = _path_map(req.path_maps)
    except DtsxError as exc:
        _fail(str(exc), EXIT_USAGE)
    package = _load_or_exit(req.package or "", req.project_dir, req.password)
    _warn_visible_secrets(req, package)
    plan = _plan_or_exit(req, package, sets, path_map)
    if req.validate_only:
        for warning in plan.warnings:
            click.echo(f"dtsx: warning: {warning}", err=True)
        click.echo(f"dtsx: {req.package} is valid.")
        return EXIT_SUCCESS
    if req.report_json:
        _check_writable(req.report_json, "--report-json")
    logs = _open_logs(req)
    sink, redirect = _start_dev_smtp(req.dev_smtp)
    options = RunOptions(
        max_concurrent=req.max_concurrent,
        sets=sets,
        config_files=list(req.config_files),
        parameters=dict(req.params),
        connections=dict(req.conns),
        path_map=path_map,
        cancel_event=threading.Event(),
        sinks=[console, *logs],
        project_dir=req.project_dir,
        unsupported=req.unsupported,
        connection_redirect=redirect,
    )
    try:
        result = _execute(plan, options)
    finally:
        lost = _close_logs(logs, req.log_jsonl)
        if sink is not None:
            sink.stop()
    written = _print_run(result, req)
    if sink is not None:
        click.echo(f"dtsx: dev SMTP: {len(sink.messages())} message(s) stored in {sink.directory}")
    # The exit code stays the package's result: a report or log lost to a full disk was a warning
    # above. Turning a success into a failure would invite a scheduler to run the package (and send
    # its mail) again.
    if lost or not written:
        click.echo(
            "dtsx: warning: the run's result above stands; only the output named above is "
            "incomplete.",
            err=True,
        )
    return int(result.exit_code)


def _plan_or_exit(
    req: _RunRequest,
    package: Package,
    sets: list[PropertySet],
    path_map: Callable[[str], str] | None,
) -> Plan:
    """Check the package as this run will see it (``--conn``, and the ``--set`` values that change
    validation, such as ``Disable``); invalid is one line and exit 5."""
    from dtsx.engine.errors import PackageValidationError
    from dtsx.engine.plan import build

    try:
        return build(
            package,
            unsupported=req.unsupported,
            path_map=path_map or _unmapped,
            connections=dict(req.conns),
            sets=sets,
        )
    except PackageValidationError as exc:
        _fail(str(exc), EXIT_LOAD_FAILED)


def _open_logs(req: _RunRequest) -> list[LogSink]:
    """The ``--log-jsonl`` log (with tracebacks of internal errors under --debug), if asked for."""
    from dtsx.engine.errors import DtsxError
    from dtsx.engine.events import JsonLinesLog

    if not req.log_jsonl:
        return []
    try:
        return [JsonLinesLog(req.log_jsonl, debug=_DEBUG.is_set())]
    except DtsxError as exc:
        _fail(str(exc), EXIT_USAGE)


def _execute(plan: Plan, options: RunOptions) -> RunResult:
    """Run the plan with Ctrl-C / SIGTERM cancelling it; a refused override is exit 6 (usage),
    another validation failure at run time exit 5."""
    from dtsx.engine.errors import DtsxError, PackageValidationError
    from dtsx.engine.executor import run

    assert options.cancel_event is not None
    previous = _install_cancel_signals(options.cancel_event)
    try:
        return run(plan, options)
    except PackageValidationError as exc:
        usage = all(p.code.startswith("override") for p in exc.problems)
        _fail(str(exc), EXIT_USAGE if usage else EXIT_LOAD_FAILED)
    except DtsxError as exc:
        _fail(str(exc), EXIT_USAGE)
    finally:
        _restore_signals(previous)


def _check_writable(path: str, option: str) -> None:
    """Refuse, before anything runs, an output file that cannot be created where it is asked for."""
    target = pathlib.Path(path)
    folder = target.parent
    if target.is_dir():
        _fail(f"{option} {path}: that is a folder; name a file.", EXIT_USAGE)
    if not folder.is_dir():
        _fail(
            f"{option} {path}: the folder {folder} does not exist; create it or name another file.",
            EXIT_USAGE,
        )
    if not os.access(target if target.exists() else folder, os.W_OK):
        _fail(
            f"{option} {path}: dtsx may not write there; name a file in a folder you can write to.",
            EXIT_USAGE,
        )


def _close_logs(logs: list[LogSink], path: str | None) -> bool:
    """Close the --log-jsonl log; True when some of it could not be written. A write that failed
    during the run was already a warning of the run; a failure to close says so here."""
    from dtsx.engine.errors import DtsxError

    lost = False
    for item in logs:
        lost = lost or bool(getattr(item, "failed", False))
        try:
            item.close()
        except (OSError, DtsxError) as exc:
            click.echo(
                f"dtsx: cannot write the log file {path}: {getattr(exc, 'strerror', None) or exc}.",
                err=True,
            )
            lost = True
    return lost


_PASSWORD_KEYS = frozenset({"password", "pwd"})


def _warn_visible_secrets(req: _RunRequest, package: Package) -> None:
    """One warning naming every secret given literally: the command line is world-readable (ps)."""
    secrets = _visible_secrets(req, package)
    if secrets:
        them = "it" if len(secrets) == 1 else "them"
        verb = "is" if len(secrets) == 1 else "are"
        click.echo(
            f"dtsx: warning: {' and '.join(secrets)} {verb} on the command line, where any user's "
            "process "
            f"listing (ps) shows {them}; give {them} as NAME@env:VARIABLE or NAME@file:PATH "
            "instead.",
            err=True,
        )


def _visible_secrets(req: _RunRequest, package: Package) -> list[str]:
    """Passwords in connection strings, values of sensitive parameters and $Sensitive:: values."""
    from dtsx.engine.overrides import parse_set
    from dtsx.engine.variables import split_name

    sensitive = {
        p.qualified_name for p in [*package.parameters, *package.project_parameters] if p.sensitive
    }
    found: list[str] = []
    for option, given in req.on_command_line:
        if option in ("--conn", "/Conn"):
            if _has_password(req.conns.get(given, "")):
                found.append(f"the password in {option} {given}")
        elif option in ("--param", "/Par"):
            if given.upper().startswith("CM."):
                prop = given.rsplit(".", 1)[-1].lower()
                if prop in _PASSWORD_KEYS or (
                    prop == "connectionstring" and _has_password(req.params[given])
                ):
                    found.append(f"the password in {option} {given}")
                continue
            namespace, short = split_name(given)
            if f"{namespace or '$Package'}::{short}" in sensitive:
                found.append(f"the sensitive parameter {given} ({option})")
        else:
            item = parse_set(given)
            target = f"{item.connection}.{item.name}" if item.kind == "connection" else item.name
            password = item.kind == "connection" and (
                item.name.lower() in _PASSWORD_KEYS
                or (item.name.lower() == "connectionstring" and _has_password(item.value))
            )
            if item.sensitive or password or (item.kind == "variable" and item.name in sensitive):
                found.append(f"the value of {option} {target}")
    return found


def _has_password(connection_string: str) -> bool:
    from dtsx.connections.base import parse_connection_string
    from dtsx.engine.errors import DtsxError

    try:
        keys = {key.strip().lower() for key in parse_connection_string(connection_string)}
    except DtsxError:  # unparsable: the run will say so; a password in it is still on show
        return (
            re.search(r"(?:^|;)\s*(?:password|pwd)\s*=", connection_string, re.IGNORECASE)
            is not None
        )
    return bool(keys & _PASSWORD_KEYS)


def _unmapped(path: str) -> str:
    """The path map of a run without --path-map: every path stays as written."""
    return path


def _path_map(specs: list[str]) -> Callable[[str], str] | None:
    if not specs:
        return None
    from dtsx.engine.paths import PathMap

    return PathMap.parse(specs).map


def _start_dev_smtp(directory: str | None) -> tuple[MailSink | None, Redirect | None]:
    """``--dev-smtp DIR``: a loopback sink, and a redirect of every mail connection to it.

    The redirect applies after property expressions and ``--conn``, and to child packages, so no
    message of a dev run can reach a real server. Each connection type decides what redirecting
    means (``ConnectionManager.redirected_to_mail_sink``); the CLI knows no concrete one.
    """
    if directory is None:
        return None, None
    from dtsx.connections.base import mail_sink_redirect
    from dtsx.mailsink import MailSink

    sink = MailSink(pathlib.Path(directory))
    try:
        sink.start()
    except OSError as exc:
        _fail(f"--dev-smtp: cannot start the local SMTP sink: {exc.strerror or exc}", EXIT_USAGE)
    click.echo(
        f"dtsx: dev SMTP sink on 127.0.0.1:{sink.port}, storing mail in {sink.directory}", err=True
    )
    return sink, mail_sink_redirect("127.0.0.1", sink.port)


# After a second interrupt, how long the run may take to wind down and write its report.
_SECOND_SIGNAL_LIMIT_S = 5.0


def _install_cancel_signals(cancel: threading.Event) -> dict[int, Any]:
    """SIGINT/SIGTERM: the first cancels the run (tasks are asked to stop, processes get SIGTERM
    and a grace period); the second kills every running process group at once and leaves the
    run a bounded time to finish and write its report; a third exits at once."""
    # Imported here, not in the handler: an import inside a signal handler can wait on a lock
    # that the interrupted code holds. Plugins that start processes register their stop with it.
    from dtsx.tasks.base import emergency_stop

    previous: dict[int, Any] = {}
    if threading.current_thread() is not threading.main_thread():
        return previous
    signals_seen = [0]

    def handler(signum: int, _frame: object) -> None:
        signals_seen[0] += 1
        if signals_seen[0] == 1:
            cancel.set()
            _say(
                "dtsx: interrupted; stopping the running tasks (interrupt again to kill their "
                "processes)."
            )
        elif signals_seen[0] == 2:
            cancel.set()
            killed = emergency_stop()
            _say(
                f"dtsx: interrupted again; killed {killed} running process group(s); the report "
                "follows "
                f"within {_SECOND_SIGNAL_LIMIT_S:g} s."
            )
            timer = threading.Timer(_SECOND_SIGNAL_LIMIT_S, _give_up)
            timer.daemon = True
            timer.start()
        else:
            _say(
                "dtsx: interrupted a third time; exiting without waiting for running tasks or "
                "writing the report."
            )
            os._exit(EXIT_CANCELED)

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    return previous


def _give_up() -> None:
    _say(
        f"dtsx: the run did not stop within {_SECOND_SIGNAL_LIMIT_S:g} s of the second interrupt; "
        "exiting without a report."
    )
    os._exit(EXIT_CANCELED)


def _say(line: str) -> None:
    """One line on stderr from a signal handler: os.write, as the handler may interrupt a print."""
    try:
        os.write(2, (line + "\n").encode("utf-8", "replace"))
    except OSError:
        pass


def _restore_signals(previous: dict[int, Any]) -> None:
    for sig, old in previous.items():
        signal.signal(sig, old)


def _print_run(result: RunResult, req: _RunRequest) -> bool:
    """Print the errors and the result line, write --report-json; False when the report failed."""
    for item in result.executables:
        for error in item.errors:
            click.echo(f"dtsx: {item.ref_id}: {error}", err=True)
    _print_internal_errors(result)
    written = _write_report(result, req.report_json) if req.report_json else True
    skipped = f"; {result.skipped} skipped as unsupported" if result.skipped else ""
    click.echo(
        f"dtsx: {result.package}: {result.result} (exit {result.exit_code}) in "
        f"{result.duration_s:.3f} s{skipped}"
    )
    return written


def _print_internal_errors(result: RunResult) -> None:
    """An unexpected exception of a task or of dtsx (not a failure the package planned for): with
    --debug its traceback and causes, else one line saying how to see them."""
    if not result.internal_errors:
        return
    if _DEBUG.is_set():
        for internal in result.internal_errors:
            click.echo(f"dtsx: internal error in {internal.ref_id}:", err=True)
            click.echo(internal.traceback.rstrip("\n"), err=True)
        return
    count = len(result.internal_errors)
    noun = "an internal error" if count == 1 else f"{count} internal errors"
    click.echo(
        f"dtsx: {noun} (a defect in dtsx or a plugin, not in the package); run with --debug to "
        "see the traceback, and report it.",
        err=True,
    )


def _write_report(result: RunResult, path: str) -> bool:
    """--report-json; False (after one warning) when the file cannot be written."""
    import json

    text = json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n"
    try:
        # A name that was not UTF-8 (a surrogate here) is written as its JSON escape, \udcXX.
        pathlib.Path(path).write_text(text, encoding="utf-8", errors="backslashreplace")
    except OSError as exc:
        click.echo(f"dtsx: cannot write the report {path}: {exc.strerror or exc}.", err=True)
        return False
    return True


def _run_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options of a run that dtexec has no word for, shared by ``run`` and ``exec`` (where they
    go before the dtexec arguments): --unsupported, --report-json, --log-jsonl, --path-map,
    --dev-smtp, --debug and --translate."""
    options = [
        click.option(
            "--unsupported",
            type=click.Choice(["fail", "skip"]),
            default="fail",
            show_default=True,
            help="Refuse packages with unsupported executables, or run them as disabled.",
        ),
        click.option(
            "--report-json", default=None, metavar="FILE", help="Write the run report as JSON."
        ),
        click.option(
            "--log-jsonl", default=None, metavar="FILE", help="Append every event as a JSON line."
        ),
        click.option(
            "--path-map",
            "path_maps",
            multiple=True,
            metavar="WINDOWS=LOCAL",
            help="Map a Windows path prefix to a local folder, e.g. 'C:\\data=/srv/data' "
            "(repeatable).",
        ),
        click.option(
            "--dev-smtp",
            default=None,
            metavar="DIR",
            help="Send all mail to a local sink that stores messages in DIR.",
        ),
        click.option(
            "--debug",
            is_flag=True,
            help="Show the exception chain, with tracebacks, of an internal error (also "
            "DTSX_DEBUG=1).",
        ),
        click.option(
            "--translate",
            "translations",
            multiple=True,
            metavar="NAME=tsql",
            help="Translate the SQL sent through database connection NAME from T-SQL to its "
            "engine's dialect; a statement without an exact translation fails (see dtsx "
            "sql-check). Repeatable.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _take_run_options(req: _RunRequest, **given: Any) -> None:
    """Copy the options of ``_run_options`` into ``req``; --debug switches debug output on."""
    req.unsupported, req.report_json = given["unsupported"], given["report_json"]
    req.log_jsonl, req.dev_smtp = given["log_jsonl"], given["dev_smtp"]
    req.path_maps = list(given["path_maps"])
    for spec in given["translations"]:
        _translate_argument(spec, req)
    if given["debug"]:
        _DEBUG.set()


def _translate_argument(spec: str, req: _RunRequest) -> None:
    """One --translate NAME=tsql: the runtime property Translate=tsql of connection NAME, set as
    the CM.NAME.Translate parameter is (before --conn, so a --conn URL stays whole)."""
    name, source = _split_pair(spec, "=", "--translate", "'Warehouse=tsql'")
    if source.strip().lower() != "tsql":
        _fail(
            f"--translate {spec}: dtsx translates from T-SQL only; write --translate {name}=tsql.",
            EXIT_USAGE,
        )
    req.params[f"CM.{name}.Translate"] = "tsql"


@cli.command("run")
@click.argument("package")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="User::X=VALUE",
    help="Set a variable, or a dtexec property path '\\Package.Variables[User::X].Value;VALUE'. "
    "Any of --set, --param, --conn also takes NAME@env:VARIABLE or NAME@file:PATH, to keep "
    "the value off the command line.",
)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Parameter value: $Project::X=…, $Package::X=… (bare = Package), CM.<conn>.<prop>=….",
)
@click.option(
    "--conn",
    "conns",
    multiple=True,
    metavar="NAME=CONNECTION_STRING",
    help="Replace a connection manager's connection string (by name or DTSID).",
)
@click.option(
    "--config-file",
    "config_files",
    multiple=True,
    metavar="FILE",
    help="Apply a .dtsConfig package configuration file (dtexec /ConfigFile; repeatable).",
)
@click.option(
    "--project-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder with Project.params and .conmgr files.",
)
@click.option(
    "--max-concurrent",
    type=int,
    default=None,
    help="Override MaxConcurrentExecutables (-1 = CPUs + 2).",
)
@click.option(
    "--reporting",
    default=None,
    metavar="LEVELS",
    help="dtexec /Reporting letters N E W I C D P V (default EWP).",
)
@_run_options
@_decrypt_options
def run_command(
    package: str,
    sets: tuple[str, ...],
    params: tuple[str, ...],
    conns: tuple[str, ...],
    config_files: tuple[str, ...],
    project_dir: str | None,
    max_concurrent: int | None,
    reporting: str | None,
    decrypt_env: str | None,
    decrypt_file: str | None,
    **run_options: Any,
) -> int:
    """Run a package; exit with dtexec's code (0 success, 1 failure, 3 canceled, 4, 5, 6)."""
    req = _RunRequest()
    req.package = package
    for spec in sets:
        _set_argument(spec, "--set", req)
    req.config_files = list(config_files)
    for spec in params:
        _param_argument(spec, "--param", req)
    for spec in conns:
        _conn_argument(spec, "--conn", req)
    req.project_dir, req.max_concurrent, req.reporting = project_dir, max_concurrent, reporting
    _take_run_options(req, **run_options)
    req.password = _package_password(decrypt_env, decrypt_file)
    return _run_request(req)


# dtexec option → (shortest abbreviation, takes a value).
_DTEXEC_OPTIONS = {
    "file": ("f", True),
    "set": ("set", True),
    "connection": ("conn", True),
    "parameter": ("par", True),
    "maxconcurrent": ("m", True),
    "reporting": ("rep", True),
    "validate": ("va", False),
    "x86": ("x86", False),
    "sum": ("su", False),
    "callerinfo": ("ca", True),
    "help": ("h", False),
    "decrypt": ("de", True),
    "configfile": ("conf", True),
}
_DTEXEC_UNSUPPORTED = {
    "sql": "sq",
    "dts": "d",
    "isserver": "isserver",
    "server": "ser",
    "project": "proj",
    "package": "pack",
    "checkfile": "checkf",
    "checkpointing": "checkp",
    "restart": "res",
    "logger": "l",
    "consolelog": "cons",
    "vlog": "vlog",
    "warnaserror": "w",
    "envreference": "env",
    "verifybuild": "verifyb",
    "verifypackageid": "verifyp",
    "verifyversionid": "verifyv",
    "verifysigned": "verifys",
    "commandfile": "com",
    "dump": "dump",
    "dumponerror": "dumponerror",
    "user": "u",
    "password": "p",
}


def _dtexec_option(token: str) -> str:
    """The dtexec option a ``/Opt`` or ``-Opt`` token names (case-insensitive abbreviations)."""
    word = token[1:].lower()
    if word == "?":
        return "help"
    for table in (_DTEXEC_OPTIONS, {k: (v, False) for k, v in _DTEXEC_UNSUPPORTED.items()}):
        matches = [
            name
            for name, (short, _) in table.items()
            if name.startswith(word) and len(word) >= len(short)
        ]
        if len(matches) == 1:
            if table is not _DTEXEC_OPTIONS:
                raise click.UsageError(
                    f"dtexec option {token} is not supported by dtsx exec; use /F[ile] with a "
                    ".dtsx file."
                )
            return matches[0]
        if matches:
            exact = [m for m in matches if m == word]
            if exact:
                return exact[0]
    raise click.UsageError(
        f"{token!r} is not a dtexec option dtsx exec knows (/F /Set /Conn /Par /M /Rep /Va /De "
        "/Conf)."
    )


def _parse_dtexec(args: list[str]) -> _RunRequest:
    req = _RunRequest()
    i = 0
    while i < len(args):
        token = args[i]
        if token.startswith("--"):
            raise click.UsageError(
                f"{token}: dtsx's own options go before the dtexec arguments, e.g. "
                f"dtsx exec {token} ... /F pkg.dtsx"
            )
        if token[:1] not in ("/", "-") or len(token) < 2:
            raise click.UsageError(
                f"{token!r} is not an option; dtexec options start with / or -, e.g. /F pkg.dtsx"
            )
        name = _dtexec_option(token)
        value = None
        if _DTEXEC_OPTIONS[name][1]:
            if i + 1 >= len(args):
                raise click.UsageError(f"{token} needs a value.")
            value = args[i + 1]
            i += 1
        _apply_dtexec(req, name, value)
        i += 1
    if not req.package:
        raise click.UsageError("dtsx exec needs /F[ile] <package.dtsx>.")
    return req


def _apply_dtexec(req: _RunRequest, name: str, value: str | None) -> None:
    if name == "file":
        req.package = value
    elif name == "set":
        _set_argument(value or "", "/Set", req)
    elif name == "connection":
        _conn_argument(value or "", "/Conn", req)
    elif name == "parameter":
        _param_argument(value or "", "/Par", req)
    elif name == "maxconcurrent":
        try:
            req.max_concurrent = int(value or "")
        except ValueError:
            raise click.UsageError(
                f"/MaxConcurrent {value!r} is not an integer (-1 or more)."
            ) from None
    elif name == "reporting":
        req.reporting = value
    elif name == "validate":
        req.validate_only = True
    elif name == "configfile":
        req.config_files.append(value or "")
    elif name == "decrypt":
        req.password = value
        click.echo(
            "dtsx: warning: a password given with /Decrypt is visible in process listings; "
            "prefer 'dtsx run --decrypt-env VARIABLE'.",
            err=True,
        )
    elif name == "help":
        click.echo(
            "Usage: dtsx exec /F[ile] package.dtsx [/Set path;value]... [/Conn[ection] "
            "name;string]... "
            "[/Par[ameter] name[(type)];value]... [/M[axConcurrent] n] [/Rep[orting] levels] "
            "[/Va[lidate]] "
            "[/De[crypt] password] [/Conf[igFile] file.dtsConfig]...\n"
            "/Set, /Conn and /Par also take name@env:VARIABLE or name@file:PATH instead of "
            "';value', "
            "to keep the value off the command line."
        )
        raise SystemExit(EXIT_SUCCESS)


_EXEC_EPILOG = """\b
dtsx's own options (above) go before the first dtexec argument, e.g.
  dtsx exec --dev-smtp outbox --report-json r.json /F pkg.dtsx /Rep V
dtexec arguments (case-insensitive, / or -, shortest unique abbreviation):
  /F[ile] package.dtsx     /Set path;value          /Conn[ection] name;string
  /Par[ameter] name[(type)];value                   /M[axConcurrent] n
  /Rep[orting] levels      /Va[lidate]              /De[crypt] password
  /Conf[igFile] file.dtsConfig                      /? or /H[elp]
/Set, /Conn and /Par also take name@env:VARIABLE or name@file:PATH
instead of ';value', to keep the value off the command line."""


@cli.command(
    "exec",
    epilog=_EXEC_EPILOG,
    # dtexec's arguments reach _parse_dtexec untouched: parsing of dtsx options stops at the first
    # one (interspersed off), and -F, -Set... are not taken for unknown dtsx options.
    context_settings={
        "ignore_unknown_options": True,
        "allow_interspersed_args": False,
        "help_option_names": ["--help"],
    },
)
@_run_options
@click.argument("dtexec_args", nargs=-1, type=click.UNPROCESSED)
def exec_command(dtexec_args: tuple[str, ...], **run_options: Any) -> int:
    """Run a package given in dtexec's syntax: [DTSX OPTIONS] /F pkg.dtsx [/Set ...]..."""
    req = _parse_dtexec(list(dtexec_args))
    _take_run_options(req, **run_options)
    return _run_request(req)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: click's usage errors exit 6, as dtexec's do; so does anything a command
    did not turn into its own sentence, in one line (--debug shows its traceback first)."""
    try:
        _main(argv)
    finally:
        # The CLI's one speed trick: the process ends after main(), and the interpreter's final
        # full collections of every object cost about a fifth of a short command's CPU time
        # (bench/startup.py). Frozen objects are skipped by them. Reference counting still frees,
        # atexit handlers and thread joins still run; only finalizers of cyclic garbage left at
        # exit may not run, which Python never promises anyway.
        gc.freeze()


def _main(argv: list[str] | None) -> NoReturn:
    from dtsx.engine.errors import DtsxError

    if _debug_from_environment():
        _DEBUG.set()
    try:
        code = cli.main(args=argv, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(EXIT_CANCELED)
    except click.ClickException as exc:  # usage errors included
        exc.show()
        sys.exit(EXIT_USAGE)
    except DtsxError as exc:
        _fail_internal(exc, str(exc))
    except OSError as exc:  # no file named: it is the output itself (a full disk, a closed pipe)
        if exc.filename is not None:
            _fail_internal(
                exc,
                f"cannot use {exc.filename}: {exc.strerror or exc}; check the path and its "
                "permissions.",
            )
        _fail_internal(exc, f"cannot write the output: {exc.strerror or exc}.")
    except Exception as exc:  # a bug: one line, and the way to see more
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        _fail_internal(
            exc, f"internal error: {detail}; run 'dtsx --debug ...' to see where, and report it."
        )
    sys.exit(code if isinstance(code, int) else EXIT_SUCCESS)


def _debug_from_environment() -> bool:
    """DTSX_DEBUG=1 (any value but empty, 0, false, no) does what --debug does."""
    return os.environ.get("DTSX_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


def _fail_internal(exc: BaseException, message: str) -> NoReturn:
    """The one ``dtsx: ...`` line and exit 6; with --debug, the exception chain and its tracebacks
    first."""
    if _DEBUG.is_set():
        _print_chain(exc)
    _fail(message, EXIT_USAGE)


def _print_chain(exc: BaseException) -> None:
    """The traceback of ``exc`` and of every exception it was raised from, as Python prints it."""
    import traceback

    click.echo("".join(traceback.format_exception(exc)).rstrip("\n"), err=True)
