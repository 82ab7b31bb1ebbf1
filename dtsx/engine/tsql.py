"""T-SQL → another engine's SQL, strictly: an exact translation or a ``TranslationError``.

Packages leaving SQL Server carry T-SQL. sqlglot (imported lazily, only when a connection opts
in or ``dtsx sql-check`` runs) translates the plain SELECT/DML part well, but silently emits
wrong SQL for much of the rest (spec execute-sql.md §4.8): ``DECLARE @d`` becomes ``$d``,
``SET NOCOUNT ON`` becomes ``SET NOCOUNT = ON``, ``#temp`` loses its ``#``, ``GETDATE()-1`` and
``SCOPE_IDENTITY()`` pass through unchanged, ``a + ' ' + b`` stays an addition. So each
statement is checked on the T-SQL syntax tree against the constructs that have no exact
translation, generated with ``unsupported_level=RAISE``, and parsed back in the target
dialect to compare what it reads and writes. A statement runs translated only when all of
that passes.

Some rewrites keep T-SQL's meaning where sqlglot alone would not: ``SET NOCOUNT ON|OFF`` is
dropped (it only silences row counts); ``+`` with a string operand becomes concatenation
(``||`` / ``CONCAT``); ``LEN(x)`` becomes ``LENGTH(RTRIM(x))`` (LEN counts no trailing spaces);
``CAST(x AS VARCHAR)`` gets T-SQL's default length 30; ``DELETE t`` gets its ``FROM``; ``N'...'``
becomes a plain literal. A ``+`` between two values of unknown type (two columns) is refused:
without the schema nobody can tell an addition from a concatenation. What T-SQL does by its
server's settings (case-insensitive collations, trailing spaces ignored by ``=``) is the
target's business: no translation can see the data.

Parameter markers (``?``, ``@name``) pass through unchanged, so ``engine.sqltext`` binds them
after translation exactly as before.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from dtsx.engine.errors import DtsxError
from dtsx.engine.sqltext import code_spans, find_markers

if TYPE_CHECKING:
    from sqlglot import exp

__all__ = ["Finding", "TARGETS", "TranslationError", "check", "target_name", "translator"]

# SQLAlchemy dialect names and sql-check's --target names → sqlglot's dialect names.
TARGETS = {
    "postgres": "postgres",
    "postgresql": "postgres",
    "sqlite": "sqlite",
    "duckdb": "duckdb",
    "mysql": "mysql",
    "mariadb": "mysql",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One construct of a T-SQL batch with no exact translation to the target."""

    line: int  # 1-based line in the batch text
    construct: str  # what it is, as a T-SQL author would name it: "EXEC", "#temp table"
    detail: str  # why it does not translate / what to do, one clause

    def __str__(self) -> str:
        return f"line {self.line}: {self.construct}: {self.detail}"


class TranslationError(DtsxError):
    """No exact translation: ``findings`` lists every construct in the way (empty when the
    target itself is one dtsx cannot translate to)."""

    def __init__(self, message: str, findings: tuple[Finding, ...] = (), target: str = "") -> None:
        self.findings = findings
        self.target = target
        super().__init__(message)

    @classmethod
    def of(cls, findings: tuple[Finding, ...], target: str) -> TranslationError:
        first = findings[0]
        more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
        return cls(
            f"T-SQL does not translate exactly to {target}: line {first.line}: "
            f"{first.construct}: {first.detail}{more}; rewrite the statement for {target}, "
            "or run it without T-SQL translation",
            findings,
            target,
        )


def target_name(dialect: str) -> str:
    """sqlglot's name for a target (``postgresql`` → ``postgres``); TranslationError if dtsx
    cannot translate to it."""
    found = TARGETS.get(dialect.lower())
    if found is None:
        raise TranslationError(
            f"dtsx cannot translate T-SQL to {dialect!r}; the targets are "
            f"{', '.join(sorted(set(TARGETS.values())))} (SQL Server itself needs no translation)"
        )
    return found


