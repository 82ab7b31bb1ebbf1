"""Writes the executor's test packages, one per rule, in both persistence styles.

Run ``python tests/data/exec/_make.py`` after changing a rule; the .dtsx files are committed.
``NAME.v8.dtsx`` is the 2012+ style (attributes, refId paths, wrapper elements); ``NAME.v3.dtsx``
the 2008 style (``<DTS:Property>`` children, -1/0 booleans, IDREF constraints). The Expression
Task is a 2012 task; in v3 files it is written with its assembly-qualified type name, which
is how a 2008-style file names any managed task.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

HERE = Path(__file__).resolve().parent
NS = "www.microsoft.com/SqlServer/Dts"
EXPR_V3 = (
    "Microsoft.SqlServer.Dts.Tasks.ExpressionTask.ExpressionTask, "
    "Microsoft.SqlServer.ExpressionTask, "
    "Version=11.0.0.0, Culture=neutral, PublicKeyToken=89845dcd8080cc91"
)
ENUM_EXPR = "__enum_expr_"
TYPES = {
    "Int32": 3,
    "String": 8,
    "Boolean": 11,
    "Double": 5,
    "DateTime": 7,
    "Object": 13,
    "Int64": 20,
}


@dataclass
class Var:
    name: str
    type: str = "Int32"
    value: str = "0"
    namespace: str = "User"
    expression: str | None = None
    read_only: bool = False


@dataclass
class Con:
    src: str
    dst: str
    value: int = 0
    eval_op: int = 2
    expression: str | None = None
    logical_and: bool = True


@dataclass
class Exe:
    name: str
    kind: str = "task"  # task | seq | for | foreach | execproc
    expression: str = ""
    props: dict[str, str] = field(default_factory=dict)
    variables: list[Var] = field(default_factory=list)
    children: list[Exe] = field(default_factory=list)
    constraints: list[Con] = field(default_factory=list)
    handlers: list[Exe] = field(default_factory=list)  # kind "handler", name = event
    enumerator: tuple[str, dict[str, str], list[list[tuple[int, str]]]] | None = None
    mappings: list[tuple[int, str]] = field(default_factory=list)


def task(name: str, expression: str, **props: str) -> Exe:
    return Exe(name, "task", expression, dict(props))


def guid(ref: str) -> str:
    return "{" + str(uuid.uuid5(uuid.NAMESPACE_URL, ref)).upper() + "}"


_V8_TYPES = {
    "task": "Microsoft.ExpressionTask",
    "seq": "STOCK:SEQUENCE",
    "for": "STOCK:FORLOOP",
    "foreach": "STOCK:FOREACHLOOP",
    "execproc": "Microsoft.ExecuteProcess",
    "script": "Microsoft.ScriptTask",
}
_V3_TYPES = dict(
    _V8_TYPES,
    task=EXPR_V3,
    execproc="Microsoft.SqlServer.Dts.Tasks.ExecuteProcess.ExecuteProcess, "
    "Microsoft.SqlServer.ExecProcTask, "
    "Version=10.0.0.0, Culture=neutral, PublicKeyToken=89845dcd8080cc91",
    script="Microsoft.SqlServer.Dts.Tasks.ScriptTask.ScriptTask, Microsoft.SqlServer.ScriptTask, "
    "Version=10.0.0.0, Culture=neutral, PublicKeyToken=89845dcd8080cc91",
)


BOOLS = {"Disabled", "FailParentOnFailure", "FailPackageOnFailure", "DisableEventHandlers"}


def _bool8(value: str) -> str:
    return {"-1": "True", "0": "False"}.get(value, value)


def _bool3(value: str) -> str:
    return {"True": "-1", "False": "0"}.get(value, value)


def props8(props: dict[str, str]) -> dict[str, str]:
    return {k: _bool8(v) if k in BOOLS else v for k, v in props.items()}


def props3(props: dict[str, str]) -> dict[str, str]:
    return {k: _bool3(v) if k in BOOLS else v for k, v in props.items()}


# -- 2012+ -------------------------------------------------------------------------------------


def v8_attrs(attrs: dict[str, str]) -> str:
    return "".join(f"\n  DTS:{k}={quoteattr(v)}" for k, v in attrs.items())


def v8_variable(var: Var, owner: str) -> str:
    attrs = {
        "CreationName": "",
        "DTSID": guid(f"{owner}.Variables[{var.namespace}::{var.name}]"),
        "Namespace": var.namespace,
        "ObjectName": var.name,
    }
    if var.expression is not None:
        attrs["EvaluateAsExpression"] = "True"
        attrs["Expression"] = var.expression
    if var.read_only:
        attrs["ReadOnly"] = "True"
    return (
        f'<DTS:Variable{v8_attrs(attrs)}>\n<DTS:VariableValue DTS:DataType="{TYPES[var.type]}">'
        f"{escape(var.value)}</DTS:VariableValue>\n</DTS:Variable>\n"
    )


def v8_body(exe: Exe, ref: str) -> str:
    out = []
    out.append(
        "<DTS:Variables>\n"
        + "".join(v8_variable(v, ref) for v in exe.variables)
        + "</DTS:Variables>\n"
    )
    if exe.kind in ("seq", "for", "foreach", "package", "handler"):
        out.append(
            "<DTS:Executables>\n"
            + "".join(v8_exe(c, f"{ref}\\{c.name}") for c in exe.children)
            + "</DTS:Executables>\n"
        )
        if exe.constraints:
            out.append("<DTS:PrecedenceConstraints>\n")
            for i, c in enumerate(exe.constraints):
                cref = f"{ref}.PrecedenceConstraints[C{i}]"
                attrs = {
                    "refId": cref,
                    "CreationName": "",
                    "DTSID": guid(cref),
                    "From": f"{ref}\\{c.src}",
                    "To": f"{ref}\\{c.dst}",
                    "LogicalAnd": "True" if c.logical_and else "False",
                    "ObjectName": f"C{i}",
                }
                if c.value:
                    attrs["Value"] = str(c.value)
                if c.eval_op != 2:
                    attrs["EvalOp"] = str(c.eval_op)
                if c.expression is not None:
                    attrs["Expression"] = c.expression
                out.append(f"<DTS:PrecedenceConstraint{v8_attrs(attrs)} />\n")
            out.append("</DTS:PrecedenceConstraints>\n")
    if exe.enumerator is not None:
        out.append(v8_enumerator(exe, ref))
    if exe.mappings:
        out.append("<DTS:ForEachVariableMappings>\n")
        for index, variable in exe.mappings:
            mref = f"{ref}.ForEachVariableMappings[{variable}]"
            attrs = {
                "CreationName": "",
                "DTSID": guid(mref),
                "ObjectName": guid(mref),
                "ValueIndex": str(index),
                "VariableName": variable,
            }
            out.append(f"<DTS:ForEachVariableMapping{v8_attrs(attrs)} />\n")
        out.append("</DTS:ForEachVariableMappings>\n")
    if exe.handlers:
        out.append("<DTS:EventHandlers>\n")
        for h in exe.handlers:
            href = f"{ref}.EventHandlers[{h.name}]"
            attrs = {
                "refId": href,
                "CreationName": h.name,
                "DTSID": guid(href),
                "EventName": h.name,
            }
            attrs.update(props8(h.props))
            out.append(
                f"<DTS:EventHandler{v8_attrs(attrs)}>\n{v8_body(h, href)}</DTS:EventHandler>\n"
            )
        out.append("</DTS:EventHandlers>\n")
    if exe.kind == "task":
        out.append(
            f"<DTS:ObjectData>\n<ExpressionTask Expression={quoteattr(exe.expression)} "
            "/>\n</DTS:ObjectData>\n"
        )
    if exe.kind == "execproc":
        out.append(
            '<DTS:ObjectData>\n<ExecuteProcessData Executable="/bin/sleep" '
            f"Arguments={quoteattr(exe.expression)} />"
            "\n</DTS:ObjectData>\n"
        )
    return "".join(out)


def v8_enumerator(exe: Exe, ref: str) -> str:
    assert exe.enumerator is not None
    kind, settings, items = exe.enumerator
    eref = f"{ref}.ForEachEnumerator"
    attrs = {
        "CreationName": f"Microsoft.ForEach{kind}Enumerator",
        "DTSID": guid(eref),
        "ObjectName": guid(eref),
    }
    return (
        f"<DTS:ForEachEnumerator{v8_attrs(attrs)}>\n{enum_exprs(exe)}<DTS:ObjectData>\n"
        f"{enum_data(kind, settings, items)}</DTS:ObjectData>\n</DTS:ForEachEnumerator>\n"
    )


def enum_exprs(exe: Exe) -> str:
    return "".join(
        "<DTS:PropertyExpression "
        f'DTS:Name="{k[len(ENUM_EXPR) :]}">{escape(v)}</DTS:PropertyExpression>\n'
        for k, v in exe.props.items()
        if k.startswith(ENUM_EXPR)
    )


def host_props(exe: Exe) -> dict[str, str]:
    return {k: v for k, v in exe.props.items() if not k.startswith(ENUM_EXPR)}


def enum_data(kind: str, settings: dict[str, str], items: list[list[tuple[int, str]]]) -> str:
    if kind == "File":
        rows = "".join(f"<FEFEProperty {k}={quoteattr(v)} />\n" for k, v in settings.items())
        return f"<ForEachFileEnumeratorProperties>\n{rows}</ForEachFileEnumeratorProperties>\n"
    if kind == "Item":
        body = "".join(
            "<FEIEItem>"
            + "".join(f'<FEIEItemValue Type="{t}" Value={quoteattr(v)} />' for t, v in row)
            + "</FEIEItem>\n"
            for row in items
        )
        return f"<FEIEItems>\n{body}</FEIEItems>\n"
    attrs = "".join(f" {k}={quoteattr(v)}" for k, v in settings.items())
    return f"<FEEADO{attrs} />\n" if kind == "ADO" else f"<FEFVE{attrs} />\n"


def v8_exe(exe: Exe, ref: str) -> str:
    attrs = {
        "refId": ref,
        "CreationName": _V8_TYPES[exe.kind],
        "DTSID": guid(ref),
        "ExecutableType": _V8_TYPES[exe.kind],
        "ObjectName": exe.name,
    }
    attrs.update(props8(host_props(exe)))
    return f"<DTS:Executable{v8_attrs(attrs)}>\n{v8_body(exe, ref)}</DTS:Executable>\n"


def v8_package(pkg: Exe) -> str:
    attrs = {
        "refId": "Package",
        "CreationName": "Microsoft.Package",
        "DTSID": guid(f"pkg:{pkg.name}"),
        "ExecutableType": "Microsoft.Package",
        "ObjectName": pkg.name,
        "ProtectionLevel": "0",
    }
    attrs.update(props8(pkg.props))
    return (
        f'<?xml version="1.0"?>\n<DTS:Executable xmlns:DTS="{NS}"{v8_attrs(attrs)}>\n'
        "<DTS:Property "
        f'DTS:Name="PackageFormatVersion">8</DTS:Property>\n{v8_body(pkg, "Package")}</DTS:Executable>\n'
    )


# -- 2008 --------------------------------------------------------------------------------------


def p3(name: str, value: str) -> str:
    return f'<DTS:Property DTS:Name="{name}">{escape(value)}</DTS:Property>\n'


def v3_variable(var: Var, owner: str) -> str:
    out = [
        p3("Expression", var.expression or ""),
        p3("EvaluateAsExpression", "-1" if var.expression is not None else "0"),
        p3("Namespace", var.namespace),
        p3("ReadOnly", "-1" if var.read_only else "0"),
        p3("RaiseChangedEvent", "0"),
        "<DTS:VariableValue "
        f'DTS:DataType="{TYPES[var.type]}">{escape(var.value)}</DTS:VariableValue>\n',
        p3("ObjectName", var.name),
        p3("DTSID", guid(f"{owner}.Variables[{var.namespace}::{var.name}]")),
    ]
    return "<DTS:Variable>\n" + "".join(out) + "</DTS:Variable>\n"


def v3_body(exe: Exe, ref: str) -> str:
    out = [v3_variable(v, ref) for v in exe.variables]
    for c in exe.children:
        out.append(v3_exe(c, f"{ref}\\{c.name}"))
    for i, c in enumerate(exe.constraints):
        cref = f"{ref}.PrecedenceConstraints[C{i}]"
        out.append(
            "<DTS:PrecedenceConstraint>\n"
            + p3("Value", str(c.value))
            + p3("EvalOp", str(c.eval_op))
            + p3("LogicalAnd", "-1" if c.logical_and else "0")
            + p3("Expression", c.expression or "")
            + f'<DTS:Executable IDREF="{guid(ref + chr(92) + c.src)}" DTS:IsFrom="-1"/>'
            + f'<DTS:Executable IDREF="{guid(ref + chr(92) + c.dst)}" DTS:IsFrom="0"/>\n'
            + p3("ObjectName", f"C{i}")
            + p3("DTSID", guid(cref))
            + "</DTS:PrecedenceConstraint>\n"
        )
    if exe.enumerator is not None:
        kind, settings, items = exe.enumerator
        creation = {
            "File": "DTS.ForEachFileEnumerator.2",
            "Item": "DTS.ForEachItemEnumerator.2",
            "ADO": "DTS.ForEachADOEnumerator.2",
            "FromVar": "DTS.ForEachFromVarEnumerator.2",
        }[kind]
        eref = f"{ref}.ForEachEnumerator"
        out.append(
            "<DTS:ForEachEnumerator>\n"
            + p3("ObjectName", guid(eref))
            + p3("DTSID", guid(eref))
            + p3("CreationName", creation)
            + enum_exprs(exe)
            + f"<DTS:ObjectData>{enum_data(kind, settings, items)}</DTS:ObjectData>"
            + "</DTS:ForEachEnumerator>\n"
        )
    for index, variable in exe.mappings:
        out.append(
            "<DTS:ForEachVariableMapping>\n"
            + p3("VariableName", variable)
            + f'<DTS:Property DTS:Name="ValueIndex" DTS:DataType="3">{index}</DTS:Property>\n'
            + p3("ObjectName", guid(ref + variable))
            + p3("DTSID", guid(ref + variable))
            + "</DTS:ForEachVariableMapping>\n"
        )
    for h in exe.handlers:
        href = f"{ref}.EventHandlers[{h.name}]"
        props = "".join(p3(k, v) for k, v in props3(h.props).items())
        out.append(
            "<DTS:EventHandler>\n"
            + p3("EventID", "0")
            + p3("EventName", h.name)
            + props
            + v3_body(h, href)
            + p3("DTSID", guid(href))
            + "</DTS:EventHandler>\n"
        )
    if exe.kind == "task":
        out.append(
            f"<DTS:ObjectData><ExpressionTask Expression={quoteattr(exe.expression)} "
            "/></DTS:ObjectData>\n"
        )
    if exe.kind == "execproc":
        out.append(
            '<DTS:ObjectData><ExecuteProcessData Executable="/bin/sleep" '
            f"Arguments={quoteattr(exe.expression)} />"
            "</DTS:ObjectData>\n"
        )
    return "".join(out)


def v3_exe(exe: Exe, ref: str) -> str:
    props = "".join(
        p3(k, v)
        for k, v in props3(host_props(exe)).items()
        if k not in ("InitExpression", "EvalExpression", "AssignExpression")
    )
    loop = "".join(
        p3(k, exe.props[k])
        for k in ("InitExpression", "EvalExpression", "AssignExpression")
        if k in exe.props
    )
    return (
        f'<DTS:Executable DTS:ExecutableType="{escape(_V3_TYPES[exe.kind])}">\n{loop}{props}'
        + v3_body(exe, ref)
        + p3("ObjectName", exe.name)
        + p3("DTSID", guid(ref))
        + p3("CreationName", _V3_TYPES[exe.kind])
        + "</DTS:Executable>\n"
    )


def v3_package(pkg: Exe) -> str:
    props = (
        p3("PackageFormatVersion", "3")
        + p3("ProtectionLevel", "0")
        + "".join(p3(k, v) for k, v in props3(pkg.props).items())
    )
    return (
        f'<?xml version="1.0"?>\n<DTS:Executable xmlns:DTS="{NS}" '
        f'DTS:ExecutableType="SSIS.Package.2">\n{props}'
        + v3_body(pkg, "Package")
        + p3("ObjectName", pkg.name)
        + p3("DTSID", guid(f"pkg:{pkg.name}"))
        + p3("CreationName", "SSIS.Package.2")
        + "</DTS:Executable>\n"
    )


def package(
    name: str,
    children: list[Exe],
    constraints: list[Con] | None = None,
    variables: list[Var] | None = None,
    handlers: list[Exe] | None = None,
    **props: str,
) -> Exe:
    return Exe(
        name,
        "package",
        "",
        dict(props),
        variables or [],
        children,
        constraints or [],
        handlers or [],
    )


def write(pkg: Exe, *, v3: bool = True) -> None:
    (HERE / f"{pkg.name}.v8.dtsx").write_text(v8_package(pkg), encoding="utf-8")
    if v3:
        (HERE / f"{pkg.name}.v3.dtsx").write_text(v3_package(pkg), encoding="utf-8")


def log_var(name: str = "Log") -> Var:
    return Var(name, "String", "")


def rec(tag: str, log: str = "Log") -> str:
    """An expression appending ``tag;`` to the log variable: what ran, in order."""
    return f'@[User::{log}] = @[User::{log}] + "{tag};"'


def main() -> None:
    from rules import RULES  # noqa: PLC0415 - the rules live next to this file

    for pkg, v3 in RULES():
        write(pkg, v3=v3)


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(HERE))
    main()
