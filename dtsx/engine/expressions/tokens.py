"""Tokenizer: expression text → list of ``Token`` with 0-based offsets.

Literals are typed here (spec §2.3–2.5): an integer without ``L`` is DT_I4 even when it does not
fit, which is then a literal-overflow error at this stage.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from dtsx.engine.errors import ExpressionError

from .datatypes import INT_RANGE
from .values import to_float32

__all__ = ["Token", "tokenize", "NUM", "STR", "IDENT", "VAR", "OP", "COLUMNID", "BRACKET", "EOF"]

NUM = "number"
STR = "string"
IDENT = "identifier"
VAR = "variable"
OP = "operator"
COLUMNID = "lineage id"
BRACKET = "bracketed name"
EOF = "end of expression"


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str
    offset: int
    value: Any = None  # NUM: (type, python value); STR: str; VAR/BRACKET: name
    dtype: str | None = None


_TWO_CHAR = ("==", "!=", "<=", ">=", "&&", "||")
_ONE_CHAR = set("+-*/%<>!~&|^?:(),=")

_HEX = re.compile(r"0[xX]([0-9a-fA-F]+)([uU]?)")
_REAL = re.compile(r"([0-9]+\.[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?([fFlL]?)")
_EXP = re.compile(r"([0-9]+)([eE][+-]?[0-9]+)([fFlL]?)")
_INT = re.compile(r"([0-9]+)([lL][uU]?|[uU][lL]?)?")
_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    '"': '"',
    "\\": "\\",
}
_DIGITS = frozenset("0123456789")
_WHITESPACE = " \t\r\n\f\v\u00a0\ufeff"


def _is_ident_start(ch: str) -> bool:
    return ch.isalpha() or ch == "_"


def _is_ident_char(ch: str) -> bool:
    return ch.isalnum() or ch in "_@$#"


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.tokens: list[Token] = []

    def fail(self, message: str, offset: int) -> ExpressionError:
        return ExpressionError(message, text=self.text, offset=offset)

    def run(self) -> list[Token]:
        text = self.text
        while True:
            while self.pos < len(text) and text[self.pos] in _WHITESPACE:
                self.pos += 1
            if self.pos >= len(text):
                self.tokens.append(Token(EOF, "", len(text)))
                return self.tokens
            self.tokens.append(self.next_token())

    def next_token(self) -> Token:
        text, start = self.text, self.pos
        ch = text[start]
        if ch == '"':
            return self.string()
        if ch == "'":
            raise self.fail(
                "single quotation marks are not string delimiters; use double quotes", start
            )
        if ch in _DIGITS or (ch == "." and text[start + 1 : start + 2] in _DIGITS):
            return self.number()
        if ch == "@":
            return self.variable()
        if ch == "#":
            return self.lineage()
        if ch == "[":
            name, end = self.bracketed(start)
            self.pos = end
            return Token(BRACKET, text[start:end], start, name)
        if _is_ident_start(ch):
            end = start + 1
            while end < len(text) and _is_ident_char(text[end]):
                end += 1
            self.pos = end
            return Token(IDENT, text[start:end], start)
        pair = text[start : start + 2]
        if pair in _TWO_CHAR:
            self.pos += 2
            return Token(OP, pair, start)
        if ch in _ONE_CHAR:
            self.pos += 1
            return Token(OP, ch, start)
        raise self.fail(f"the character {ch!r} is not valid in an expression", start)

    def bracketed(self, start: int) -> tuple[str, int]:
        end = self.text.find("]", start + 1)
        if end < 0:
            raise self.fail("the opening bracket '[' is never closed", start)
        return self.text[start + 1 : end], end + 1

    def variable(self) -> Token:
        text, start = self.text, self.pos
        nxt = start + 1
        if nxt < len(text) and text[nxt] == "[":
            name, end = self.bracketed(nxt)
            if not name.strip():
                raise self.fail("empty variable name", start)
        elif nxt < len(text) and _is_ident_start(text[nxt]):
            end = nxt + 1
            while end < len(text) and _is_ident_char(text[end]):
                end += 1
            name = text[nxt:end]
            if text.startswith("::", end):
                raise self.fail(
                    f"a namespace-qualified variable needs brackets: write @[{name}::...]", start
                )
        else:
            raise self.fail("'@' must be followed directly by a variable name or '['", start)
        self.pos = end
        return Token(VAR, text[start:end], start, name)

    def lineage(self) -> Token:
        match = re.compile(r"#[0-9]+").match(self.text, self.pos)
        if not match:
            raise self.fail("the character '#' is not valid here", self.pos)
        self.pos = match.end()
        return Token(COLUMNID, match.group(), match.start())

    def string(self) -> Token:
        text, start = self.text, self.pos
        out: list[str] = []
        i = start + 1
        while True:
            if i >= len(text):
                raise self.fail("the string literal is never closed (missing '\"')", start)
            ch = text[i]
            if ch == '"':
                break
            if ch == "\\":
                piece, i = self.escape(i)
                out.append(piece)
                continue
            out.append(ch)
            i += 1
        self.pos = i + 1
        return Token(STR, text[start : i + 1], start, "".join(out), "DT_WSTR")

    def escape(self, i: int) -> tuple[str, int]:
        text = self.text
        code = text[i + 1 : i + 2]
        if code in _ESCAPES:
            return _ESCAPES[code], i + 2
        if code == "x":
            digits = text[i + 2 : i + 6]
            if len(digits) != 4 or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise self.fail("a \\x escape needs exactly four hexadecimal digits", i)
            value = int(digits, 16)
            if value == 0:
                raise self.fail("a string literal cannot contain the character U+0000", i)
            return chr(value), i + 6
        raise self.fail(
            f"the escape sequence '\\{code}' is not valid in a string literal "
            "(write '\\\\' for a backslash)",
            i,
        )

    def number(self) -> Token:
        text, start = self.text, self.pos
        for pattern, builder in ((_HEX, _hex), (_REAL, _real), (_EXP, _exp), (_INT, _int)):  # noqa: B007 (the match's builder is used below)
            match = pattern.match(text, start)
            if match:
                break
        assert match is not None  # a digit always matches _INT
        end = match.end()
        if end < len(text) and (_is_ident_char(text[end]) or text[end] == "."):
            raise self.fail(f"the numeric literal {text[start : end + 1]!r} is malformed", start)
        try:
            dtype, value = builder(match)
        except ValueError:
            raise self.fail(
                f"the numeric literal {match.group()} has more than 38 digits", start
            ) from None
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(
                f"the literal {match.group()} is too large to fit into type {dtype}", start
            )
        if dtype in INT_RANGE:
            low, high = INT_RANGE[dtype]
            if not low <= value <= high:
                raise self.fail(
                    f"the literal {match.group()} is too large to fit into type {dtype} "
                    "(add an L suffix for DT_I8)",
                    start,
                )
        self.pos = end
        return Token(NUM, match.group(), start, value, dtype)


def _hex(match: re.Match[str]) -> tuple[str, Any]:
    return ("DT_UI4" if match.group(2) else "DT_I4"), int(match.group(1), 16)


def _int(match: re.Match[str]) -> tuple[str, Any]:
    suffix = (match.group(2) or "").upper()
    dtype = {"": "DT_I4", "U": "DT_UI4", "L": "DT_I8", "UL": "DT_UI8", "LU": "DT_UI8"}[suffix]
    return dtype, int(match.group(1))


def _float_typed(mantissa: str, suffix: str) -> tuple[str, Any]:
    number = float(mantissa)
    if suffix in ("f", "F"):
        return "DT_R4", to_float32(number)
    return "DT_R8", number


def _real(match: re.Match[str]) -> tuple[str, Any]:
    digits, exponent, suffix = match.group(1), match.group(2) or "", match.group(3)
    if exponent or suffix:
        return _float_typed(digits + exponent, suffix)
    number = Decimal(digits)
    if len(number.as_tuple().digits) > 38:
        raise ValueError("precision")
    return "DT_NUMERIC", number


def _exp(match: re.Match[str]) -> tuple[str, Any]:
    return _float_typed(match.group(1) + match.group(2), match.group(3))


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens (the last one is EOF); raises ExpressionError with an offset."""
    return _Lexer(text).run()
