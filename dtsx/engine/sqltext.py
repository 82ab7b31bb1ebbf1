"""SQL text as the Execute SQL task sees it: GO batches, parameter markers, statements.

Pure text: no I/O, no driver. The scanner knows where a dialect's string literals, quoted
identifiers and comments are, so a ``?``, ``@name``, ``;`` or ``GO`` inside them is never taken
for syntax (spec execute-sql.md §2.2, §2.3, §4.3, §4.5):

- ``split_batches`` cuts a statement on ``GO`` lines as SSIS's batch parser does;
- ``find_markers`` / ``bind_markers`` find the markers of a connection type (``?`` or ``@name``)
  and rewrite them to a DB-API paramstyle, so values are always bound, never spliced;
- ``statements`` splits a batch on ``;`` for drivers that run one statement per call.

The results are cached by text: a task in a loop runs the same SQL many times.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from dtsx.engine.errors import DtsxError

__all__ = [
    "Batch",
    "BoundSql",
    "Marker",
    "MarkerStyle",
    "SqlTextError",
    "Statement",
    "bind_markers",
    "code_spans",
    "find_markers",
    "split_batches",
    "statements",
]

MarkerStyle = Literal["?", "@"]
PARAMSTYLES = frozenset({"qmark", "format", "pyformat", "named", "numeric"})


class SqlTextError(DtsxError):
    """SQL text the batch parser refuses (``GO 0``); the message names the line."""


@dataclass(frozen=True, slots=True)
class Batch:
    """One batch of a statement: the text between ``GO`` lines."""

    text: str
    line: int  # 1-based line of the whole statement text where this batch starts
    repeat: int = 1  # ``GO n``: the batch runs n times


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement of a batch (``statements``)."""

    text: str
    line: int  # 1-based line of the batch where the statement starts


@dataclass(frozen=True, slots=True)
class Marker:
    """One parameter marker of a batch."""

    name: int | str  # "?": its 0-based position; "@": the name without "@", as written
    start: int
    end: int
    output: bool = False  # followed by OUTPUT / OUT (``EXEC p ?, ? OUTPUT``)
    return_value: bool = False  # ``EXEC ? = p`` or ``{? = call p}``


@dataclass(frozen=True, slots=True)
class BoundSql:
    """A batch rewritten for a driver: ``cursor.execute(sql, arguments(values))``."""

    sql: str
    markers: tuple[Marker, ...]
    paramstyle: str

    def arguments(self, values: Sequence[Any]) -> Sequence[Any] | dict[str, Any] | None:
        """What the driver takes for ``values`` (one per marker, in marker order).

        None when there are no markers: call ``execute(sql)`` without arguments, so a
        format-style driver does not read ``%`` in the text as a placeholder.
        """
        if len(values) != len(self.markers):
            raise ValueError(f"{len(self.markers)} markers, {len(values)} values")
        if not self.markers:
            return None
        if self.paramstyle == "named":
            return {f"p{i}": value for i, value in enumerate(values, 1)}
        return tuple(values)


# -- the scanner ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Dialect:
    opener: re.Pattern[str]  # where a literal, quoted name or comment starts
    nested_comments: bool
    backslash: bool  # backslash escapes inside '...' (MySQL)


