"""The function library (spec §10): typing rule and implementation of every SSIS function.

Each entry checks its arguments' types (skipping those unknown until run time), returns the
result type and, when every argument type is known, a closure. Run-time failures are raised as
ConversionFailure and turned into ExpressionError at the call's offset by ``guard``.
"""

from __future__ import annotations

import calendar
import math
from operator import attrgetter, itemgetter
from datetime import date, datetime, time, timedelta, UTC
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Context, Decimal
from typing import TYPE_CHECKING, Any
from collections.abc import Callable

from .ast import Call, Literal, Node, Variable
from .casts import ConversionFailure, check_exact, converter, is_legal_cast
from .datatypes import (
    DATES,
    EXACT,
    INT_RANGE,
    INTEGERS,
    NUMERICS,
    SIGNED,
    STRINGS,
    TIMES,
    TypeSpec,
)
from .values import DBNULL, OBJECT, to_float32

if TYPE_CHECKING:
    from .builder import Builder, Built

__all__ = ["LIBRARY", "FUNCTION_NAMES", "DATE_PARTS"]

# Longest string a function builds: SSIS documents no limit, this only keeps memory bounded.
MAX_STRING = 50_000_000
_WIDE = Context(prec=1000, Emax=10**6, Emin=-(10**6))
TEXTUAL = STRINGS | {"DT_TEXT", "DT_NTEXT"}
_I4_LOW, _I4_HIGH = INT_RANGE["DT_I4"]

DATE_PARTS = {
    **dict.fromkeys(("year", "yy", "yyyy"), "year"),
    **dict.fromkeys(("quarter", "qq", "q"), "quarter"),
    **dict.fromkeys(("month", "mm", "m"), "month"),
    **dict.fromkeys(("dayofyear", "dy", "y"), "dayofyear"),
    **dict.fromkeys(("day", "dd", "d"), "day"),
    **dict.fromkeys(("week", "wk", "ww"), "week"),
    **dict.fromkeys(("weekday", "dw", "w"), "weekday"),
    **dict.fromkeys(("hour", "hh"), "hour"),
    **dict.fromkeys(("minute", "mi", "n"), "minute"),
    **dict.fromkeys(("second", "ss", "s"), "second"),
    **dict.fromkeys(("millisecond", "ms"), "millisecond"),
}


class _Call:
    """The state one function build needs: the builder, the node and its built arguments."""

    def __init__(self, builder: Builder, node: Call, args: list[Built]) -> None:
        self.b = builder
        self.node = node
        self.args = args

    def fail(self, message: str, arg: int | None = None) -> Exception:
        offset = self.node.offset if arg is None else self.node.args[arg].offset
        return self.b.error(message, offset)

    def need(self, index: int, allowed: frozenset[str] | set[str], what: str) -> str | None:
        kind = self.args[index].type
        if kind is not None and kind not in allowed:
            raise self.fail(
                f"parameter {index + 1} of {self.node.name} must be {what}, not {kind}", index
            )
        return kind

    def known(self) -> bool:
        return all(a.fn is not None and a.type is not None for a in self.args)

    def result(
        self,
        type_name: str | None,
        impl: Callable[..., Any],
        nulls: bool = True,
        safe: bool = False,
    ) -> Built:
        """A closure applying ``impl`` to the argument values; NULL in → NULL out if ``nulls``."""
        from .builder import Built

        if type_name is None or not self.known():
            return Built(type_name, None)
        fns = [a.fn for a in self.args]
        if len(fns) == 1:
            (f0,) = fns

            def run(vs: list[Any]) -> Any:
                v = f0(vs)  # type: ignore[misc]
                return None if v is None and nulls else impl(v)
        else:

            def run(vs: list[Any]) -> Any:
                values = [f(vs) for f in fns]  # type: ignore[misc]
                if nulls and None in values:
                    return None
                return impl(*values)

        return self.b.fold(run, type_name, self.args, self.node.offset, safe=safe)


# --- mathematical ----------------------------------------------------------------------------


