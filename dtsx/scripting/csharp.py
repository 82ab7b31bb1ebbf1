"""C# source → ``ast.CompilationUnit`` with tree-sitter-c-sharp (being written)."""

from __future__ import annotations

from dtsx.scripting import ast

__all__ = ["lower"]


def lower(file: str, text: str) -> ast.CompilationUnit:
    """Parse and lower one C# file; never raises for bad input (see ``ast.UnsupportedStmt``)."""
    raise NotImplementedError("the C# front end is being written")