def _unchanged(sql: str) -> str:
    return sql


def translator(dialect: str) -> Callable[[str], str]:
    """A function translating one T-SQL batch to ``dialect`` (a SQLAlchemy dialect name or a
    sql-check target); it raises ``TranslationError`` rather than return a lossy translation.
    SQL Server (``mssql``) reads T-SQL as it is."""
    if dialect.lower() in ("mssql", "tsql"):
        return _unchanged
    target = target_name(dialect)

    def translate(sql: str) -> str:
        text, findings = _translated(sql, target)
        if findings:
            raise TranslationError.of(findings, target)
        return text

    return translate


def check(sql: str, dialect: str) -> list[Finding]:
    """Every construct of the batch ``sql`` that keeps it from translating to ``dialect``."""
    return list(_translated(sql, target_name(dialect))[1])


# -- the translation ---------------------------------------------------------------------------

# Markers are hidden behind identifiers while sqlglot works: no dialect renames a plain lower-case
# identifier, and sqlglot would otherwise turn "?" into "%s" and "@a" into "$a".
_HIDDEN = re.compile(r"\bdtsx_marker_(\d+)\b")

# T-SQL expression classes with no exact translation to any target: class -> (construct, why).
_TSQL_ONLY = {
    "ObjectId": ("OBJECT_ID()", "a SQL Server catalog function"),
    "DateDiff": (
        "DATEDIFF",
        "T-SQL counts the boundaries crossed (23:00 to 01:00 is one day); sqlglot's "
        "translations count whole intervals elapsed",
    ),
}
# Per-target statements or clauses that sqlglot passes through (or mistranslates) but the engine
# does not have: class name -> (construct, why).
_TARGET_MISSING: dict[str, dict[str, tuple[str, str]]] = {
    "sqlite": {
        "Merge": ("MERGE", "sqlite has no MERGE"),
        "Lateral": ("CROSS/OUTER APPLY", "sqlite has no LATERAL join"),
        "Use": ("USE", "sqlite has no databases to switch to"),
        "TruncateTable": ("TRUNCATE TABLE", "sqlite has no TRUNCATE; write DELETE FROM"),
        "DateAdd": ("DATEADD", "sqlglot's sqlite DATE(d, '+n DAY') drops the time of day"),
        "DateSub": ("DATEADD", "sqlglot's sqlite DATE(d, '-n DAY') drops the time of day"),
        # Measured: what sqlglot writes for these is no function of sqlite 3 (tests/engine/
        # test_tsql.py runs every translation of its function list on sqlite3).
        "Uuid": ("NEWID()", "sqlite has no UUID()"),
        "Left": ("LEFT()", "sqlite has no LEFT(); write SUBSTR(s, 1, n)"),
        "Right": ("RIGHT()", "sqlite has no RIGHT(); write SUBSTR(s, -n)"),
        "Reverse": ("REVERSE()", "sqlite has no REVERSE()"),
        "Repeat": ("REPLICATE()", "sqlite has no REPEAT()"),
        "Space": ("SPACE()", "sqlite has no REPEAT()"),
        "Concat": ("CONCAT()", "sqlite before 3.44 has no CONCAT(); write a || b"),
        "ConcatWs": ("CONCAT_WS()", "sqlite before 3.44 has no CONCAT_WS()"),
        "Year": ("YEAR()", "sqlite has no YEAR(); write STRFTIME('%Y', d)"),
        "Month": ("MONTH()", "sqlite has no MONTH(); write STRFTIME('%m', d)"),
        "Day": ("DAY()", "sqlite has no DAY(); write STRFTIME('%d', d)"),
        "Extract": ("DATEPART()", "sqlite has no EXTRACT"),
        "LastDay": ("EOMONTH()", "sqlite has no LAST_DAY()"),
        "Ascii": ("ASCII()", "sqlite has no ASCII(); write UNICODE(s)"),
        "MD5": ("HASHBYTES()", "sqlite has no MD5()"),
        "CurrentUser": ("CURRENT_USER / SUSER_SNAME()", "sqlite has no users"),
        "Translate": ("TRANSLATE()", "sqlite has no TRANSLATE()"),
    },
    "mysql": {"Merge": ("MERGE", "mysql has no MERGE")},
    "postgres": {
        "Use": ("USE", "postgres connects to one database; point --conn at it"),
        "Soundex": ("SOUNDEX()", "postgres has SOUNDEX only in the fuzzystrmatch extension"),
    },
    "duckdb": {
        # sqlglot writes TRY_CAST, which gives NULL where T-SQL's CONVERT fails the statement.
        "Convert": ("CONVERT()", "sqlglot's duckdb TRY_CAST turns a failed conversion into NULL"),
    },
}
# What sqlglot writes for these is no function of any target (measured on postgres and sqlite).
for _missing in _TARGET_MISSING.values():
    _missing["CurrentTimestampLTZ"] = ("SYSDATETIMEOFFSET()", "sqlglot writes a made-up name")
    _missing["Stuff"] = ("STUFF()", "sqlglot passes it through; the target has no STUFF()")
    _missing["DateFromParts"] = ("DATEFROMPARTS()", "sqlglot writes a made-up DATE_FROM_PARTS()")