def _abs(c: _Call) -> Built:
    kind = c.need(0, NUMERICS, "numeric")

    def impl(v: Any) -> Any:
        result = abs(v)
        if kind in INT_RANGE and result > INT_RANGE[kind][1]:
            raise ConversionFailure(f"ABS({v}) overflows {kind}")
        return result

    return c.result(kind, impl)


def _rounding(mode: str) -> Callable[[_Call], Built]:
    def build(c: _Call) -> Built:
        kind = c.need(0, NUMERICS, "numeric")

        def impl(v: Any) -> Any:
            if isinstance(v, int):
                return v
            if isinstance(v, float):
                result = float(math.ceil(v) if mode == "ceil" else math.floor(v))
                return to_float32(result) if kind == "DT_R4" else result
            exponent = v.as_tuple().exponent
            whole = v.to_integral_value(rounding=ROUND_CEILING if mode == "ceil" else ROUND_FLOOR)
            return whole.quantize(Decimal(1).scaleb(min(exponent, 0)), context=_WIDE)

        return c.result(kind, impl)

    return build


def _round(c: _Call) -> Built:
    kind = c.need(0, NUMERICS, "numeric")
    c.need(1, INTEGERS, "an integer")

    def impl(v: Any, length: int) -> Any:
        if length < 0:
            raise ConversionFailure(f"the length {length} passed to ROUND must not be negative")
        if isinstance(v, int):
            return v
        if isinstance(v, float):
            if not math.isfinite(v):
                return v
            quantum = Decimal(1).scaleb(-min(length, 400))
            result = float(Decimal(repr(v)).quantize(quantum, ROUND_HALF_UP, context=_WIDE))
            return to_float32(result) if kind == "DT_R4" else result
        exponent = v.as_tuple().exponent
        if -exponent <= length:
            return v
        rounded = v.quantize(Decimal(1).scaleb(-length), ROUND_HALF_UP, context=_WIDE)
        return rounded.quantize(Decimal(1).scaleb(exponent), context=_WIDE)  # N's scale is kept

    return c.result(kind, impl)


def _sign(c: _Call) -> Built:
    c.need(0, NUMERICS - (INTEGERS - SIGNED), "a signed numeric")
    return c.result("DT_I4", lambda v: (v > 0) - (v < 0))


def _real_function(name: str, impl: Callable[[float], float]) -> Callable[[_Call], Built]:
    def build(c: _Call) -> Built:
        c.need(0, NUMERICS, "numeric")

        def run(v: Any) -> float:
            try:
                result = impl(float(v))
            except OverflowError:
                raise ConversionFailure(f"the result of {name} overflows DT_R8") from None
            if not math.isfinite(result):
                raise ConversionFailure(f"the result of {name} overflows DT_R8")
            return result

        return c.result("DT_R8", run)

    return build


def _positive(name: str, impl: Callable[[float], float]) -> Callable[[float], float]:
    def run(v: float) -> float:
        if v <= 0:
            raise ConversionFailure(
                f"the function {name} cannot operate on zero or negative values"
            )
        return impl(v)

    return run


def _sqrt(v: float) -> float:
    if v < 0:
        raise ConversionFailure("the function SQRT cannot operate on negative values")
    return math.sqrt(v)


def _power(c: _Call) -> Built:
    c.need(0, NUMERICS, "numeric")
    c.need(1, NUMERICS, "numeric")

    def impl(base: Any, exponent: Any) -> float:
        x, y = float(base), float(exponent)
        if x == 0 and y < 0:
            raise ConversionFailure("POWER cannot raise zero to a negative power")
        if x < 0 and not y.is_integer():
            raise ConversionFailure("the parameters passed to POWER yield an indeterminate result")
        try:
            result = math.pow(x, y)
        except (OverflowError, ValueError):
            raise ConversionFailure("the result of POWER overflows DT_R8") from None
        if not math.isfinite(result):
            raise ConversionFailure("the result of POWER overflows DT_R8")
        return result

    return c.result("DT_R8", impl)


# --- string ----------------------------------------------------------------------------------


def _string_unary(impl: Callable[[str], Any], result: str = "DT_WSTR") -> Callable[[_Call], Built]:
    def build(c: _Call) -> Built:
        c.need(0, TEXTUAL, "a string")
        return c.result(result, impl)

    return build


