"""Type checking and closure building: AST + variable types → a typed tree of Python closures.

Each node becomes a ``Built(type, fn, const)``: ``fn(vs)`` computes the node's Python value from
``vs`` (the raw values of the expression's variables, in ``.variables`` order). A type of
``None`` means "unknown until run time" (compile without variable types): such nodes are only
checked as far as their known parts allow and have no closure. Sub-trees without variables are
folded to constants, so constant errors (``1/0``, ``(DT_I4)"x"``) surface at compile time.
"""

from __future__ import annotations

import math
from decimal import Context, Decimal, DivisionByZero, InvalidOperation
from operator import eq, ge, gt, itemgetter, le, lt, ne
from typing import Any, NamedTuple, cast
from collections.abc import Callable

from dtsx.engine.errors import ExpressionError

from .ast import Assignment, Binary, Call, Cast, Conditional, Literal, Node, NullOf, Unary, Variable
from .casts import ConversionFailure, check_exact, converter, is_legal_cast
from .datatypes import (
    DATES,
    EXACT,
    INT_RANGE,
    INTEGERS,
    NUMERICS,
    REALS,
    SIGNED,
    STRINGS,
    TIMES,
    UNSIGNED,
    TypeSpec,
    promote,
)
from .values import DBNULL, OBJECT, datetime_ticks, time_ticks, to_float32

__all__ = [
    "Built",
    "Builder",
    "Fn",
    "guard",
    "null_safe1",
    "numeric_coercer",
    "date_key",
    "date_common_type",
]

Fn = Callable[[list[Any]], Any]


class Built(NamedTuple):
    type: str | None
    fn: Fn | None
    const: bool = False


_COMPARE = {"==": eq, "!=": ne, "<": lt, ">": gt, "<=": le, ">=": ge}
_NUMERIC_CONTEXT = Context(prec=80)
_DIVISION_CONTEXT = Context(prec=38)


def guard(fn: Fn, error: Callable[[str], ExpressionError]) -> Fn:
    """Turn ConversionFailure (and arithmetic exceptions) raised by ``fn`` into ExpressionError."""

    def guarded(vs: list[Any]) -> Any:
        try:
            return fn(vs)
        except ConversionFailure as exc:
            raise error(str(exc)) from None
        except (ArithmeticError, ValueError) as exc:
            raise error(f"the operation failed: {exc}") from None

    return guarded


def numeric_coercer(source: str, target: str) -> Callable[[Any], Any] | None:
    """How to turn a value of numeric type ``source`` into the promoted ``target``; None = as is."""
    if source == target:
        return None
    if target == "DT_R4":
        return lambda v: to_float32(float(v))
    if target == "DT_R8":
        return float
    if target in EXACT:
        return None if source in EXACT else Decimal
    return None


def date_common_type(left: str, right: str) -> str | None:
    """The comparison/conditional ladder of spec §7; None when time meets date."""
    if (left in TIMES) != (right in TIMES):
        return None
    if left == right:
        return left
    for candidate in ("DT_DBTIMESTAMPOFFSET", "DT_DBTIMESTAMP2", "DT_DBTIME2"):
        if candidate in (left, right):
            return candidate
    return "DT_DBTIMESTAMP"


def date_key(type_name: str) -> Callable[[Any], int]:
    return time_ticks if type_name in TIMES else datetime_ticks


