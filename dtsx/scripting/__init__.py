"""Script Tasks' languages: C# and VB.NET lowered to one AST and interpreted over .NET values.

Imported only when a package holds a Script Task (tree-sitter comes with it, lazily: the parser
modules are imported by ``compile_script``).

``compile_script(files, language)`` parses, lowers (``csharp``/``vb`` → ``ast``), checks what the
entry method reaches (``checks``) and compiles it to closures (``interpreter``). It never raises for
a script it cannot run: each reason is an ``Unsupported`` record in ``CompiledScript.problems``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from dtsx.scripting import ast

__all__ = ["CompiledScript", "SourceFile", "Unsupported", "compile_script"]


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One source of a script project: ``first_line`` is the package line of the text's line 1
    (1 when the text is not from a package)."""

    name: str
    text: str
    first_line: int = 1


@dataclass(frozen=True, slots=True)
class Unsupported:
    """Why a script does not run as is: where (``file``, script ``line``, ``column`` in
    characters), what (``construct``: ``object creation``, ``lambda``, ``member``, ``syntax
    error``...; ``name``: the .NET name, ``System.Net.WebClient``), the source ``snippet`` and a
    ``hint`` saying what to do."""

    file: str
    line: int
    column: int
    construct: str
    name: str
    snippet: str
    hint: str

    def describe(self) -> str:
        """One sentence: ``file:line:column construct name "snippet": hint``."""
        what = f"{self.construct} {self.name}".strip()
        snippet = f' "{self.snippet}"' if self.snippet else ""
        hint = f": {self.hint}" if self.hint else ""
        return f"{self.file}:{self.line}:{self.column} {what}{snippet}{hint}"


class CompiledScript:
    """A compiled script: ``problems`` empty means it runs as is."""

    def __init__(
        self,
        units: tuple[ast.CompilationUnit, ...],
        problems: tuple[Unsupported, ...],
        language: str,
    ) -> None:
        self.units = units
        self.problems = problems
        self.language = language
        self._program: object | None = None

    def run(self, dts: object, *, entry_method: str = "Main") -> None:
        """Run ``ScriptMain.<entry_method>()`` (or, for 2005 VB, the class named ``entry_method``'s
        ``Main``) with ``Dts`` bound to ``dts``.

        An uncaught .NET exception propagates as ``values.DotNetException`` with ``script_line``
        and ``script_file`` set; a Python exception escaping a shim is mapped to its .NET
        counterpart (ZeroDivisionError → DivideByZeroException...) or, if unexpected, re-raised
        as is."""
        from . import interpreter

        if self._program is None:
            self._program = interpreter.Program(self.units, self.language)
        assert isinstance(self._program, interpreter.Program)
        self._program.run(dts, entry_method)


def compile_script(
    files: Sequence[SourceFile], language: Literal["CSharp", "VisualBasic"]
) -> CompiledScript:
    """Parse, lower and check ``files``; never raises for unsupported input (each reason is an
    ``Unsupported`` record, a syntax error one at its line)."""
    from . import checks

    units: list[ast.CompilationUnit] = []
    problems: list[Unsupported] = []
    for source in files:
        unit = _lower(source, language)
        if isinstance(unit, Unsupported):
            problems.append(unit)
            continue
        units.append(unit)
        problems.extend(_syntax_errors(unit))
    if not problems:
        problems.extend(checks.check(tuple(units), language))
    return CompiledScript(tuple(units), tuple(problems), language)


def _lower(source: SourceFile, language: str) -> ast.CompilationUnit | Unsupported:
    if language == "CSharp":
        from . import csharp

        return csharp.lower(source.name, source.text)
    try:
        from dtsx.scripting import vb  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return Unsupported(
            source.name, 1, 1, "language", "VB.NET", "", "VB.NET scripts are not interpreted yet"
        )
    unit: ast.CompilationUnit = vb.lower(source)
    return unit


def _syntax_errors(unit: ast.CompilationUnit) -> list[Unsupported]:
    return [
        Unsupported(unit.file, e.line, e.column, e.construct, e.name, e.snippet, e.hint)
        for e in unit.syntax_errors
    ]
