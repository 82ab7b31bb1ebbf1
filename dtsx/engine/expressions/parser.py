"""Recursive-descent parser: tokens → AST (spec §4 precedence, §13 grammar).

Binary levels use precedence climbing so a nesting level costs few Python frames; nesting is
capped so that no input can exhaust the interpreter stack.
"""

from __future__ import annotations

from dtsx.engine.errors import ExpressionError

from .ast import (
    Assignment,
    Binary,
    Call,
    Cast,
    Conditional,
    Literal,
    Node,
    NullOf,
    Unary,
    Variable,
)
from .datatypes import ALL_TYPES, INTEGERS, TypeSpec
from .tokens import BRACKET, COLUMNID, EOF, IDENT, NUM, OP, STR, VAR, Token, tokenize

__all__ = ["parse", "MAX_LENGTH", "MAX_DEPTH"]

MAX_LENGTH = 4000  # documented limit for variable and For Loop expressions; we allow more
MAX_DEPTH = 120

_BINARY_PRECEDENCE = {
    "||": 1,
    "&&": 2,
    "|": 3,
    "^": 4,
    "&": 5,
    "==": 6,
    "!=": 6,
    "<": 7,
    ">": 7,
    "<=": 7,
    ">=": 7,
    "+": 8,
    "-": 8,
    "*": 9,
    "/": 9,
    "%": 9,
}
# Parameters each parameterised type takes, in order; "?" marks an optional trailing one.
_TYPE_PARAMS: dict[str, tuple[str, ...]] = {
    "DT_STR": ("length", "codepage"),
    "DT_WSTR": ("length",),
    "DT_BYTES": ("length",),
    "DT_DECIMAL": ("scale",),
    "DT_NUMERIC": ("precision", "scale"),
    "DT_TEXT": ("codepage",),
    "DT_DBTIME2": ("scale?",),
    "DT_DBTIMESTAMP2": ("scale?",),
    "DT_DBTIMESTAMPOFFSET": ("scale?",),
}
_SINGLE_EQUALS = (
    "a single '=' is the assignment operator, valid only in For Loop init and assign "
    "expressions; a double equals sign (==) may be required"
)