class Builder:
    """Builds one expression for one assignment of variable types."""

    def __init__(
        self, text: str, names: list[str], types: dict[str, str | None], functions: Any
    ) -> None:
        self.text = text
        self.names = names
        self.types = types
        self.functions = functions

    # -- errors -------------------------------------------------------------------------------
    def error(self, message: str, offset: int | None) -> ExpressionError:
        return ExpressionError(message, text=self.text, offset=offset)

    def error_at(self, offset: int | None) -> Callable[[str], ExpressionError]:
        return lambda message: self.error(message, offset)

    # -- entry --------------------------------------------------------------------------------
    def build_root(self, node: Node) -> Built:
        if isinstance(node, Assignment):
            return self.build(node.expression)
        built = self.build(node)
        if (
            isinstance(node, (Cast, NullOf))
            and node.spec.name == "DT_STR"
            and built.type is not None
        ):
            # spec §3: a DT_STR cast or NULL is honoured only at the root.
            return Built("DT_STR", built.fn, built.const)
        return built

    def build(self, node: Node) -> Built:
        method = getattr(self, "build_" + type(node).__name__.lower())
        built: Built = method(node)
        if built.const and built.fn is not None and not isinstance(node, Literal):
            value = built.fn([])
            return Built(built.type, _constant(value), True)
        return built

    def fold(
        self, fn: Fn, type_name: str, parts: list[Built], offset: int, safe: bool = False
    ) -> Built:
        """Wrap ``fn`` with the node's error offset; constant when every part is constant.

        ``safe`` closures cannot fail, so they skip the guard (one call less per evaluation).
        When a part has no closure (its variables' types are unknown) only the type is kept.
        """
        if any(p.fn is None for p in parts):
            return Built(type_name, None)
        wrapped = fn if safe else guard(fn, self.error_at(offset))
        return Built(type_name, wrapped, all(p.const for p in parts))

    # -- leaves -------------------------------------------------------------------------------
    def build_literal(self, node: Literal) -> Built:
        return Built(node.dtype, _constant(node.value), True)

    def build_nullof(self, node: NullOf) -> Built:
        name = "DT_WSTR" if node.spec.name == "DT_STR" else node.spec.name
        return Built(name, _constant(None), True)

    def build_variable(self, node: Variable) -> Built:
        type_name = self.types.get(node.name)
        if type_name in (OBJECT, DBNULL):
            raise self.error(
                f"the variable @[{node.name}] has type {type_name}, which expressions cannot use",
                node.offset,
            )
        if type_name is None:
            return Built(None, None)
        return Built(type_name, itemgetter(self.names.index(node.name)))

    # -- operators ----------------------------------------------------------------------------
    def build_unary(self, node: Unary) -> Built:
        operand = self.build(node.operand)
        if operand.type is None:
            return Built("DT_BOOL", None) if node.op == "!" else Built(None, None)
        kind = operand.type
        if node.op == "!":
            if kind != "DT_BOOL":
                raise self.error(
                    f"the operator '!' needs a DT_BOOL operand, not {kind}", node.offset
                )
            fn = _null_safe1(operand.fn, lambda v: not v)
            return self.fold(fn, "DT_BOOL", [operand], node.offset, safe=True)
        if node.op == "~":
            if kind not in INTEGERS:
                raise self.error(
                    f"the operator '~' needs an integer operand, not {kind}", node.offset
                )
            mask = INT_RANGE[kind][1]
            impl = (lambda v: ~v) if kind in SIGNED else (lambda v: v ^ mask)
            return self.fold(_null_safe1(operand.fn, impl), kind, [operand], node.offset, safe=True)
        if kind not in NUMERICS or kind in UNSIGNED:
            raise self.error(
                f"the unary minus needs a signed numeric operand, not {kind}", node.offset
            )
        return self.fold(_null_safe1(operand.fn, _negate(kind)), kind, [operand], node.offset)

    def build_binary(self, node: Binary) -> Built:
        for side in (node.left, node.right):
            if isinstance(side, NullOf) and side.spec.name == "DT_STR":
                raise self.error(
                    "NULL(DT_STR,...) cannot be an operand of a binary operator; "
                    "cast it or use NULL(DT_WSTR,...)",
                    side.offset,
                )
        left, right = self.build(node.left), self.build(node.right)
        op = node.op
        if op in ("&&", "||"):
            return self.logical(node, left, right)
        if left.type is None or right.type is None:
            return self.partial_binary(node, left, right)
        if op in _COMPARE:
            return self.comparison(node, left, right)
        if op in ("&", "|", "^"):
            return self.bitwise(node, left, right)
        if op == "+" and left.type in STRINGS and right.type in STRINGS:
            fn = _concat_fn(left, right, self.error_at(node.offset))
            return self.fold(fn, "DT_WSTR", [left, right], node.offset, safe=True)
        return self.arithmetic(node, left, right)

    def partial_binary(self, node: Binary, left: Built, right: Built) -> Built:
        known = left.type if left.type is not None else right.type
        op = node.op
        if op in _COMPARE:
            return Built("DT_BOOL", None)
        if known is not None:
            allowed = NUMERICS | STRINGS if op == "+" else (INTEGERS if op in "&|^%" else NUMERICS)
            if known not in allowed:
                raise self.error(f"the operator '{op}' cannot take a {known} operand", node.offset)
        return Built(None, None)

    def logical(self, node: Binary, left: Built, right: Built) -> Built:
        for side, built in ((node.left, left), (node.right, right)):
            if built.type is not None and built.type != "DT_BOOL":
                raise self.error(
                    f"the operator '{node.op}' needs DT_BOOL operands, not {built.type}",
                    side.offset,
                )
        if left.fn is None or right.fn is None:
            return Built("DT_BOOL", None)
        impl = _and(left.fn, right.fn) if node.op == "&&" else _or(left.fn, right.fn)
        return Built("DT_BOOL", impl, left.const and right.const)

    def comparison(self, node: Binary, left: Built, right: Built) -> Built:
        lt_, rt = left.type, right.type
        assert lt_ is not None and rt is not None
        compare = _COMPARE[node.op]
        ordered = node.op not in ("==", "!=")
        parts = [left, right]
        if lt_ in NUMERICS and rt in NUMERICS:
            common = self.promoted(node, lt_, rt)
            lconv = numeric_coercer(lt_, common) if common in REALS else None
            rconv = numeric_coercer(rt, common) if common in REALS else None
            fn = _compare_fn(left, right, compare, lconv, rconv)
            return self.fold(fn, "DT_BOOL", parts, node.offset, safe=True)
        if lt_ in STRINGS and rt in STRINGS:
            fn = _compare_fn(left, right, compare, None, None)
            return self.fold(fn, "DT_BOOL", parts, node.offset, safe=True)
        if lt_ in DATES and rt in DATES:
            if date_common_type(lt_, rt) is None:
                raise self.error(
                    f"a time ({lt_ if lt_ in TIMES else rt}) cannot be compared with a date "
                    f"({rt if lt_ in TIMES else lt_})",
                    node.offset,
                )
            fn = _compare_fn(left, right, compare, date_key(lt_), date_key(rt))
            return self.fold(fn, "DT_BOOL", parts, node.offset, safe=True)
        if lt_ == rt and lt_ in ("DT_BOOL", "DT_GUID", "DT_BYTES") and not ordered:
            fn = _compare_fn(left, right, compare, None, None)
            return self.fold(fn, "DT_BOOL", parts, node.offset, safe=True)
        raise self.error(
            f"the data types {lt_} and {rt} are incompatible for the operator '{node.op}'",
            node.offset,
        )

    def promoted(self, node: Binary | Conditional, left: str, right: str) -> str:
        common = promote(left, right)
        if common is None:
            raise self.error(
                f"the data types {left} and {right} have no implicit common type "
                f"(signed with DT_UI8); add an explicit cast",
                node.offset,
            )
        return common

    def bitwise(self, node: Binary, left: Built, right: Built) -> Built:
        lt_, rt = left.type, right.type
        assert lt_ is not None and rt is not None
        if lt_ not in INTEGERS or rt not in INTEGERS:
            raise self.error(
                f"the operator '{node.op}' needs integer operands, not {lt_} and {rt}", node.offset
            )
        if (lt_ in SIGNED) != (rt in SIGNED):
            raise self.error(
                f"the operator '{node.op}' needs both operands signed or both unsigned "
                f"({lt_} and {rt}); add a cast",
                node.offset,
            )
        common = self.promoted(node, lt_, rt)
        impl = {"&": int.__and__, "|": int.__or__, "^": int.__xor__}[node.op]
        return self.fold(_null_safe2(left.fn, right.fn, impl), common, [left, right], node.offset)

    def arithmetic(self, node: Binary, left: Built, right: Built) -> Built:
        lt_, rt, op = left.type, right.type, node.op
        assert lt_ is not None and rt is not None
        if lt_ not in NUMERICS or rt not in NUMERICS:
            raise self.error(
                f"the operator '{op}' cannot combine {lt_} and {rt}"
                + ("; cast numbers to DT_WSTR to concatenate" if op == "+" else ""),
                node.offset,
            )
        if op == "%" and (lt_ not in INTEGERS or rt not in INTEGERS):
            raise self.error(
                f"the operator '%' needs integer operands, not {lt_} and {rt}", node.offset
            )
        common = self.promoted(node, lt_, rt)
        impl = _arith(op, common)
        lconv, rconv = numeric_coercer(lt_, common), numeric_coercer(rt, common)
        if lconv is not None or rconv is not None:
            impl = _coerced(impl, lconv, rconv)
        return self.fold(_null_safe2(left.fn, right.fn, impl), common, [left, right], node.offset)

    # -- conditional --------------------------------------------------------------------------
    def build_conditional(self, node: Conditional) -> Built:
        for branch in (node.when_true, node.when_false):
            if isinstance(branch, NullOf) and branch.spec.name == "DT_STR":
                raise self.error(
                    "NULL(DT_STR,...) cannot be a branch of the conditional operator; cast it",
                    branch.offset,
                )
        cond = self.build(node.condition)
        if cond.type is not None and cond.type != "DT_BOOL":
            raise self.error(
                f"the condition of '? :' must be DT_BOOL, not {cond.type}", node.condition.offset
            )
        when_true, when_false = self.build(node.when_true), self.build(node.when_false)
        if when_true.type is None or when_false.type is None:
            return Built(None, None)
        result = self.conditional_type(node, when_true.type, when_false.type)
        if cond.fn is None or when_true.fn is None or when_false.fn is None:
            return Built(result, None)
        tf = self.coerce_branch(when_true, result)
        ff = self.coerce_branch(when_false, result)
        cf = cond.fn

        def choose(vs: list[Any]) -> Any:
            flag = cf(vs)
            if flag is None:
                return None
            return tf(vs) if flag else ff(vs)

        return self.fold(choose, result, [cond, when_true, when_false], node.offset)

    def conditional_type(self, node: Conditional, left: str, right: str) -> str:
        if left in NUMERICS and right in NUMERICS:
            return self.promoted(node, left, right)
        if left in STRINGS and right in STRINGS:
            return "DT_WSTR"
        if left in DATES and right in DATES:
            common = date_common_type(left, right)
            if common is not None:
                return common
        if left == right:
            return left
        raise self.error(
            f"the branches of '? :' have incompatible types {left} and {right}", node.offset
        )

    def coerce_branch(self, branch: Built, result: str) -> Fn:
        fn = branch.fn
        assert fn is not None and branch.type is not None
        if branch.type == result or (branch.type in STRINGS and result in STRINGS):
            return fn
        if result in NUMERICS:
            conv = numeric_coercer(branch.type, result)
            if conv is None:
                return fn
        else:
            conv = converter(branch.type, TypeSpec(result, scale=7 if result in DATES else None))
        return _null_safe1(fn, conv)

    # -- casts and calls ----------------------------------------------------------------------
    def build_cast(self, node: Cast) -> Built:
        operand = self.build(node.operand)
        spec = node.spec
        result = "DT_WSTR" if spec.name == "DT_STR" else spec.name
        if operand.type is None:
            return Built(result, None)
        source = operand.type
        if not is_legal_cast(source, spec.name):
            raise self.error(f"the cast from {source} to {spec.name} is not supported", node.offset)
        if operand.fn is None:
            return Built(result, None)
        if (
            source == spec.name
            and spec.name not in STRINGS | EXACT | DATES
            and spec.name != "DT_BYTES"
        ):
            return operand
        if source in INTEGERS and spec.name in STRINGS:
            fn = _integer_text(operand.fn, spec.length)  # the common "(DT_WSTR,n)@count" case
            return self.fold(fn, result, [operand], node.offset, safe=True)
        convert = converter(source, spec)
        return self.fold(_null_safe1(operand.fn, convert), result, [operand], node.offset)

    def build_call(self, node: Call) -> Built:
        built: Built = self.functions.build(self, node)
        return built

    def build_assignment(self, node: Assignment) -> Built:
        return self.build(node.expression)


