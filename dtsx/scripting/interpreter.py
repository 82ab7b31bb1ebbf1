"""Runs the AST: compiled once to Python closures over .NET values (being written)."""

from __future__ import annotations

from dtsx.scripting import ast

__all__ = ["Program"]


class Program:
    """The compiled classes of a script."""

    def __init__(self, units: tuple[ast.CompilationUnit, ...], language: str) -> None:
        self.units = units
        self.language = language

    def run(self, dts: object, entry: str) -> None:
        raise NotImplementedError("the interpreter is being written")