_HARMLESS_HINTS = frozenset({"NOLOCK", "READUNCOMMITTED"})
_TEXT_TYPES = frozenset({"VARCHAR", "NVARCHAR", "CHAR", "NCHAR", "TEXT", "NAME"})
_CUT_TYPES = frozenset({"VARCHAR", "NVARCHAR", "CHAR", "NCHAR"})  # T-SQL cuts to their length
_NUMBER_TYPES = frozenset(
    {"INT", "BIGINT", "SMALLINT", "TINYINT", "DECIMAL", "DOUBLE", "FLOAT", "MONEY", "BIT"}
)
_DATE_TYPES = frozenset({"DATETIME", "DATETIME2", "TIMESTAMP", "DATE", "SMALLDATETIME"})


@lru_cache(maxsize=512)
def _translated(sql: str, target: str) -> tuple[str, tuple[Finding, ...]]:
    """(the translation, ()) or ("", the findings) for one batch."""
    if _HIDDEN.search(sql):
        return "", (Finding(1, "dtsx_marker_N", "the name is reserved for translation"),)
    hidden, originals = _hide_markers(sql)
    trees, findings = _parse(hidden, "tsql")
    for breaks in (_STATEMENT_START, _ANY_STATEMENT_START):
        if not ((findings and findings[0].construct == "syntax") or _commands(trees)):
            break
        # T-SQL needs no ";" between statements; sqlglot does (or swallows the rest of the
        # batch into a raw command). Retry with one before each line that starts a statement;
        # a break that cuts a statement leaves a piece unreadable or incomplete: then not.
        retried, again = _parse(_with_breaks(hidden, breaks), "tsql")
        if not again and all(_complete(tree) for tree in retried):
            if findings or _commands(retried) < _commands(trees):
                trees, findings = retried, []
    if findings:
        return "", (_classify(hidden, findings[0]),)
    kept: list[exp.Expr] = []
    for tree in trees:
        if tree is None or _is_nocount(tree):
            continue
        findings.extend(_check_tree(tree, target))
        kept.append(tree)
    if findings:
        return "", tuple(findings)
    parts, findings = _generate(kept, target)
    if findings:
        return "", tuple(findings)
    text = ";\n".join(parts)
    findings = _compare(kept, text, target)
    if findings:
        return "", tuple(findings)
    restored = _restore_markers(text, originals, target)
    if isinstance(restored, Finding):
        return "", (restored,)
    return restored, ()


