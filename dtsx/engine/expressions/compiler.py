"""Compile once, evaluate many: ``compile()`` and ``CompiledExpression``.

The AST is parsed once. Evaluation looks the variables up, and runs the closure tree built for
that combination of variable types (built on first use and cached), so the steady state never
re-parses or re-checks types.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from dtsx.engine.errors import DtsxError, ExpressionError

from .ast import Assignment, Node, Variable, walk
from .builder import Builder, Built
from .casts import ConversionFailure
from .dotnet import DOTNET_TO_DT, convert_to_type, value_from_dotnet
from .functions import FUNCTION_NAMES, LIBRARY
from .parser import parse
from .values import DBNULL, OBJECT, Value

__all__ = ["CompiledExpression", "compile", "evaluate", "Lookup"]

Lookup = Callable[[str], Value]
_make = tuple.__new__
_CACHE_LIMIT = 64


class CompiledExpression:
    """A parsed, checked expression. ``evaluate(lookup)`` returns a ``Value``.

    ``variables`` holds every variable name as written (the assignment target included);
    ``target`` is the assigned variable of the For Loop form, else None. Safe to share between
    threads: the per-type cache only ever gains complete entries.
    """

    __slots__ = ("text", "variables", "target", "_ast", "_names", "_offsets", "_cache", "_single")

    def __init__(self, text: str, ast: Node, static_types: Mapping[str, str | None]) -> None:
        self.text = text
        self._ast = ast
        self.target: str | None = ast.target.name if isinstance(ast, Assignment) else None
        names: list[str] = []
        offsets: dict[str, int] = {}
        for node in walk(ast):
            if isinstance(node, Variable) and node.name not in offsets:
                offsets[node.name] = node.offset
                names.append(node.name)
        self._names = names
        self._offsets = offsets
        self.variables = frozenset(names)
        self._single = names[0] if len(names) == 1 else None
        self._cache: dict[Any, tuple[Callable[[list[Any]], Any], str]] = {}
        self._check(static_types)

    def __repr__(self) -> str:
        return f"CompiledExpression({self.text!r})"

    def variables_in_order(self) -> tuple[str, ...]:
        """The variable names as written, each once, in the order they first appear."""
        return tuple(self._names)

    # -- building -----------------------------------------------------------------------------
    def _builder(self, env: Mapping[str, str | None]) -> Builder:
        return Builder(self.text, self._names, dict(env), LIBRARY)

    def _check(self, static_types: Mapping[str, str | None]) -> None:
        env = {name: static_types.get(name) for name in self._names}
        built = self._guarded_build(env)
        if all(env[name] is not None for name in self._names) and built.fn is not None:
            key = self._key([env[name] for name in self._names])  # type: ignore[misc]
            self._cache[key] = self._finish(built, env)

    def _guarded_build(self, env: Mapping[str, str | None]) -> Built:
        builder = self._builder(env)
        try:
            built = builder.build_root(self._ast)
        except RecursionError:
            raise ExpressionError("the expression is too deeply nested", text=self.text) from None
        target = self.target
        if target is not None and env.get(target) == DBNULL:
            raise ExpressionError(
                f"the variable @[{target}] has type DBNull and cannot be assigned",
                text=self.text,
                offset=self._offsets[target],
            )
        return built

    def _key(self, types: list[str]) -> Any:
        return types[0] if self._single is not None else tuple(types)

    def _finish(
        self, built: Built, env: Mapping[str, str | None]
    ) -> tuple[Callable[[list[Any]], Any], str]:
        fn, result_type = built.fn, built.type
        assert fn is not None and result_type is not None
        if self.target is None:
            return fn, result_type
        target_type = env[self.target]
        assert target_type is not None
        if target_type == OBJECT:
            return fn, result_type
        return self._assigning(fn, result_type, target_type), target_type

    def _assigning(
        self, fn: Callable[[list[Any]], Any], source: str, target: str
    ) -> Callable[[list[Any]], Any]:
        text, offset = self.text, self._offsets.get(self.target or "", 0)

        def assign(vs: list[Any]) -> Any:
            raw = fn(vs)
            if raw is None:
                raise ExpressionError(
                    f"the expression is NULL, which cannot be assigned to @[{self.target}] "
                    "(variables can never hold NULL)",
                    text=text,
                    offset=offset,
                )
            if source == target:
                return raw
            try:
                return convert_to_type(Value(source, raw), target)
            except ConversionFailure as exc:
                raise ExpressionError(
                    f"the {source} result cannot be assigned to @[{self.target}] ({target}): {exc}",
                    text=text,
                    offset=offset,
                ) from None

        return assign

    def _specialize(self, key: Any) -> tuple[Callable[[list[Any]], Any], str]:
        types = [key] if self._single is not None else list(key)
        env = dict(zip(self._names, types, strict=True))
        entry = self._finish(self._guarded_build(env), env)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = entry
        return entry

    # -- evaluation ---------------------------------------------------------------------------
    def evaluate(self, lookup: Lookup) -> Value:
        """Evaluate with ``lookup(name) -> Value``; every failure is an ExpressionError."""
        try:
            single = self._single
            if single is not None:
                found = lookup(single)
                key: Any = found[0]
                raw = [found[1]]
            elif self._names:
                values = [lookup(name) for name in self._names]
                key = tuple([v[0] for v in values])
                raw = [v[1] for v in values]
            else:
                key, raw = (), []
            entry = self._cache.get(key)
            if entry is None:
                entry = self._specialize(key)
            return _make(Value, (entry[1], entry[0](raw)))
        except ExpressionError as exc:
            if exc.text:
                raise
            raise self._lookup_error(exc.message, lookup) from None
        except KeyError:
            raise self._missing(lookup) from None
        except DtsxError as exc:  # e.g. a variable's own expression failed inside lookup
            raise ExpressionError(f"a variable could not be read: {exc}", text=self.text) from exc
        except RecursionError:
            raise ExpressionError("the expression is too deeply nested", text=self.text) from None
        except Exception as exc:  # a bug must still surface as the documented error kind
            raise ExpressionError(
                f"internal error while evaluating ({type(exc).__name__}: {exc})", text=self.text
            ) from exc

    def _missing(self, lookup: Lookup) -> ExpressionError:
        for name in self._names:
            try:
                lookup(name)
            except KeyError:
                return ExpressionError(
                    f"the variable @[{name}] was not found",
                    text=self.text,
                    offset=self._offsets[name],
                )
            except Exception:  # noqa: S112 - only looking for the missing one
                continue
        return ExpressionError("internal error while evaluating (KeyError)", text=self.text)

    def _lookup_error(self, message: str, lookup: Lookup) -> ExpressionError:
        for name in self._names:
            try:
                lookup(name)
            except ExpressionError:
                return ExpressionError(message, text=self.text, offset=self._offsets[name])
            except Exception:  # noqa: S112
                continue
        return ExpressionError(message, text=self.text)


def _static_type(name: str, types: Mapping[str, str]) -> str | None:
    dotnet = types.get(name)
    if dotnet is None and "::" not in name:
        matches = [key for key in types if key.split("::", 1)[-1] == name]
        if len(matches) == 1:
            dotnet = types[matches[0]]
    if dotnet is None:
        return None
    if dotnet.upper().startswith("DT_"):
        return dotnet.upper()  # an SSIS type name is accepted as well
    short = dotnet.rsplit(".", 1)[-1]
    return DOTNET_TO_DT.get(short)


def compile(  # noqa: A001 - the documented API name
    text: str, *, assignment: bool = False, types: Mapping[str, str] | None = None
) -> CompiledExpression:
    """Parse and check ``text``. ``assignment=True`` allows the For Loop form ``@Var = expr``.

    ``types`` maps variable names to .NET type names; with it, type errors surface here.
    Without it, only what is wrong whatever the variables' types is reported.
    """
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be text, not {type(text).__name__}")
    try:
        ast = parse(text, assignment=assignment, function_names=FUNCTION_NAMES)
        static: dict[str, str | None] = {}
        if types:
            for node in walk(ast):
                if isinstance(node, Variable):
                    static[node.name] = _static_type(node.name, types)
        return CompiledExpression(text, ast, static)
    except ExpressionError:
        raise
    except RecursionError:
        raise ExpressionError("the expression is too deeply nested", text=text) from None
    except Exception as exc:  # a bug must still surface as the documented error kind
        raise ExpressionError(
            f"internal error while compiling ({type(exc).__name__}: {exc})", text=text
        ) from exc


@lru_cache(maxsize=512)
def _cached_compile(text: str, assignment: bool) -> CompiledExpression:
    return compile(text, assignment=assignment)


def _variable_table(variables: Mapping[str, Any]) -> dict[str, Value]:
    table: dict[str, Value] = {}
    for key, spec in variables.items():
        name = key if "::" in key else f"User::{key}"
        if isinstance(spec, Value):
            table[name] = spec
        else:
            type_name, raw = spec
            table[name] = value_from_dotnet(type_name, raw)
    return table


def _table_lookup(table: dict[str, Value]) -> Lookup:
    def lookup(name: str) -> Value:
        if "::" in name:
            return table[name]
        matches = [key for key in table if key.split("::", 1)[1] == name]
        if len(matches) > 1:
            raise ExpressionError(
                f"there are multiple variables named {name!r} ({', '.join(sorted(matches))}); "
                f"write it as @[Namespace::{name}]"
            )
        if not matches:
            raise KeyError(name)
        return table[matches[0]]

    return lookup


def evaluate(
    text: str, variables: Mapping[str, Any] | None = None, *, assignment: bool = False
) -> Value:
    """Evaluate ``text`` once. ``variables`` maps ``"User::Count"`` (or ``"Count"``, meaning
    User) to ``(".NET type", value)`` or to a ``Value``. With ``assignment=True`` the result is
    the value assigned to the target variable."""
    compiled = _cached_compile(text, assignment)
    return compiled.evaluate(_table_lookup(_variable_table(variables or {})))
