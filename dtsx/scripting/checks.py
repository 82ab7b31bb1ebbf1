"""The plan-time finder of what a script's entry method reaches that the interpreter cannot run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dtsx.scripting import ast

if TYPE_CHECKING:
    from dtsx.scripting import Unsupported

__all__ = ["check"]


def check(units: tuple[ast.CompilationUnit, ...], language: str) -> list[Unsupported]:
    """Every unsupported construct the entry method reaches, in source order."""
    return []