def _hide_markers(sql: str) -> tuple[str, list[str]]:
    markers = sorted(
        [*find_markers(sql, "?"), *find_markers(sql, "@")], key=lambda marker: marker.start
    )
    parts: list[str] = []
    originals: list[str] = []
    pos = 0
    for marker in markers:
        parts.append(sql[pos : marker.start])
        parts.append(f"dtsx_marker_{len(originals)}")
        originals.append(sql[marker.start : marker.end])
        pos = marker.end
    parts.append(sql[pos:])
    return "".join(parts), originals


def _restore_markers(text: str, originals: list[str], target: str) -> str | Finding:
    """The markers back in place; a translation that drops a marker, or repeats or reorders a
    ``?`` (whose value would bind to the wrong place), is refused."""
    seen: list[int] = []
    parts: list[str] = []
    pos = 0
    for a, b in code_spans(text, target):
        for match in _HIDDEN.finditer(text, a, b):
            seen.append(int(match.group(1)))
            parts.append(text[pos : match.start()])
            parts.append(originals[int(match.group(1))])
            pos = match.end()
    parts.append(text[pos:])
    # A "?" binds by position: each must come out once, in order. An "@name" binds by name.
    positional = [i for i in seen if originals[i] == "?"]
    wanted = [i for i, original in enumerate(originals) if original == "?"]
    if positional != wanted or set(seen) != set(range(len(originals))):
        return Finding(1, "? markers", f"the {target} translation repeats or reorders them")
    return "".join(parts)


