"""The ``dtsx`` command. The only module that prints.

Exit codes are dtexec's: 0 success, 1 failure, 3 canceled, 4 package not found,
5 load or validation failure, 6 usage or internal error.
"""

from __future__ import annotations

import sys

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