def _len(c: _Call) -> Built:
    c.need(0, TEXTUAL | {"DT_BYTES", "DT_IMAGE"}, "a string or binary value")
    return c.result("DT_I4", len)


def _nonnegative(name: str, value: int, what: str) -> None:
    if value < 0:
        raise ConversionFailure(f"the {what} {value} passed to {name} must not be negative")


def _left(c: _Call) -> Built:
    c.need(0, TEXTUAL, "a string")
    c.need(1, INTEGERS, "an integer")

    def impl(s: str, n: int) -> str:
        _nonnegative("LEFT", n, "length")
        return s[:n]

    return c.result("DT_WSTR", impl)


def _right(c: _Call) -> Built:
    c.need(0, TEXTUAL, "a string")
    c.need(1, INTEGERS, "an integer")

    def impl(s: str, n: int) -> str:
        _nonnegative("RIGHT", n, "length")
        return s[len(s) - n :] if n < len(s) else s

    return c.result("DT_WSTR", impl)


def _substring(c: _Call) -> Built:
    c.need(0, TEXTUAL, "a string")
    c.need(1, INTEGERS, "an integer")
    c.need(2, INTEGERS, "an integer")

    def impl(s: str, start: int, length: int) -> str:
        if start <= 0:
            raise ConversionFailure(f"the start index {start} of SUBSTRING must be greater than 0")
        _nonnegative("SUBSTRING", length, "length")
        return s[start - 1 : start - 1 + length]

    return c.result("DT_WSTR", impl)


def _replace(c: _Call) -> Built:
    for index in range(3):
        c.need(index, TEXTUAL, "a string")

    def impl(s: str, find: str, repl: str) -> str:
        if not find:
            raise ConversionFailure("the search string of REPLACE must not be empty")
        if len(repl) > len(find) and len(s) + s.count(find) * (len(repl) - len(find)) > MAX_STRING:
            raise ConversionFailure(f"the result of REPLACE would exceed {MAX_STRING} characters")
        return s.replace(find, repl)

    return c.result("DT_WSTR", impl)


def _replicate(c: _Call) -> Built:
    c.need(0, TEXTUAL, "a string")
    c.need(1, INTEGERS, "an integer")

    def impl(s: str, times: int) -> str:
        _nonnegative("REPLICATE", times, "repeat count")
        if len(s) * times > MAX_STRING:
            raise ConversionFailure(f"the result of REPLICATE would exceed {MAX_STRING} characters")
        return s * times

    return c.result("DT_WSTR", impl)


def _findstring(c: _Call) -> Built:
    c.need(0, TEXTUAL, "a string")
    c.need(1, TEXTUAL, "a string")
    c.need(2, INTEGERS, "an integer")

    def impl(s: str, find: str, occurrence: int) -> int:
        if occurrence <= 0:
            raise ConversionFailure(
                f"the occurrence {occurrence} passed to FINDSTRING must be greater than 0"
            )
        if not find:
            return 0
        index = -1
        for _ in range(occurrence):
            index = s.find(find, index + 1)
            if index < 0:
                return 0
        return index + 1

    return c.result("DT_I4", impl)


def _tokens(s: str, delimiters: str) -> list[str]:
    if not delimiters:
        return [s] if s else []
    out: list[str] = []
    current: list[str] = []
    for ch in s:
        if ch in delimiters:
            if current:
                out.append("".join(current))
                current = []
        else:
            current.append(ch)
    if current:
        out.append("".join(current))
    return out


def _token(c: _Call) -> Built:
    c.need(0, TEXTUAL, "a string")
    c.need(1, TEXTUAL, "a string")
    c.need(2, INTEGERS, "an integer")

    def impl(s: str, delimiters: str, occurrence: int) -> str:
        if occurrence <= 0:
            raise ConversionFailure(
                f"the occurrence {occurrence} passed to TOKEN must be greater than 0"
            )
        tokens = _tokens(s, delimiters)
        # expressions-notes B2: past the last token the documented example returns "".
        return tokens[occurrence - 1] if occurrence <= len(tokens) else ""

    return c.result("DT_WSTR", impl)