class _NoFallbackWarning(logging.Filter):
    """sqlglot warns on its logger when it keeps a statement as raw text; the finding says it
    (a level change instead would race between threads translating at once)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Falling back to parsing as a 'Command'" not in record.getMessage()


_FILTER = _NoFallbackWarning()


def _parse(sql: str, read: str) -> tuple[list[exp.Expr | None], list[Finding]]:
    import sqlglot
    from sqlglot.errors import ErrorLevel, SqlglotError

    logger = logging.getLogger("sqlglot")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)  # idempotent: Logger.addFilter skips a filter it holds
    try:
        trees = list(sqlglot.parse(sql, read=read, error_level=ErrorLevel.RAISE))
    except SqlglotError as exc:
        return [], [_parse_finding(exc, read)]
    _mark_statement_lines(trees, sql, read)
    return trees, []


def _mark_statement_lines(trees: list[exp.Expr | None], sql: str, read: str) -> None:
    """Note on each statement the line it starts on, for findings on nodes sqlglot gives no
    position (``@@ROWCOUNT``, literals): the first token after each ``;``."""
    from sqlglot.dialects.dialect import Dialect
    from sqlglot import TokenType

    starts: list[int | None] = [None]
    for token in Dialect.get_or_raise(read).tokenize(sql):
        if token.token_type == TokenType.SEMICOLON:
            starts.append(None)
        elif starts[-1] is None:
            starts[-1] = token.line
    if starts and starts[-1] is None and len(starts) == len(trees) + 1:
        starts.pop()  # the ";" that ends the last statement opens no other
    if len(starts) != len(trees):
        return
    for tree, line in zip(trees, starts, strict=True):
        if tree is not None and line is not None:
            tree.meta["statement_line"] = line


_UNSUPPORTED = {
    "Execute": ("EXEC", "a stored procedure call has no translation; call it from the target"),
    "If block": ("IF", "T-SQL control flow has no translation"),
    "While block": ("WHILE", "T-SQL control flow has no translation"),
    "Stored Procedure": ("CREATE PROCEDURE", "T-SQL procedures have no translation"),
    "query option": ("FOR XML / OPTION", "SQL Server query options have no translation"),
}


def _parse_finding(exc: Exception, read: str) -> Finding:
    message = str(exc)
    for key, (construct, detail) in _UNSUPPORTED.items():
        if key in message:
            return Finding(1, construct, detail)
    errors = getattr(exc, "errors", None) or [{}]
    line = int(errors[0].get("line") or 1)
    what = errors[0].get("description") or message.splitlines()[0]
    near = errors[0].get("highlight")
    where = f" near {near!r}" if near else ""
    syntax = "T-SQL" if read == "tsql" else read
    return Finding(line, "syntax", f"cannot be read as {syntax} ({what}{where})")


# Words that start a statement on a line of their own in T-SQL written without ";". First
# without SELECT (INSERT ... SELECT, UNION SELECT) and SET (UPDATE ... SET), which usually
# continue a statement; then with them, for "INSERT ...\nSELECT SCOPE_IDENTITY()".
_STARTS = "DELETE|INSERT|UPDATE|MERGE|TRUNCATE|DROP|CREATE|ALTER|COMMIT|ROLLBACK|BEGIN|DECLARE"
_STARTS += "|EXEC|EXECUTE|PRINT|IF|WHILE"
_STATEMENT_START = re.compile(rf"^([ \t]*)(?=(?:{_STARTS})\b)", re.IGNORECASE | re.MULTILINE)
_ANY_STATEMENT_START = re.compile(
    rf"^([ \t]*)(?=(?:{_STARTS}|SELECT|SET)\b)", re.IGNORECASE | re.MULTILINE
)
# Statements with no translation, by their first word, when sqlglot cannot even read them.
_NO_TRANSLATION = frozenset(
    {
        "WAITFOR", "RAISERROR", "THROW", "RETURN", "GOTO", "DBCC", "BACKUP", "RESTORE", "BULK",
        "WHILE", "IF", "DECLARE", "EXEC", "EXECUTE", "PRINT", "SET", "USE", "CURSOR", "FETCH",
        "OPEN", "CLOSE", "DEALLOCATE", "KILL", "RECONFIGURE", "CHECKPOINT", "GRANT", "DENY",
        "REVOKE", "SAVE", "TRY", "CATCH",
    }
)  # fmt: skip
_SQL_START = frozenset(
    {"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "WITH", "CREATE", "DROP", "ALTER",
     "TRUNCATE", "BEGIN", "COMMIT", "ROLLBACK", "END", "VALUES", "("}
)  # fmt: skip
_NEAR = re.compile(r"near '(\w+)'\)$")
_WORD = re.compile(r"[\w.\[\]#@]+|\S")


def _with_breaks(sql: str, breaks: re.Pattern[str]) -> str:
    spans = code_spans(sql)
    out: list[str] = []
    pos = 0
    for match in breaks.finditer(sql):
        start = match.end(1)
        if start == 0 or not any(a <= start < b for a, b in spans):
            continue
        out.append(sql[pos:start])
        out.append(";")
        pos = start
    out.append(sql[pos:])
    return "".join(out)


def _commands(trees: list[exp.Expr | None]) -> int:
    """How many statements sqlglot kept as raw text (it could not read them)."""
    from sqlglot import exp

    return sum(isinstance(tree, exp.Command) for tree in trees)


def _complete(tree: exp.Expr | None) -> bool:
    """sqlglot also reads a cut-off ``INSERT INTO t (a)``; a break that made one is wrong."""
    from sqlglot import exp

    return not isinstance(tree, exp.Insert) or tree.expression is not None


def _classify(sql: str, finding: Finding) -> Finding:
    """Name what sqlglot could not read when it is a statement with no translation anyway: one
    that starts with a procedural word (WAITFOR, WHILE...), or a procedure called without
    EXEC."""
    lines = sql.splitlines()
    line = lines[finding.line - 1] if 0 < finding.line <= len(lines) else ""
    near = _NEAR.search(finding.detail)
    for word in [*_WORD.findall(line)[:1], near.group(1) if near else ""]:
        if word.upper() in _NO_TRANSLATION:
            return Finding(finding.line, word.upper(), "a T-SQL statement with no translation")
    first = next(iter(_WORD.findall(_code_only(sql))), "").upper()
    if first and first not in _SQL_START and first not in _NO_TRANSLATION:
        return Finding(1, "EXEC", "a stored procedure call (EXEC omitted) has no translation")
    return finding


def _code_only(sql: str) -> str:
    return " ".join(sql[a:b] for a, b in code_spans(sql))


def _is_nocount(tree: exp.Expr) -> bool:
    """``SET NOCOUNT ON|OFF``: only silences row-count messages, so dropping it is exact."""
    from sqlglot import exp

    if not isinstance(tree, exp.Set):
        return False
    for item in tree.expressions:
        eq = item.this
        if not (
            isinstance(eq, exp.EQ)
            and isinstance(eq.this, exp.Column)
            and eq.this.name.upper() == "NOCOUNT"
        ):
            return False
    return bool(tree.expressions)


def _line(node: exp.Expr) -> int:
    """The line of the first token under ``node`` that sqlglot placed, else its statement's."""
    for child in node.walk():
        line = child.meta.get("line") if child.meta else None
        if line:
            return int(line)
    root = node.root()
    return int(root.meta.get("statement_line", 1)) if root.meta else 1


