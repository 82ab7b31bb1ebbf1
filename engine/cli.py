"""The ``dtsx`` command. The only module that prints.

Exit codes are dtexec's: 0 success, 1 failure, 3 canceled, 4 package not found,
5 load or validation failure, 6 usage or internal error.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import click

__all__ = ["main", "cli"]

EXIT_SUCCESS = 0
EXIT_FAILURE = 1
EXIT_CANCELED = 3
EXIT_NOT_FOUND = 4
EXIT_LOAD_FAILED = 5
EXIT_USAGE = 6


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dtsx")
def cli() -> None:
    """Run SQL Server Integration Services (.dtsx) packages."""


# Commands are registered below, one section per command, each owned by one module's author.


# --- dtsx mailsink (connections/mailsink.py) -------------------------------------------------

import pathlib  # noqa: E402 - kept inside this command section


@cli.command("mailsink")
@click.option("--port", type=click.IntRange(0, 65535), default=2525, show_default=True,
              help="TCP port to listen on; 0 lets the system pick a free one.")
@click.option("--dir", "directory", required=True,
              type=click.Path(file_okay=False, path_type=pathlib.Path),
              help="Folder where each message is stored as a .eml file (created if missing).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
def mailsink_command(port: int, directory: pathlib.Path, host: str) -> None:
    """Run a local SMTP server that stores every message it receives; Ctrl-C stops it."""
    import signal
    import threading

    from dtsx.connections.mailsink import MailSink
    from dtsx.engine.errors import DtsxError

    def received(path: pathlib.Path) -> None:
        env = MailSink.envelope(path)
        click.echo(f"received {path.name} from <{env['mail_from']}> to {', '.join(env['rcpt_tos'])}")

    sink = MailSink(directory, host=host, port=port, on_message=received)
    try:
        sink.start()
    except DtsxError as exc:
        click.echo(f"dtsx: {exc}", err=True)
        raise SystemExit(EXIT_FAILURE) from None
    click.echo(f"dtsx mailsink: listening on {host}:{sink.port}; messages are stored in "
               f"{directory.resolve()} (Ctrl-C to stop)")
    if host not in ("127.0.0.1", "::1", "localhost"):
        click.echo(f"dtsx mailsink: warning: {host} is not a loopback address; other machines can send here", err=True)
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

from typing import TYPE_CHECKING  # noqa: E402 - kept inside this command section

if TYPE_CHECKING:
    from dtsx.engine.model import Package


def _load_or_exit(path: str, project_dir: str | None) -> Package:
    """Load one package; a load error is one line on stderr and exit 4 (missing) or 5."""
    from dtsx.engine.errors import PackageLoadError, PackageNotFoundError
    from dtsx.engine.loader import load

    try:
        return load(path, project_dir=project_dir)
    except PackageNotFoundError as exc:
        _exit_with(str(exc), EXIT_NOT_FOUND)
    except PackageLoadError as exc:
        _exit_with(str(exc), EXIT_LOAD_FAILED)


def _exit_with(message: str, code: int) -> NoReturn:
    click.echo(f"dtsx: {message}", err=True)
    raise SystemExit(code)


def _validate_one(path: str, project_dir: str | None, unsupported: str) -> tuple[int, dict[str, object]]:
    """(exit code, JSON entry) for one package: 0 valid, 4 missing, 5 invalid."""
    from dtsx.engine.errors import PackageLoadError, PackageNotFoundError, PackageValidationError, Problem
    from dtsx.engine.loader import load
    from dtsx.engine.plan import build

    warnings: list[Problem] = []
    try:
        plan = build(load(path, project_dir=project_dir), unsupported=unsupported)
        warnings = plan.warnings
        code, problems = EXIT_SUCCESS, []
    except PackageNotFoundError as exc:
        code, problems = EXIT_NOT_FOUND, [Problem("not-found", exc.message, exc.file, exc.line)]
    except PackageLoadError as exc:
        code, problems = EXIT_LOAD_FAILED, [Problem("load-error", exc.message, exc.file or path, exc.line)]
    except PackageValidationError as exc:
        code, problems = EXIT_LOAD_FAILED, exc.problems
    entry: dict[str, object] = {
        "path": path,
        "valid": code == EXIT_SUCCESS,
        "problems": [p.to_json() for p in problems],
        "warnings": [p.to_json() for p in warnings],
    }
    return code, entry


@cli.command("validate")
@click.argument("packages", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print {\"packages\": [{path, valid, problems}]} as JSON.")
@click.option("--project-dir", type=click.Path(file_okay=False), default=None,
              help="Folder with the project's .conmgr files and Project.params (default: the package's folder).")
@click.option("--unsupported", type=click.Choice(["fail", "skip"]), default="fail", show_default=True,
              help="Whether tasks dtsx cannot run make the package invalid, or are skipped with a warning.")
def validate_command(packages: tuple[str, ...], as_json: bool, project_dir: str | None, unsupported: str) -> None:
    """Load and check packages without running them; list every problem with file:line and refId."""
    import json

    results = [_validate_one(p, project_dir, unsupported) for p in packages]
    codes = {code for code, _ in results}
    if as_json:
        click.echo(json.dumps({"packages": [entry for _, entry in results]}, ensure_ascii=False, indent=2))
    else:
        for _, entry in results:
            _print_validation(entry)
    if EXIT_NOT_FOUND in codes:
        raise SystemExit(EXIT_NOT_FOUND)
    raise SystemExit(EXIT_LOAD_FAILED if EXIT_LOAD_FAILED in codes else EXIT_SUCCESS)


def _print_validation(entry: dict[str, object]) -> None:
    from dtsx.engine.errors import Problem

    problems = [Problem(**p) for p in entry["problems"]]  # type: ignore[arg-type, attr-defined]
    warnings = [Problem(**p) for p in entry["warnings"]]  # type: ignore[arg-type, attr-defined]
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    if entry["valid"]:
        click.echo(f"{entry['path']}: valid")
        return
    noun = "problem" if len(problems) == 1 else "problems"
    click.echo(f"{entry['path']}: {len(problems)} {noun}")
    for problem in problems:
        click.echo(f"  {problem}")


@cli.command("show")
@click.argument("package")
@click.option("--json", "as_json", is_flag=True, help="Print the package as the stable JSON document.")
@click.option("--project-dir", type=click.Path(file_okay=False), default=None,
              help="Folder with the project's .conmgr files and Project.params (default: the package's folder).")
def show_command(package: str, as_json: bool, project_dir: str | None) -> None:
    """Print a package's structure: executables, constraints, handlers, connections, variables."""
    import json

    from dtsx.engine.render import show_document, show_text

    model = _load_or_exit(package, project_dir)
    if as_json:
        click.echo(json.dumps(show_document(model), ensure_ascii=False, indent=2))
    else:
        click.echo(show_text(model), nl=False)