def _tokencount(c: _Call) -> Built:
    c.need(0, TEXTUAL, "a string")
    c.need(1, TEXTUAL, "a string")

    def impl(s: str | None, delimiters: str | None) -> int:
        if s is None or delimiters is None:
            return 0  # spec §9: a NULL string has zero tokens
        return len(_tokens(s, delimiters))

    return c.result("DT_I4", impl, nulls=False)


def _codepoint(c: _Call) -> Built:
    c.need(0, TEXTUAL, "a string")

    def impl(s: str | None) -> int | None:
        if not s:
            return None
        code = ord(s[0])
        return 0xD800 + ((code - 0x10000) >> 10) if code > 0xFFFF else code

    return c.result("DT_UI2", impl, nulls=False)


def _hex(c: _Call) -> Built:
    kind = c.need(0, INTEGERS, "an integer")

    def impl(v: int) -> str:
        if v < 0 and kind is not None:
            v += INT_RANGE[kind][1] * 2 + 2  # two's complement at the operand's width
        return format(v, "X")

    return c.result("DT_WSTR", impl)


# --- dates -----------------------------------------------------------------------------------


def _moment(value: Any) -> datetime:
    """Any date/time value as a naive datetime in its own (local) time."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, time):
        return datetime.combine(date(1900, 1, 1), value.replace(tzinfo=None))
    raise ConversionFailure(f"the value {value!r} is not a date")


def _date_part(c: _Call, index: int = 0) -> str:
    node: Node = c.node.args[index]
    if not (isinstance(node, Literal) and node.dtype == "DT_WSTR"):
        raise c.fail(
            f'the date part of {c.node.name} must be a quoted string literal such as "day"', index
        )
    part = DATE_PARTS.get(str(node.value).strip().lower())
    if part is None:
        raise c.fail(f'"{node.value}" is not a valid date part for function {c.node.name}', index)
    return part


def _date_argument(c: _Call, index: int, allowed: frozenset[str], detail: str = "") -> None:
    """Check a date argument; a string that is not a literal is converted to DT_DBTIMESTAMP.

    expressions-notes B10: these functions take "a valid date or a string in date format", but a
    date *literal* must be cast explicitly, so only string literals are refused.
    """
    from .builder import null_safe1

    arg, node = c.args[index], c.node.args[index]
    if arg.type in STRINGS and not isinstance(node, Literal):
        convert = converter(arg.type, TypeSpec("DT_DBTIMESTAMP"))
        c.args[index] = c.b.fold(null_safe1(arg.fn, convert), "DT_DBTIMESTAMP", [arg], node.offset)
        return
    c.need(
        index, allowed, 'a date (cast date literals, e.g. (DT_DBTIMESTAMP)"2003-08-06")' + detail
    )


def _add_months(moment: datetime, months: int) -> datetime:
    total = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(total, 12)
    if not 1 <= year <= 9999:
        raise ConversionFailure("DATEADD produced a date outside the supported range")
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


_STEP = {
    "dayofyear": timedelta(days=1),
    "day": timedelta(days=1),
    "weekday": timedelta(days=1),
    "week": timedelta(weeks=1),
    "hour": timedelta(hours=1),
    "minute": timedelta(minutes=1),
    "second": timedelta(seconds=1),
    "millisecond": timedelta(milliseconds=1),
}


def _dateadd(c: _Call) -> Built:
    part = _date_part(c)
    c.need(1, INTEGERS, "an integer")
    _date_argument(c, 2, DATES)

    def impl(_part: str, number: int, value: Any) -> datetime:
        moment = _moment(value)
        try:
            if part in ("year", "quarter", "month"):
                factor = {"year": 12, "quarter": 3, "month": 1}[part]
                result = _add_months(moment, number * factor)
            else:
                result = moment + _STEP[part] * number
        except OverflowError:
            raise ConversionFailure("DATEADD produced a date outside the supported range") from None
        return result.replace(microsecond=result.microsecond - result.microsecond % 1000)

    return c.result("DT_DBTIMESTAMP", impl)


def _boundary_index(part: str, moment: datetime) -> int:
    if part == "year":
        return moment.year
    if part == "quarter":
        return moment.year * 4 + (moment.month - 1) // 3
    if part == "month":
        return moment.year * 12 + moment.month - 1
    days = moment.toordinal()
    if part in ("day", "dayofyear", "weekday"):
        return days
    if part == "week":
        return days // 7  # weeks start on Sunday (ordinal 7 is a Sunday)
    seconds = days * 86400 + moment.hour * 3600 + moment.minute * 60 + moment.second
    if part == "hour":
        return seconds // 3600
    if part == "minute":
        return seconds // 60
    if part == "second":
        return seconds
    return seconds * 1000 + moment.microsecond // 1000


def _datediff(c: _Call) -> Built:
    part = _date_part(c)
    c.need(1, DATES, "a date")
    c.need(2, DATES, "a date")

    def impl(_part: str, start: Any, end: Any) -> int:
        result = _boundary_index(part, _moment(end)) - _boundary_index(part, _moment(start))
        if not _I4_LOW <= result <= _I4_HIGH:
            raise ConversionFailure(f"the result of DATEDIFF overflows DT_I4 ({result})")
        return result

    return c.result("DT_I4", impl)


def datepart_of(part: str, moment: datetime) -> int:
    if part == "year":
        return moment.year
    if part == "quarter":
        return (moment.month - 1) // 3 + 1
    if part == "month":
        return moment.month
    if part == "dayofyear":
        return moment.timetuple().tm_yday
    if part == "day":
        return moment.day
    if part == "weekday":
        return moment.isoweekday() % 7 + 1  # Sunday = 1 (expressions-notes C10)
    if part == "week":
        first = date(moment.year, 1, 1).isoweekday() % 7 + 1
        return (moment.timetuple().tm_yday + first - 2) // 7 + 1
    if part == "hour":
        return moment.hour
    if part == "minute":
        return moment.minute
    if part == "second":
        return moment.second
    return moment.microsecond // 1000


def _datepart(c: _Call) -> Built:
    part = _date_part(c)
    _date_argument(c, 1, DATES)
    return c.result("DT_I4", lambda _part, value: datepart_of(part, _moment(value)))


_NO_YMD = frozenset({"DT_DBTIMESTAMP2", "DT_DBTIMESTAMPOFFSET"}) | TIMES


_PLAIN_DATES = frozenset({"DT_DATE", "DT_DBDATE", "DT_DBTIMESTAMP", "DT_FILETIME"})


def _ymd(part: str) -> Callable[[_Call], Built]:
    def build(c: _Call) -> Built:
        _date_argument(
            c, 0, DATES - _NO_YMD, " (not DT_DBTIMESTAMP2, DT_DBTIMESTAMPOFFSET or a time)"
        )
        if c.args[0].type in _PLAIN_DATES:  # date/datetime values: read the field directly
            return c.result("DT_I4", attrgetter(part), safe=True)
        return c.result("DT_I4", lambda value: datepart_of(part, _moment(value)))

    return build


def _now(utc: bool) -> Callable[[_Call], Built]:
    from .builder import Built

    def build(c: _Call) -> Built:
        def run(vs: list[Any]) -> datetime:
            moment = datetime.now(UTC).replace(tzinfo=None) if utc else datetime.now()
            return moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)

        return Built("DT_DBTIMESTAMP", run, False)

    return build


# --- NULL functions --------------------------------------------------------------------------


def _isnull(c: _Call) -> Built:
    from .builder import Built

    fn = c.args[0].fn
    if fn is None:
        return Built("DT_BOOL", None)
    return Built("DT_BOOL", lambda vs: fn(vs) is None, c.args[0].const)


def _replacenull(c: _Call) -> Built:
    from .builder import Built, guard

    first, second = c.args
    if first.type is None or second.type is None or first.fn is None or second.fn is None:
        return Built(first.type, None)
    target = first.type
    f1, f2 = first.fn, second.fn
    convert: Callable[[Any], Any] | None = None
    same_family = (target in STRINGS and second.type in STRINGS) or (
        target in NUMERICS
        and second.type in NUMERICS
        and target not in EXACT
        and second.type == target
    )
    if second.type != target and not same_family:
        if not is_legal_cast(second.type, target):
            raise c.fail(f"REPLACENULL cannot convert {second.type} to {target}", 1)
        convert = _replacement_converter(second.type, target)

    def run(vs: list[Any]) -> Any:
        value = f1(vs)
        if value is not None:
            return value
        value = f2(vs)
        return value if value is None or convert is None else convert(value)

    fn = guard(run, c.b.error_at(c.node.offset))
    return Built(target, fn, first.const and second.const)


def _replacement_converter(source: str, target: str) -> Callable[[Any], Any]:
    """How REPLACENULL casts its second argument to the first's type (no length/scale given)."""
    if target in ("DT_DECIMAL", "DT_NUMERIC"):
        from .dotnet import as_decimal

        return lambda value: check_exact(as_decimal(source, value), target)
    scale = 7 if target in ("DT_DBTIME2", "DT_DBTIMESTAMP2", "DT_DBTIMESTAMPOFFSET") else None
    return converter(source, TypeSpec(target, scale=scale))