# --- closure helpers -------------------------------------------------------------------------


def _constant(value: Any) -> Fn:
    return lambda vs: value


def _null_safe1(fn: Fn | None, impl: Callable[[Any], Any]) -> Fn:
    # A constant operand has no closure; then fold() computes the value and never calls run().
    operand = cast(Fn, fn)

    def run(vs: list[Any]) -> Any:
        value = operand(vs)
        return None if value is None else impl(value)

    return run


null_safe1 = _null_safe1


def _null_safe2(left: Fn | None, right: Fn | None, impl: Callable[[Any, Any], Any]) -> Fn:
    first, second = cast(Fn, left), cast(Fn, right)  # as in _null_safe1

    def run(vs: list[Any]) -> Any:
        a = first(vs)
        if a is None:
            return None
        b = second(vs)
        if b is None:
            return None
        return impl(a, b)

    return run


def _compare_fn(
    left: Built,
    right: Built,
    compare: Callable[[Any, Any], bool],
    lkey: Callable[[Any], Any] | None,
    rkey: Callable[[Any], Any] | None,
) -> Fn:
    lf, rf = left.fn, right.fn
    if lf is None or rf is None:
        return _constant(None)  # never called: fold() drops closures of unknown parts
    if lkey is None and rkey is None and right.const:
        constant = rf([])
        if constant is None:
            return _constant(None)

        def against_constant(vs: list[Any]) -> Any:
            a = lf(vs)
            return None if a is None else compare(a, constant)

        return against_constant
    lk = lkey or (lambda v: v)
    rk = rkey or (lambda v: v)
    return _null_safe2(lf, rf, lambda a, b: compare(lk(a), rk(b)))


