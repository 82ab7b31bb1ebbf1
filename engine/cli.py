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
        click.echo(json.dumps({"value": result.to_json(), "type": result.type}, ensure_ascii=False))
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
