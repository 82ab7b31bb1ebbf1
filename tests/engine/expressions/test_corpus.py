"""Every expression in the real packages of the shared corpus must compile (without types)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from dtsx.engine.errors import ExpressionError
from dtsx.engine.expressions import compile, dotnet_type_of_vartype, value_from_dotnet

from tests._shared import shared_dir

DTS = "www.microsoft.com/SqlServer/Dts"
_TRUE = {"true", "-1", "1"}
_FOR_LOOP = ("InitExpression", "EvalExpression", "AssignExpression")


def _q(name: str) -> str:
    return f"{{{DTS}}}{name}"


def _property(element: etree._Element, name: str) -> str | None:
    """A DTS setting stored as attribute (2012+) or as a <DTS:Property> child (2005/2008)."""
    value = element.get(_q(name))
    if value is not None:
        return value
    for child in element.findall(_q("Property")):
        if child.get(_q("Name")) == name:
            return child.text or ""
    return None


def _expressions(root: etree._Element) -> list[tuple[str, bool, str]]:
    """(expression, assignment form?, where) for every expression in one package."""
    found: list[tuple[str, bool, str]] = []
    for pc in root.iter(_q("PrecedenceConstraint")):
        found.append((_property(pc, "Expression") or "", False, "precedence constraint"))
    for pe in root.iter(_q("PropertyExpression")):
        found.append((pe.text or "", False, f"property expression {pe.get(_q('Name'))}"))
    for var in root.iter(_q("Variable")):
        if (_property(var, "EvaluateAsExpression") or "").strip().lower() in _TRUE:
            found.append((_property(var, "Expression") or "", False, "variable expression"))
    for element in root.iter(_q("Executable")):
        for name in _FOR_LOOP:
            text = _property(element, name)
            if text is not None:
                found.append((text, name != "EvalExpression", f"For Loop {name}"))
    return [(text, assign, where) for text, assign, where in found if text.strip()]


def _packages() -> list[Path]:
    base = shared_dir()
    folder = base / "corpus" / "dtsx" if base else None
    return sorted(folder.glob("*.dtsx")) if folder and folder.is_dir() else []


def collect() -> tuple[list[tuple[str, bool, str]], int]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    expressions: list[tuple[str, bool, str]] = []
    encrypted = 0
    for path in _packages():
        root = etree.parse(str(path), parser).getroot()
        if etree.QName(root).localname == "EncryptedData":
            encrypted += 1
            continue
        expressions.extend(
            (text, assign, f"{path.name}: {where}") for text, assign, where in _expressions(root)
        )
    return expressions, encrypted


def test_every_corpus_expression_compiles(record_property: Any) -> None:
    if not _packages():
        pytest.skip("the shared corpus (corpus/dtsx) is absent: set DTSX_SHARED")
    expressions, encrypted = collect()
    failures = []
    for text, assignment, where in expressions:
        try:
            compile(text, assignment=assignment)
        except ExpressionError as exc:
            failures.append(f"{where}: {exc}")
    record_property("corpus_expressions", len(expressions))
    record_property("corpus_expressions_compiled", len(expressions) - len(failures))
    print(
        f"\ncorpus: {len(expressions)} expressions, {len(expressions) - len(failures)} compile; "
        f"{encrypted} encrypted packages skipped"
    )
    assert encrypted == 2
    assert len(expressions) > 100
    assert not failures, "\n".join(failures)


def test_every_corpus_variable_value_converts() -> None:
    """Persisted variable values (VARTYPE code + text, ssis-runtime §4.3) all read back."""
    packages = _packages()
    if not packages:
        pytest.skip("the shared corpus (corpus/dtsx) is absent: set DTSX_SHARED")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    count = 0
    for path in packages:
        root = etree.parse(str(path), parser).getroot()
        for element in root.iter(_q("VariableValue")):
            code = element.get(_q("DataType"))
            if code is None:
                continue
            value = value_from_dotnet(dotnet_type_of_vartype(int(code)), element.text or "")
            assert value.type, path.name
            count += 1
    assert count > 100