_MAX_CONCAT = 50_000_000  # keeps memory bounded; SSIS documents no limit


def _concat_fn(left: Built, right: Built, error: Callable[[str], ExpressionError]) -> Fn:
    """String concatenation; NULL on either side gives NULL. Raises ExpressionError itself."""
    lf, rf = left.fn, right.fn
    if lf is None or rf is None:
        return _constant(None)  # never called: fold() drops closures of unknown parts

    def too_long() -> ExpressionError:
        return error(f"the concatenated string would exceed {_MAX_CONCAT} characters")

    if right.const:
        suffix = rf([])
        if suffix is None:
            return _constant(None)

        def with_suffix(vs: list[Any]) -> Any:
            a = lf(vs)
            if a is None:
                return None
            if len(a) > _MAX_CONCAT - len(suffix):
                raise too_long()
            return a + suffix

        return with_suffix
    if left.const:
        prefix = lf([])
        if prefix is None:
            return _constant(None)

        def with_prefix(vs: list[Any]) -> Any:
            b = rf(vs)
            if b is None:
                return None
            if len(b) > _MAX_CONCAT - len(prefix):
                raise too_long()
            return prefix + b

        return with_prefix

    def both(vs: list[Any]) -> Any:
        a = lf(vs)
        if a is None:
            return None
        b = rf(vs)
        if b is None:
            return None
        if len(a) + len(b) > _MAX_CONCAT:
            raise too_long()
        return a + b

    return both