@cli.command("graph")
@click.argument("package")
@click.option("--format", "fmt", type=click.Choice(["dot", "mermaid"]), default="dot", show_default=True,
              help="Graphviz DOT or a Mermaid flowchart.")
@click.option("--project-dir", type=click.Path(file_okay=False), default=None,
              help="Folder with the project's .conmgr files and Project.params (default: the package's folder).")
def graph_command(package: str, fmt: str, project_dir: str | None) -> None:
    """Draw the control flow: containers as clusters, constraints as labelled edges."""
    from dtsx.engine.render import graph_dot, graph_mermaid

    model = _load_or_exit(package, project_dir)
    click.echo(graph_dot(model) if fmt == "dot" else graph_mermaid(model), nl=False)


# --- dtsx list -------------------------------------------------------------------------------


@cli.command("list")
def list_plugins() -> None:
    """List every registered task and connection manager, with where each came from."""
    from dtsx.connections.base import CONNECTIONS
    from dtsx.engine.errors import DtsxError
    from dtsx.tasks.base import TASKS

    try:
        for title, registry in (("Tasks", TASKS), ("Connection managers", CONNECTIONS)):
            click.echo(f"{title}:")
            for reg in registry.registrations():
                click.echo(f"  {reg.key:<34} {reg.origin}")
    except DtsxError as exc:
        _fail(str(exc), EXIT_USAGE)


# --- dtsx eval -------------------------------------------------------------------------------


@cli.command("eval")
@click.argument("expression")
@click.option("--var", "variables", multiple=True, metavar="NS::NAME=TYPE:VALUE",
              help="A variable, e.g. User::Count=Int32:5 (repeatable).")
@click.option("--assign", is_flag=True, help="Evaluate the For Loop assignment form @[User::X] = expr.")
@click.option("--json", "as_json", is_flag=True, help="Print {\"value\", \"type\"} as JSON.")
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
        click.echo(f"{result.to_json()!s}  ({result.type})" if not result.is_null else f"NULL  ({result.type})")


def _parse_var(spec: str) -> tuple[str, tuple[str, str]]:
    name, sep, typed = spec.partition("=")
    type_name, colon, raw = typed.partition(":")
    if not sep or not colon or not name.strip():
        raise click.UsageError(f"--var {spec!r} is not NS::NAME=TYPE:VALUE, e.g. User::Count=Int32:5")
    return name.strip(), (type_name.strip(), raw)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"dtsx: {message}", err=True)
    raise SystemExit(code)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: click's usage errors exit 6, as dtexec's do."""
    try:
        code = cli.main(args=argv, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(EXIT_CANCELED)
    except click.UsageError as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    sys.exit(code if isinstance(code, int) else EXIT_SUCCESS)