def _check_tree(tree: exp.Expr, target: str) -> Iterator[Finding]:
    """Every construct of one statement with no exact translation; the meaning-keeping
    rewrites of the module docstring are made in place on the way."""
    from sqlglot import exp

    statement = list(_statement_finding(tree))
    if statement:  # the statement as a whole: what is inside it does not matter
        yield from statement
        return
    missing = _TARGET_MISSING[target]
    for node in list(tree.walk()):
        name = type(node).__name__
        if name in missing:
            yield Finding(_line(node), *missing[name])
        elif name in _TSQL_ONLY:
            yield Finding(_line(node), *_TSQL_ONLY[name])
        elif isinstance(node, exp.Parameter) and not isinstance(node.parent, exp.Parameter):
            yield Finding(_line(tree), node.sql("tsql"), "a SQL Server system variable")
        elif isinstance(node, exp.Identifier) and _HIDDEN.fullmatch(node.name):
            misuse = _misused_marker(node)
            if misuse is not None:
                yield Finding(_line(node), *misuse)
        elif isinstance(node, exp.Identifier) and (
            node.args.get("temporary") or node.args.get("global_")
        ):
            hashes = "##" if node.args.get("global_") else "#"
            yield Finding(_line(node), f"{hashes}{node.name} (temp table)", "sqlglot drops the #")
        elif isinstance(node, exp.Table):
            yield from _table_finding(node)
        elif isinstance(node, exp.Anonymous) and not isinstance(node.parent, exp.Dot):
            yield Finding(_line(node), f"{node.name}()", f"no known {target} function of that name")
        elif isinstance(node, exp.Returning):
            yield Finding(_line(node), "OUTPUT clause", "inserted./deleted. have no translation")
        elif isinstance(node, exp.WithTableHint):
            yield from _hint_finding(node)
        elif isinstance(node, exp.LimitOptions) and node.args.get("percent"):
            yield Finding(_line(tree), "TOP ... PERCENT", f"{target} has no LIMIT ... PERCENT")
        elif isinstance(node, exp.Length):
            # T-SQL's LEN does not count trailing spaces; LENGTH does.
            node.set("this", exp.Trim(this=node.this, position="TRAILING"))
        elif _string_type(node) is not None:
            yield from _string_cast(node, target)
        elif isinstance(node, exp.National):
            node.replace(exp.Literal.string(node.this))
        elif (
            isinstance(node, exp.Delete)
            and not node.this
            and len(node.args.get("tables") or []) == 1
        ):
            # T-SQL's DELETE t (FROM omitted): sqlglot would write it without FROM too.
            node.set("this", node.args["tables"][0])
            node.set("tables", None)
        elif target == "mysql" and isinstance(node, exp.Div):
            yield Finding(_line(tree), "/", "mysql's / never divides integers to an integer")
    yield from _rewrite_plus(tree)


