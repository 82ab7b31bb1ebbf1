"""The SSIS expression language: tokenizer, parser to a typed AST, evaluator, function library.

Compile once, evaluate many::

    from dtsx.engine.expressions import compile, evaluate, value_from_dotnet

    expr = compile("@[User::i] < 10")
    expr.evaluate(lambda name: value_from_dotnet("Int32", 3))   # Value('DT_BOOL', True)
    evaluate('"n=" + (DT_WSTR,10)@n', {"n": ("Int32", 5)})       # Value('DT_WSTR', 'n=5')

Modules: ``tokens`` (lexer), ``parser`` (AST), ``ast``, ``datatypes`` (type families, promotion),
``casts`` (legal casts and conversions), ``functions`` (the library), ``builder`` (type checking
and closures), ``values`` (``Value``), ``dotnet`` (variables ↔ values), ``compiler`` (the API).
"""

from __future__ import annotations

from .compiler import CompiledExpression, compile, evaluate
from .dotnet import (
    dotnet_type_of_typecode,
    dotnet_type_of_vartype,
    value_from_dotnet,
    value_to_dotnet,
)
from .values import Value, format_value_for_display

__all__ = [
    "compile",
    "evaluate",
    "CompiledExpression",
    "Value",
    "value_from_dotnet",
    "value_to_dotnet",
    "dotnet_type_of_vartype",
    "dotnet_type_of_typecode",
    "format_value_for_display",
]