class _Parser:
    def __init__(self, text: str, tokens: list[Token], function_names: frozenset[str]) -> None:
        self.text = text
        self.tokens = tokens
        self.pos = 0
        self.depth = 0
        self.functions = function_names

    # -- helpers ------------------------------------------------------------------------------
    def fail(self, message: str, offset: int | None) -> ExpressionError:
        return ExpressionError(message, text=self.text, offset=offset)

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def take(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def is_op(self, text: str, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token.kind == OP and token.text == text

    def expect_op(self, text: str, context: str) -> Token:
        token = self.peek()
        if token.kind == OP and token.text == text:
            return self.take()
        raise self.fail(f"expected '{text}' {context} but found {_describe(token)}", token.offset)

    # -- entry --------------------------------------------------------------------------------
    def parse(self, assignment: bool) -> Node:
        if self.peek().kind == EOF:
            raise self.fail("the expression is empty", 0)
        if assignment and self.peek().kind == VAR and self.is_op("=", 1):
            var_token = self.take()
            self.take()
            target = Variable(var_token.offset, var_token.value)
            node: Node = Assignment(var_token.offset, target, self.expression())
        else:
            node = self.expression()
        token = self.peek()
        if token.kind != EOF:
            if token.kind == OP and token.text == "=":
                raise self.fail(_SINGLE_EQUALS, token.offset)
            raise self.fail(
                f"unexpected {_describe(token)} after a complete expression", token.offset
            )
        return node

    def expression(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(
                f"the expression is nested more than {MAX_DEPTH} levels deep", self.peek().offset
            )
        try:
            return self.conditional()
        finally:
            self.depth -= 1

    def conditional(self) -> Node:
        condition = self.binary(1)
        if not self.is_op("?"):
            return condition
        question = self.take()
        when_true = self.expression()
        self.expect_op(":", "in the conditional operator '? :'")
        when_false = self.expression()
        return Conditional(question.offset, condition, when_true, when_false)

    def binary(self, min_precedence: int) -> Node:
        left = self.unary()
        while True:
            token = self.peek()
            precedence = _BINARY_PRECEDENCE.get(token.text) if token.kind == OP else None
            if precedence is None or precedence < min_precedence:
                if token.kind == OP and token.text == "=":
                    raise self.fail(_SINGLE_EQUALS, token.offset)
                return left
            self.take()
            right = self.binary(precedence + 1)
            left = Binary(token.offset, token.text, left, right)

    def unary(self) -> Node:
        token = self.peek()
        if token.kind == OP and token.text in ("-", "!", "~"):
            self.take()
            self.depth += 1
            if self.depth > MAX_DEPTH * 4:
                raise self.fail("too many unary operators in a row", token.offset)
            try:
                return Unary(token.offset, token.text, self.unary())
            finally:
                self.depth -= 1
        if token.kind == OP and token.text == "+":
            raise self.fail("there is no unary plus operator in SSIS expressions", token.offset)
        if token.kind == OP and token.text == "(" and self.starts_cast():
            spec = self.type_spec(self.take())
            self.depth += 1
            if self.depth > MAX_DEPTH * 4:
                raise self.fail("too many casts in a row", token.offset)
            try:
                return Cast(token.offset, spec, self.unary())
            finally:
                self.depth -= 1
        return self.primary()

    def starts_cast(self) -> bool:
        token = self.peek(1)
        return token.kind == IDENT and token.text.upper().startswith("DT_")

    # -- types --------------------------------------------------------------------------------
    def type_spec(self, opening: Token) -> TypeSpec:
        """Parse ``DT_X[, n...] )`` after the opening parenthesis (already taken)."""
        name_token = self.take()
        name = name_token.text.upper()
        if name not in ALL_TYPES:
            raise self.fail(f"{name_token.text!r} is not an SSIS data type", name_token.offset)
        params: list[int] = []
        while self.is_op(","):
            self.take()
            params.append(self.static_integer())
        self.expect_op(")", f"to close the type {name}")
        return self.make_spec(name, params, name_token.offset)

    def static_integer(self) -> int:
        sign = 1
        if self.is_op("-"):
            self.take()
            sign = -1
        token = self.peek()
        if token.kind != NUM or token.dtype not in INTEGERS:
            raise self.fail(
                f"a type parameter must be an integer literal, not {_describe(token)}", token.offset
            )
        self.take()
        return sign * int(token.value)

    def make_spec(self, name: str, params: list[int], offset: int) -> TypeSpec:
        wanted = _TYPE_PARAMS.get(name, ())
        required = [p for p in wanted if not p.endswith("?")]
        if not len(required) <= len(params) <= len(wanted):
            raise self.fail(
                f"the type {name} takes {len(required)} parameter(s)"
                + (f" ({', '.join(p.rstrip('?') for p in wanted)})" if wanted else "")
                + f", not {len(params)}",
                offset,
            )
        values = {
            key.rstrip("?"): value for key, value in zip(wanted, params, strict=False)
        }  # optional ones may be left out
        if name in ("DT_DBTIME2", "DT_DBTIMESTAMP2", "DT_DBTIMESTAMPOFFSET"):
            values.setdefault("scale", 7)
        spec = TypeSpec(name, **values)
        problem = check_spec(spec)
        if problem:
            raise self.fail(problem, offset)
        return spec

    # -- primaries ----------------------------------------------------------------------------
    def primary(self) -> Node:
        token = self.peek()
        if token.kind == NUM or token.kind == STR:
            self.take()
            return Literal(token.offset, token.dtype or "DT_WSTR", token.value)
        if token.kind == VAR:
            self.take()
            return Variable(token.offset, token.value)
        if token.kind == IDENT:
            return self.identifier()
        if token.kind == OP and token.text == "(":
            self.take()
            inner = self.expression()
            self.expect_op(")", "to close the parenthesis")
            return inner
        if token.kind == COLUMNID:
            raise self.fail(
                f"the lineage identifier {token.text} refers to a data-flow column; "
                "control-flow expressions have no input columns",
                token.offset,
            )
        if token.kind == BRACKET:
            raise self.fail(_column_message(token.text), token.offset)
        if token.kind == OP and token.text == "=":
            raise self.fail(_SINGLE_EQUALS, token.offset)
        if token.kind == EOF:
            raise self.fail("the expression ends where an operand was expected", token.offset)
        raise self.fail(f"unexpected {_describe(token)}", token.offset)

    def identifier(self) -> Node:
        token = self.take()
        upper = token.text.upper()
        if self.is_op("("):
            if upper == "NULL":
                opening = self.take()
                if self.peek().kind != IDENT:
                    raise self.fail(
                        "NULL() needs a data type, e.g. NULL(DT_I4)", self.peek().offset
                    )
                return NullOf(token.offset, self.type_spec(opening))
            return self.call(token, upper)
        if upper in ("TRUE", "FALSE"):
            return Literal(token.offset, "DT_BOOL", upper == "TRUE")
        if upper in self.functions or upper == "NULL":
            raise self.fail(f"the function {upper} must be followed by '('", token.offset)
        raise self.fail(_column_message(token.text), token.offset)

    def call(self, token: Token, upper: str) -> Node:
        if upper not in self.functions:
            raise self.fail(f"the function {token.text!r} is not recognized", token.offset)
        self.take()
        args: list[Node] = []
        if not self.is_op(")"):
            args.append(self.expression())
            while self.is_op(","):
                self.take()
                args.append(self.expression())
        self.expect_op(")", f"to close the argument list of {upper}")
        return Call(token.offset, upper, tuple(args))


def _column_message(name: str) -> str:
    return (
        f"{name!r} looks like a column reference, but control-flow expressions have no input "
        f"columns; if it is a variable, write it as @{name} or @[{name.strip('[]')}]"
    )


def _describe(token: Token) -> str:
    if token.kind == EOF:
        return "the end of the expression"
    return f"{token.kind} {token.text!r}"


_CODEPAGES = frozenset(
    [
        37,
        437,
        500,
        708,
        720,
        737,
        775,
        850,
        852,
        855,
        857,
        858,
        860,
        861,
        862,
        863,
        864,
        865,
        866,
        869,
        870,
        874,
        875,
        932,
        936,
        949,
        950,
        1026,
        1047,
        1200,
        1201,
        1361,
        12000,
        12001,
        20127,
        20866,
        21866,
        20936,
        20949,
        51932,
        51936,
        51949,
        52936,
        54936,
        65000,
        65001,
    ]
    + list(range(1140, 1150))
    + list(range(1250, 1259))
    + list(range(10000, 10083))
    + list(range(20000, 20006))
    + list(range(20105, 20109))
    + list(range(20273, 20298))
    + list(range(20420, 20424))
    + list(range(28591, 28606))
    + list(range(50220, 50230))
    + list(range(57002, 57012))
)


def check_spec(spec: TypeSpec) -> str | None:
    """Why a cast/NULL type spec is invalid, or None (spec §5: INVALIDCAST* errors)."""
    name = spec.name
    if spec.length is not None:
        limit = 4000 if name == "DT_WSTR" else 8000
        if name == "DT_WSTR":
            limit = 2**31 - 1  # the 4000-character result limit was removed (notes B9)
        if not 1 <= spec.length <= limit:
            return f"the length {spec.length} is not valid for {name}"
    if spec.codepage is not None and spec.codepage not in _CODEPAGES:
        return f"the code page {spec.codepage} is not a valid code page for {name}"
    if name == "DT_NUMERIC":
        assert spec.precision is not None and spec.scale is not None
        if not 1 <= spec.precision <= 38:
            return f"the precision {spec.precision} is out of range for DT_NUMERIC (1 to 38)"
        if not 0 <= spec.scale <= spec.precision:
            return f"the scale {spec.scale} is out of range for DT_NUMERIC (0 to the precision)"
    elif name == "DT_DECIMAL":
        assert spec.scale is not None
        if not 0 <= spec.scale <= 28:
            return f"the scale {spec.scale} is out of range for DT_DECIMAL (0 to 28)"
    elif spec.scale is not None and not 0 <= spec.scale <= 7:
        return f"the fractional-second digits {spec.scale} are out of range for {name} (0 to 7)"
    return None


def parse(text: str, *, assignment: bool = False, function_names: frozenset[str]) -> Node:
    """Parse ``text`` into an AST; every failure is an ExpressionError with an offset."""
    tokens = tokenize(text)
    return _Parser(text, tokens, function_names).parse(assignment)