def _integer_text(fn: Fn | None, length: int | None) -> Fn:
    def run(vs: list[Any]) -> Any:
        value = fn(vs)  # type: ignore[misc]
        if value is None:
            return None
        text = str(value)
        return text if length is None or len(text) <= length else text[:length]

    return run


def _and(lf: Fn, rf: Fn) -> Fn:
    def run(vs: list[Any]) -> Any:
        a = lf(vs)
        if a is False:
            return False
        b = rf(vs)
        if a is None:
            return False if b is False else None
        return b

    return run


def _or(lf: Fn, rf: Fn) -> Fn:
    def run(vs: list[Any]) -> Any:
        a = lf(vs)
        if a is True:
            return True
        b = rf(vs)
        if a is None:
            return True if b is True else None
        return b

    return run


def _negate(kind: str) -> Callable[[Any], Any]:
    if kind in INTEGERS:
        low, high = INT_RANGE[kind]

        def negate_int(v: int) -> int:
            result = -v
            if result > high:
                raise ConversionFailure(f"negating {v} overflows {kind}")
            return result

        return negate_int
    return lambda v: -v


def _coerced(
    impl: Callable[[Any, Any], Any],
    lconv: Callable[[Any], Any] | None,
    rconv: Callable[[Any], Any] | None,
) -> Callable[[Any, Any], Any]:
    lc = lconv or (lambda v: v)
    rc = rconv or (lambda v: v)
    return lambda a, b: impl(lc(a), rc(b))