def _dialect(
    quotes: str, *, nested: bool, backslash: bool = False, dollar: bool = False
) -> _Dialect:
    parts = ["--", r"/\*"] + [re.escape(q) for q in quotes]
    if dollar:
        parts.append(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")
    return _Dialect(re.compile("|".join(parts)), nested, backslash)


_DIALECTS = {
    "tsql": _dialect("'\"[", nested=True),
    "sqlite": _dialect("'\"[`", nested=False),
    "postgresql": _dialect("'\"", nested=True, dollar=True),
    "duckdb": _dialect("'\"", nested=True, dollar=True),
    "mysql": _dialect("'\"`#", nested=False, backslash=True),
}
_DIALECTS["postgres"] = _DIALECTS["postgresql"]
_DIALECTS["mssql"] = _DIALECTS["tsql"]
_DIALECTS["mariadb"] = _DIALECTS["mysql"]
_CLOSERS = {"'": "'", '"': '"', "[": "]", "`": "`"}


def _dialect_named(name: str) -> _Dialect:
    # An engine we do not know gets the ANSI quotes and comments every engine shares.
    return _DIALECTS.get(name.lower(), _DIALECTS["postgresql"])


def _end_of_quoted(text: str, start: int, close: str, backslash: bool) -> int:
    """Offset after the quoted run opened at ``start`` (a doubled closer is an escaped one)."""
    i = start + 1
    n = len(text)
    while True:
        j = text.find(close, i)
        if j < 0:
            return n
        if backslash:
            k = j - 1
            while k >= i and text[k] == "\\":
                k -= 1
            if (j - 1 - k) % 2:  # an odd run of backslashes escapes the quote
                i = j + 1
                continue
        if j + 1 < n and text[j + 1] == close:
            i = j + 2
            continue
        return j + 1


def _end_of_block(text: str, start: int, nested: bool) -> int:
    depth = 1
    i = start + 2
    n = len(text)
    while depth:
        j = text.find("*/", i)
        if j < 0:
            return n
        k = text.find("/*", i, j) if nested else -1
        if k >= 0:
            depth += 1
            i = k + 2
        else:
            depth -= 1
            i = j + 2
    return i


def _end_of(text: str, start: int, token: str, dialect: _Dialect) -> int:
    if token == "--" or token == "#":
        j = text.find("\n", start)
        return len(text) if j < 0 else j
    if token == "/*":
        return _end_of_block(text, start, dialect.nested_comments)
    if token.startswith("$"):
        j = text.find(token, start + len(token))
        return len(text) if j < 0 else j + len(token)
    return _end_of_quoted(text, start, _CLOSERS[token], dialect.backslash and token == "'")


@lru_cache(maxsize=512)
def _skipped(text: str, dialect: str) -> tuple[tuple[int, int, str], ...]:
    """(start, end, kind) of every literal, quoted name and comment; kind is its opener."""
    d = _dialect_named(dialect)
    found: list[tuple[int, int, str]] = []
    pos = 0
    search = d.opener.search
    while True:
        match = search(text, pos)
        if match is None:
            return tuple(found)
        start = match.start()
        token = match.group()
        end = _end_of(text, start, token, d)
        found.append((start, end, token))
        pos = end


def code_spans(text: str, dialect: str = "tsql") -> list[tuple[int, int]]:
    """(start, end) of the text outside literals, quoted names and comments."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for start, end, _kind in _skipped(text, dialect):
        if start > pos:
            spans.append((pos, start))
        pos = end
    if pos < len(text):
        spans.append((pos, len(text)))
    return spans


# -- GO batches ----------------------------------------------------------------------------------

_GO = re.compile(r"[ \t\f\v]*GO(?:[ \t\f\v]+(\d+))?[ \t\f\v]*(?:--.*)?\r?", re.IGNORECASE)


def split_batches(text: str) -> list[Batch]:
    """The batches of a T-SQL statement, cut on ``GO`` lines (spec §2.2, §4.5).

    A line is a separator when, outside block comments and multi-line literals, it is ``GO``
    with an optional positive count and an optional ``--`` comment. ``GO;``, ``GOTO x`` and
    ``go_col`` are not. Batches of only blanks and comments are dropped.
    """
    return list(_split_batches(text))


@lru_cache(maxsize=256)
def _split_batches(text: str) -> tuple[Batch, ...]:
    inside = [(start, end) for start, end, kind in _skipped(text, "tsql") if kind != "--"]
    batches: list[Batch] = []
    begin = 0  # offset where the current batch starts
    offset = 0
    k = 0
    for number, line in enumerate(text.split("\n"), 1):
        while k < len(inside) and inside[k][1] <= offset:
            k += 1
        in_skipped = k < len(inside) and inside[k][0] < offset < inside[k][1]
        match = None if in_skipped or "o" not in line.lower() else _GO.fullmatch(line)
        if match is not None:
            count = int(match.group(1) or 1)
            if count < 1:
                raise SqlTextError(f"line {number}: GO takes a positive count, not {count}")
            _add_batch(batches, text, begin, offset, count)
            begin = offset + len(line) + 1
        offset += len(line) + 1
    _add_batch(batches, text, begin, len(text), 1)
    return tuple(batches)


def _add_batch(batches: list[Batch], text: str, begin: int, end: int, repeat: int) -> None:
    chunk = text[begin:end]
    if not _has_code(chunk):
        return
    lead = len(chunk) - len(chunk.lstrip())
    line = text.count("\n", 0, begin + lead) + 1
    batches.append(Batch(chunk.strip(), line, repeat))


def _has_code(text: str, dialect: str = "tsql") -> bool:
    return any(text[a:b].strip() for a, b in code_spans(text, dialect))


# -- markers -------------------------------------------------------------------------------------

_AT_NAME = re.compile(r"(?<![\w@$#])@(?!@)(\w[\w@$#]*)")
_OUTPUT_AFTER = re.compile(r"\s*(?:OUTPUT|OUT)\b", re.IGNORECASE)
_EQUALS_AFTER = re.compile(r"\s*=(?!=)")
_CALL_BEFORE = re.compile(r"(?:\bEXEC(?:UTE)?|\{)\s*$", re.IGNORECASE)


def find_markers(
    sql: str, style: MarkerStyle, names: Collection[str] | None = None, dialect: str = "tsql"
) -> list[Marker]:
    """The parameter markers of one batch, in order.

    ``?``: every ``?`` outside literals and comments. ``@``: every ``@name`` that ``names``
    lists (compared case-insensitively, one leading ``@`` ignored), so a local variable such as
    ``DECLARE @d`` is left alone; ``names=None`` takes every ``@name`` (never ``@@ROWCOUNT``).
    """
    return list(_find_markers(sql, style, _name_key(names), dialect))


def _name_key(names: Collection[str] | None) -> frozenset[str] | None:
    if names is None:
        return None
    return frozenset((n[1:] if n.startswith("@") else n).lower() for n in names)


@lru_cache(maxsize=1024)
def _find_markers(
    sql: str, style: str, names: frozenset[str] | None, dialect: str
) -> tuple[Marker, ...]:
    if style not in ("?", "@"):
        raise ValueError(f"marker style must be '?' or '@', not {style!r}")
    found: list[Marker] = []
    for a, b in code_spans(sql, dialect):
        if style == "?":
            i = sql.find("?", a, b)
            while i >= 0:
                found.append(_marker(sql, len(found), i, i + 1, a))
                i = sql.find("?", i + 1, b)
            continue
        for match in _AT_NAME.finditer(sql, a, b):
            name = match.group(1)
            if names is None or name.lower() in names:
                found.append(_marker(sql, name, match.start(), match.end(), a))
    return tuple(found)


def _marker(sql: str, name: int | str, start: int, end: int, span_start: int) -> Marker:
    output = _OUTPUT_AFTER.match(sql, end) is not None
    returns = (
        _EQUALS_AFTER.match(sql, end) is not None
        and _CALL_BEFORE.search(sql, max(0, start - 40), start) is not None
    )
    return Marker(name, start, end, output, returns)


def bind_markers(
    sql: str,
    style: MarkerStyle,
    paramstyle: str,
    names: Collection[str] | None = None,
    dialect: str = "tsql",
) -> BoundSql:
    """``sql`` with its markers rewritten to ``paramstyle`` (qmark, format, pyformat, named,
    numeric); supply one value per ``markers`` entry, in order.

    For the ``%s`` styles every other ``%`` is doubled when there are markers (the driver then
    reads the whole text as a format string, literals included); without markers the text is
    left as it is and ``arguments`` returns None.
    """
    return _bind_markers(sql, style, paramstyle, _name_key(names), dialect)


@lru_cache(maxsize=1024)
def _bind_markers(
    sql: str, style: str, paramstyle: str, names: frozenset[str] | None, dialect: str
) -> BoundSql:
    if paramstyle not in PARAMSTYLES:
        raise ValueError(f"unknown DB-API paramstyle {paramstyle!r}")
    markers = _find_markers(sql, style, names, dialect)
    if not markers:
        return BoundSql(sql, (), paramstyle)
    percent = paramstyle in ("format", "pyformat")
    parts: list[str] = []
    pos = 0
    for number, marker in enumerate(markers, 1):
        chunk = sql[pos : marker.start]
        parts.append(chunk.replace("%", "%%") if percent else chunk)
        parts.append(_placeholder(paramstyle, number))
        pos = marker.end
    tail = sql[pos:]
    parts.append(tail.replace("%", "%%") if percent else tail)
    return BoundSql("".join(parts), markers, paramstyle)


def _placeholder(paramstyle: str, number: int) -> str:
    if paramstyle == "qmark":
        return "?"
    if paramstyle == "numeric":
        return f":{number}"
    if paramstyle == "named":
        return f":p{number}"
    return "%s"


# -- statements ----------------------------------------------------------------------------------

_TRIGGER = re.compile(r"\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP\w*\s+)?TRIGGER\b", re.IGNORECASE)
_BLOCK_WORD = re.compile(r"\b(BEGIN|CASE|END)\b", re.IGNORECASE)


def statements(sql: str, dialect: str = "tsql") -> list[Statement]:
    """The statements of a batch, split on ``;`` outside literals and comments, for drivers
    that run one statement per call (sqlite3; psycopg with parameters).

    Statements of only blanks and comments are dropped; the ``;`` itself is not kept. A
    ``CREATE TRIGGER ... BEGIN ...; END`` stays whole.
    """
    return list(_statements(sql, dialect))


@lru_cache(maxsize=512)
def _statements(sql: str, dialect: str) -> tuple[Statement, ...]:
    spans = code_spans(sql, dialect)
    found: list[Statement] = []
    begin = 0
    for a, b in spans:
        i = sql.find(";", a, b)
        while i >= 0:
            if not _inside_trigger_body(sql, begin, i, dialect):
                _add_statement(found, sql, begin, i, dialect)
                begin = i + 1
            i = sql.find(";", i + 1, b)
    _add_statement(found, sql, begin, len(sql), dialect)
    return tuple(found)


def _inside_trigger_body(sql: str, begin: int, end: int, dialect: str) -> bool:
    """Whether ``sql[begin:end]`` is a CREATE TRIGGER whose BEGIN ... END is still open."""
    if _TRIGGER.match(sql, begin) is None:
        return False
    depth = 0
    for a, b in code_spans(sql[begin:end], dialect):
        for match in _BLOCK_WORD.finditer(sql, begin + a, begin + b):
            depth += -1 if match.group(1).upper() == "END" else 1
    return depth > 0


def _add_statement(found: list[Statement], sql: str, begin: int, end: int, dialect: str) -> None:
    text = sql[begin:end]
    if _has_code(text, dialect):
        lead = len(text) - len(text.lstrip())
        found.append(Statement(text.strip(), sql.count("\n", 0, begin + lead) + 1))