# --- the library -----------------------------------------------------------------------------

_ARITY: dict[str, tuple[int, Callable[[_Call], Built]]] = {
    "ABS": (1, _abs),
    "CEILING": (1, _rounding("ceil")),
    "FLOOR": (1, _rounding("floor")),
    "ROUND": (2, _round),
    "SIGN": (1, _sign),
    "EXP": (1, _real_function("EXP", math.exp)),
    "LN": (1, _real_function("LN", _positive("LN", math.log))),
    "LOG": (1, _real_function("LOG", _positive("LOG", math.log10))),
    "POWER": (2, _power),
    "SQRT": (1, _real_function("SQRT", _sqrt)),
    "SQUARE": (1, _real_function("SQUARE", lambda v: v * v)),
    "LEN": (1, _len),
    "LEFT": (2, _left),
    "RIGHT": (2, _right),
    "SUBSTRING": (3, _substring),
    "UPPER": (1, _string_unary(str.upper)),
    "LOWER": (1, _string_unary(str.lower)),
    "LTRIM": (1, _string_unary(lambda s: s.lstrip(" "))),
    "RTRIM": (1, _string_unary(lambda s: s.rstrip(" "))),
    "TRIM": (1, _string_unary(lambda s: s.strip(" "))),
    "REPLACE": (3, _replace),
    "REPLICATE": (2, _replicate),
    "REVERSE": (1, _string_unary(lambda s: s[::-1])),
    "FINDSTRING": (3, _findstring),
    "TOKEN": (3, _token),
    "TOKENCOUNT": (2, _tokencount),
    "CODEPOINT": (1, _codepoint),
    "HEX": (1, _hex),
    "DATEADD": (3, _dateadd),
    "DATEDIFF": (3, _datediff),
    "DATEPART": (2, _datepart),
    "YEAR": (1, _ymd("year")),
    "MONTH": (1, _ymd("month")),
    "DAY": (1, _ymd("day")),
    "GETDATE": (0, _now(False)),
    "GETUTCDATE": (0, _now(True)),
    "ISNULL": (1, _isnull),
    "REPLACENULL": (2, _replacenull),
}

FUNCTION_NAMES = frozenset(_ARITY)


class _Library:
    names = FUNCTION_NAMES

    def build(self, builder: Builder, node: Call) -> Built:
        arity, handler = _ARITY[node.name]
        if len(node.args) != arity:
            raise builder.error(
                f"the function {node.name} requires {arity} parameter(s), not {len(node.args)}",
                node.offset,
            )
        args = [self.build_arg(builder, node, index) for index in range(arity)]
        return handler(_Call(builder, node, args))

    @staticmethod
    def build_arg(builder: Builder, node: Call, index: int) -> Built:
        arg = node.args[index]
        # ISNULL may test an Object variable (the only use SSIS allows for one).
        if (
            node.name == "ISNULL"
            and isinstance(arg, Variable)
            and builder.types.get(arg.name) in (OBJECT, DBNULL)
        ):
            from .builder import Built

            return Built(OBJECT, itemgetter(builder.names.index(arg.name)))
        return builder.build(arg)


LIBRARY = _Library()