def _int_div(a: int, b: int) -> int:
    if b == 0:
        raise ConversionFailure("division by zero")
    quotient = abs(a) // abs(b)
    return quotient if (a < 0) == (b < 0) else -quotient


def _int_mod(a: int, b: int) -> int:
    if b == 0:
        raise ConversionFailure("division by zero in the modulo operation")
    remainder = abs(a) % abs(b)
    return -remainder if a < 0 else remainder  # C semantics: the dividend's sign (notes C2)


def _arith(op: str, common: str) -> Callable[[Any, Any], Any]:
    if common in INTEGERS:
        return _int_arith(op, common)
    if common in REALS:
        return _real_arith(op, common)
    return _exact_arith(op, common)


def _int_arith(op: str, common: str) -> Callable[[int, int], int]:
    low, high = INT_RANGE[common]
    base: Callable[[int, int], int] = {
        "+": int.__add__,
        "-": int.__sub__,
        "*": int.__mul__,
        "/": _int_div,
        "%": _int_mod,
    }[op]

    def run(a: int, b: int) -> int:
        result = base(a, b)
        if low <= result <= high:
            return result
        raise ConversionFailure(
            f"the result of the binary operation '{op}' exceeds the maximum size for {common}"
        )

    return run


def _real_arith(op: str, common: str) -> Callable[[float, float], float]:
    single = common == "DT_R4"

    def run(a: float, b: float) -> float:
        if op == "+":
            result = a + b
        elif op == "-":
            result = a - b
        elif op == "*":
            result = a * b
        else:
            if b == 0:
                raise ConversionFailure("division by zero")
            result = a / b
        if single:
            result = to_float32(result)
        if not math.isfinite(result):
            raise ConversionFailure(
                f"the result of the binary operation '{op}' exceeds the maximum size for {common}"
            )
        return result

    return run


def _exact_arith(op: str, common: str) -> Callable[[Decimal, Decimal], Decimal]:
    def run(a: Decimal, b: Decimal) -> Decimal:
        try:
            if op == "+":
                result = _NUMERIC_CONTEXT.add(a, b)
            elif op == "-":
                result = _NUMERIC_CONTEXT.subtract(a, b)
            elif op == "*":
                result = _NUMERIC_CONTEXT.multiply(a, b)
            else:
                if not b:
                    raise ConversionFailure("division by zero")
                result = _DIVISION_CONTEXT.divide(a, b)
        except (DivisionByZero, InvalidOperation):
            raise ConversionFailure("division by zero") from None
        if common == "DT_CY":
            result = result.quantize(Decimal("0.0001"), context=_NUMERIC_CONTEXT)
        else:
            result = _fit_numeric(result)
        return check_exact(result, common)

    return run


def _fit_numeric(number: Decimal) -> Decimal:
    """Keep a DT_NUMERIC result within 38 digits by giving up scale, never integer digits."""
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    if len(digits) <= 38 or exponent >= 0:
        return number
    integer_digits = max(0, len(digits) + exponent)
    keep_scale = max(0, 38 - integer_digits)
    return number.quantize(Decimal(1).scaleb(-keep_scale), context=_NUMERIC_CONTEXT)