def _misused_marker(identifier: exp.Expr) -> tuple[str, str] | None:
    """(construct, why) when a marker (hidden as an identifier) is not a value read: written to
    (``SELECT @v = col``, which sqlglot reads as an alias; ``UPDATE t SET @v = col``) or a
    table variable (``FROM @rows``)."""
    from sqlglot import exp

    column = identifier.parent
    if isinstance(column, exp.Table):
        return "table variable", "T-SQL table variables have no translation"
    eq = column.parent if isinstance(column, exp.Column) else None
    if not isinstance(column, exp.Column) or (
        isinstance(eq, exp.EQ) and eq.this is column and isinstance(eq.parent, exp.Update)
    ):
        return "assignment to a variable", "T-SQL sets @v; the target has no such variable"
    return None


def _string_type(node: exp.Expr) -> exp.DataType | None:
    """The string type a CAST or CONVERT converts to (VARCHAR, NCHAR...), else None."""
    from sqlglot import exp

    if isinstance(node, exp.Cast):
        to = node.to
    elif isinstance(node, exp.Convert):
        to = node.this
    else:
        return None
    return to if isinstance(to, exp.DataType) and to.this.name in _CUT_TYPES else None


def _string_cast(node: exp.Expr, target: str) -> Iterator[Finding]:
    """T-SQL's CAST/CONVERT to a string cuts to its length, 30 when none is written."""
    from sqlglot import exp

    to = _string_type(node)
    if to is None:
        return
    if target in ("sqlite", "duckdb"):  # their CAST cuts nothing
        written = "VARCHAR(n)" if to.expressions else "VARCHAR"
        yield Finding(_line(node), f"CAST/CONVERT to {written}", f"T-SQL cuts it; {target} not")
    elif not to.expressions:
        to.set("expressions", [exp.DataTypeParam(this=exp.Literal.number(30))])


def _statement_finding(tree: exp.Expr) -> Iterator[Finding]:
    """The statement as a whole has no translation: EXEC, control flow, DECLARE, SET, raw text."""
    from sqlglot import exp

    statement_kinds = (exp.Query, exp.DML, exp.DDL, exp.Drop, exp.Alter, exp.TruncateTable)
    control = (exp.Transaction, exp.Commit, exp.Rollback, exp.Use, exp.Command, exp.Set)
    if isinstance(tree, (exp.Column, exp.Identifier, exp.Dot, exp.Var, exp.Table)):
        yield Finding(_line(tree), "EXEC", "a stored procedure call (EXEC omitted)")
    elif not isinstance(tree, (*statement_kinds, *control, exp.Declare)) and not isinstance(
        tree, (exp.Execute, exp.ExecuteSql, exp.IfBlock, exp.WhileBlock, exp.Block)
    ):
        yield Finding(_line(tree), tree.key.upper(), "sqlglot reads no statement here")
    elif isinstance(tree, (exp.Execute, exp.ExecuteSql)):
        yield Finding(_line(tree), "EXEC", "a stored procedure call has no translation")
    elif isinstance(tree, (exp.IfBlock, exp.WhileBlock, exp.Block)):
        word = {"IfBlock": "IF", "WhileBlock": "WHILE"}.get(type(tree).__name__, "BEGIN ... END")
        yield Finding(_line(tree), word, "T-SQL control flow has no translation")
    elif isinstance(tree, exp.Command):
        word = str(tree.this).upper()
        yield Finding(_line(tree), word, "a T-SQL statement sqlglot cannot translate")
    elif isinstance(tree, exp.Declare):
        yield Finding(_line(tree), "DECLARE", "T-SQL local variables have no translation")
    elif isinstance(tree, exp.Set):
        yield Finding(_line(tree), "SET", "T-SQL SET options and variables have no translation")


def _table_finding(node: exp.Table) -> Iterator[Finding]:
    if node.catalog:
        yield Finding(
            _line(node),
            f"{node.catalog}.{node.db}.{node.name}",
            "a three-part (cross-database) name has no translation",
        )
    elif node.db.lower() == "sys":
        yield Finding(_line(node), f"sys.{node.name}", "a SQL Server catalog view")


def _hint_finding(node: exp.Expr) -> Iterator[Finding]:
    for hint in node.expressions:
        name = hint.name.upper()
        if name not in _HARMLESS_HINTS:
            yield Finding(_line(node), f"WITH ({name})", "a SQL Server table hint")


def _kind(node: exp.Expr) -> str:
    """ "text", "number", "date" or "" (unknown), from the node and sqlglot's type annotation."""
    from sqlglot import exp

    if isinstance(node, exp.DPipe):
        return "text"
    if isinstance(node, exp.Literal):
        return "text" if node.is_string else "number"
    if isinstance(node, exp.Paren):
        return _kind(node.this)
    typed = node.type.this.name if node.type is not None else ""
    if typed in _TEXT_TYPES:
        return "text"
    if typed in _NUMBER_TYPES:
        return "number"
    if typed in _DATE_TYPES:
        return "date"
    return ""


def _rewrite_plus(tree: exp.Expr) -> Iterator[Finding]:
    """T-SQL's ``+`` concatenates when an operand is a string: make that ``||``; refuse the
    mixes whose meaning differs between engines (a string plus a number, a date plus days)."""
    from sqlglot import exp
    from sqlglot.optimizer.annotate_types import annotate_types

    annotate_types(tree, dialect="tsql")
    for node in reversed(list(tree.find_all(exp.Add, exp.Sub))):
        left, right = _kind(node.this), _kind(node.expression)
        kinds = {left, right}
        if "date" in kinds and "number" in kinds:
            yield Finding(_line(node), "datetime +/- a number", "write DATEADD(day, n, d)")
        elif "text" in kinds and isinstance(node, exp.Add):
            if "number" in kinds:
                yield Finding(
                    _line(node), "string + number", "T-SQL converts the string to a number"
                )
            else:
                node.replace(exp.DPipe(this=node.this, expression=node.expression, safe=True))
        elif kinds == {""} and isinstance(node, exp.Add):
            yield Finding(
                _line(node),
                "+ of two values of unknown type",
                "T-SQL adds numbers but joins strings; write CONCAT(a, b) or CAST them to a number",
            )


def _generate(trees: list[exp.Expr], target: str) -> tuple[list[str], list[Finding]]:
    from sqlglot.errors import ErrorLevel, SqlglotError

    parts: list[str] = []
    findings: list[Finding] = []
    for tree in trees:
        try:
            text = tree.sql(dialect=target, unsupported_level=ErrorLevel.RAISE)
        except SqlglotError as exc:
            message = str(exc).splitlines()[0]
            construct, detail = next(
                (known for key, known in _UNSUPPORTED.items() if key in message),
                ("unsupported", f"sqlglot: {message}"),
            )
            findings.append(Finding(_line(tree), construct, detail))
            continue
        if not text.strip():
            findings.append(Finding(_line(tree), tree.key.upper(), "sqlglot emits nothing for it"))
        parts.append(text)
    return parts, findings


def _compare(trees: list[exp.Expr], text: str, target: str) -> list[Finding]:
    """Parse the translation back as ``target``: same statements, same tables and columns."""
    back, findings = _parse(text, target)
    if findings:
        return [
            Finding(f.line, "translation", f"{target} cannot read it back: {f.detail}")
            for f in findings
        ]
    read = [tree for tree in back if tree is not None]
    if len(read) != len(trees):
        return [Finding(1, "statements", f"{len(trees)} in T-SQL, {len(read)} after translation")]
    for before, after in zip(trees, read, strict=True):
        if _footprint(before) != _footprint(after):
            return [
                Finding(
                    _line(before),
                    f"{before.key.upper()} statement",
                    "the translation reads or writes other tables or columns",
                )
            ]
    return []


def _footprint(tree: exp.Expr) -> tuple[frozenset[str], frozenset[str]]:
    from sqlglot import exp

    tables = frozenset(t.name.lower() for t in tree.find_all(exp.Table))
    columns = frozenset(c.name.lower() for c in tree.find_all(exp.Column))
    return tables, columns
