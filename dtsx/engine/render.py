"""Views of a package for people and tools: the ``dtsx show`` document, its text tree, and
``dtsx graph`` in Graphviz DOT or Mermaid. Pure functions returning data or text; the CLI prints.

Secrets never reach a view: sensitive values are None and ``Password=``/``PWD=`` values inside
connection strings are masked.
"""

from __future__ import annotations

import re
from typing import Any

from dtsx.engine.model import (
    EVAL_OPS,
    EXEC_RESULTS,
    PROTECTION_LEVELS,
    Executable,
    ExecutableKind,
    Package,
    PrecedenceConstraint,
    package_configurations,
)

__all__ = [
    "MASK",
    "graph_dot",
    "graph_mermaid",
    "mask_connection_string",
    "show_document",
    "show_text",
]

MASK = "********"
# A secret value, read as .NET reads it, but never shorter: a quoted value runs to its closing
# quote (or to the end, when there is none) and on to the next ';'; a bare value takes in every
# following segment that has no '=', because in ``Password=Sem;iS3cr3t`` the tail belongs to the
# password (.NET would refuse it; dtsx refuses it too, but a view must not show it either).
_SECRET_KEYS = re.compile(
    r"""(?P<key>(?:^|;)\s*(?:password|pwd|proxypassword|serverpassword)\s*=\s*)"""
    r"""(?P<value>(?:"(?:[^"]|"")*(?:"|$)|'(?:[^']|'')*(?:'|$))[^;]*|[^;]*(?:;\s*[^\s;=][^;=]*(?=;|$))*)""",
    re.IGNORECASE,
)


def mask_connection_string(text: str | None) -> str | None:
    """The connection string with every password value replaced by ``********``."""
    if text is None:
        return None
    return _SECRET_KEYS.sub(lambda m: m.group("key") + MASK, text)


# --------------------------------------------------------------------------- show --json


def show_document(package: Package) -> dict[str, Any]:
    """The stable ``dtsx show --json`` document (see the README)."""
    return {
        "name": package.name,
        "format_version": package.format_version,
        "protection_level": PROTECTION_LEVELS.get(
            package.protection_level, str(package.protection_level)
        ),
        "executables": [_executable(e) for e in package.executables],
        "precedence_constraints": [_constraint(c) for c in package.precedence_constraints],
        "event_handlers": [_handler(h) for h in package.event_handlers],
        "connections": [
            {
                "name": cm.name,
                "dtsid": cm.dtsid,
                "type": cm.type_key,
                "connection_string": mask_connection_string(cm.connection_string),
            }
            for cm in package.all_connections()
        ],
        "variables": [
            {
                "namespace": v.namespace,
                "name": v.name,
                "data_type": v.dotnet_type,
                "value": None if v.sensitive_unavailable else v.value,
                "expression": v.expression,
                "evaluate_as_expression": v.evaluate_as_expression,
                "scope": v.scope,
            }
            for exe in package.walk()
            for v in exe.variables
        ],
        "parameters": [
            {
                "name": p.name,
                "data_type": p.dotnet_type,
                "value": None if (p.sensitive or p.sensitive_unavailable) else p.value,
                "sensitive": p.sensitive,
                "required": p.required,
            }
            for p in (*package.parameters, *package.project_parameters)
        ],
    }


def _executable(exe: Executable) -> dict[str, Any]:
    return {
        "ref_id": exe.ref_id,
        "name": exe.name,
        "type": exe.type_key,
        "disabled": exe.disabled,
        "executables": [_executable(e) for e in exe.executables],
        "precedence_constraints": [_constraint(c) for c in exe.precedence_constraints],
        "event_handlers": [_handler(h) for h in exe.event_handlers],
    }


def _handler(handler: Executable) -> dict[str, Any]:
    return {
        "event": handler.event,
        "executables": [_executable(e) for e in handler.executables],
        "precedence_constraints": [_constraint(c) for c in handler.precedence_constraints],
    }


def _constraint(pc: PrecedenceConstraint) -> dict[str, Any]:
    return {
        "from": pc.from_ref,
        "to": pc.to_ref,
        "value": EXEC_RESULTS.get(pc.value, str(pc.value)),
        "eval_op": EVAL_OPS.get(pc.eval_op, str(pc.eval_op)),
        "expression": pc.expression,
        "logical_and": pc.logical_and,
    }


# --------------------------------------------------------------------------- show (text)


def show_text(package: Package) -> str:
    """A readable tree of the package."""
    level = PROTECTION_LEVELS.get(package.protection_level, str(package.protection_level))
    lines = [f"Package {package.name!r}  (format {package.format_version}, {level})"]
    if package.all_connections():
        lines.append("Connections:")
        for cm in package.all_connections():
            scope = " (project)" if cm.scope == "Project" else ""
            shown = mask_connection_string(cm.connection_string) or ""
            lines.append(f"  {cm.name} [{cm.type_key}]{scope} {shown}".rstrip())
    params = [*package.parameters, *package.project_parameters]
    if params:
        lines.append("Parameters:")
        for p in params:
            value = MASK if (p.sensitive or p.sensitive_unavailable) else repr(p.value)
            lines.append(
                f"  {p.qualified_name}: {p.dotnet_type} = "
                f"{value}{'  (required)' if p.required else ''}"
            )
    if package.variables:
        lines.append("Variables:")
        lines.extend(_variables_text(package.variables, "  "))
    configurations = package_configurations(package)
    if configurations:
        lines.append("Configurations (applied in this order at run time):")
        lines.extend(
            f"  {c.name or '(unnamed)'}: {c.kind} {c.string}"
            + (f" -> {c.target}" if c.target else "")
            for c in configurations
        )
    lines.append("Control flow:")
    _tree(package, lines, "  ")
    return "\n".join(lines) + "\n"


def _variables_text(variables: list[Any], indent: str) -> list[str]:
    out = []
    for v in variables:
        value = MASK if v.sensitive_unavailable else repr(v.value)
        expr = f"  = {v.expression}" if v.evaluate_as_expression and v.expression else ""
        out.append(f"{indent}var {v.qualified_name}: {v.dotnet_type} = {value}{expr}")
    return out


def _tree(container: Executable, lines: list[str], indent: str) -> None:
    for child in container.executables:
        flags = " (disabled)" if child.disabled else ""
        lines.append(f"{indent}- {child.name}  [{child.type_key or child.raw_type}]{flags}")
        if child.kind is ExecutableKind.FOR_LOOP:
            lines.append(
                f"{indent}    for ({child.init_expression or ''}; {child.eval_expression or ''}; "
                f"{child.assign_expression or ''})"
            )
        if child.kind is ExecutableKind.FOREACH_LOOP and child.enumerator is not None:
            lines.append(
                f"{indent}    foreach {child.enumerator.type_key} {child.enumerator.properties}"
            )
        if child.kind is not ExecutableKind.PACKAGE:
            lines.extend(
                _variables_text(
                    [v for v in child.variables if v.namespace != "System"], indent + "    "
                )
            )
        _tree(child, lines, indent + "    ")
        _handlers(child, lines, indent + "    ")
    for pc in container.precedence_constraints:
        lines.append(
            f"{indent}{_short(pc.from_ref)} -> {_short(pc.to_ref)}: "
            f"{_edge_label(pc)}{'' if pc.logical_and else ' (OR)'}"
        )
    if container.kind is ExecutableKind.PACKAGE:
        _handlers(container, lines, indent)


def _handlers(exe: Executable, lines: list[str], indent: str) -> None:
    for handler in exe.event_handlers:
        lines.append(f"{indent}on {handler.event}:")
        _tree(handler, lines, indent + "    ")


def _short(ref: str) -> str:
    return ref.rsplit("\\", 1)[-1]


def _edge_label(pc: PrecedenceConstraint) -> str:
    outcome = EXEC_RESULTS.get(pc.value, str(pc.value))
    expr = (pc.expression or "").strip()
    if pc.eval_op == 1:
        return expr or "(expression)"
    if pc.eval_op == 3:
        return f"{outcome} and {expr}"
    if pc.eval_op == 4:
        return f"{outcome} or {expr}"
    return outcome


# --------------------------------------------------------------------------- graph


class _Ids:
    """Short, safe node ids for ref_ids (ref_ids hold backslashes, brackets and spaces)."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def __call__(self, ref: str) -> str:
        if ref not in self.ids:
            self.ids[ref] = f"n{len(self.ids)}"
        return self.ids[ref]


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "\\n")


_EDGE_COLOURS = {0: "darkgreen", 1: "red", 2: "blue"}


def graph_dot(package: Package) -> str:
    """Graphviz DOT: containers as clusters, constraints as labelled edges."""
    ids = _Ids()
    lines = [
        f'digraph "{_dot_text(package.name or "Package")}" {{',
        "  compound=true;",
        '  node [shape=box, style="rounded", fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    edges: list[str] = []
    _dot_container(package, ids, lines, edges, "  ")
    lines.extend(edges)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_container(
    container: Executable, ids: _Ids, lines: list[str], edges: list[str], indent: str
) -> None:
    for child in container.executables:
        _dot_executable(child, ids, lines, edges, indent)
    for handler in container.event_handlers if container.kind is ExecutableKind.PACKAGE else ():
        _dot_handler(handler, ids, lines, edges, indent)
    for pc in container.precedence_constraints:
        edges.append(_dot_edge(pc, ids, container))


def _dot_executable(
    exe: Executable, ids: _Ids, lines: list[str], edges: list[str], indent: str
) -> None:
    node = ids(exe.ref_id)
    grey = ', color="gray60", fontcolor="gray60"' if exe.disabled else ""
    label = _dot_text(f"{exe.name}\n[{exe.type_key or exe.raw_type}]")
    if exe.kind is ExecutableKind.TASK and not exe.event_handlers:
        lines.append(f'{indent}{node} [label="{label}"{grey}];')
        return
    lines.append(f"{indent}subgraph cluster_{node} {{")
    lines.append(f'{indent}  label="{label}";')
    if exe.disabled:
        lines.append(f'{indent}  color="gray60"; fontcolor="gray60";')
    # An invisible anchor lets constraints end at the cluster (compound=true, lhead/ltail).
    lines.append(f'{indent}  {node} [shape=point, style=invis, label=""];')
    if exe.kind is ExecutableKind.TASK:
        lines.append(f'{indent}  {node}_task [label="{label}"{grey}];')
    _dot_container(exe, ids, lines, edges, indent + "  ")
    for handler in exe.event_handlers:
        _dot_handler(handler, ids, lines, edges, indent + "  ")
    lines.append(f"{indent}}}")


def _dot_handler(
    handler: Executable, ids: _Ids, lines: list[str], edges: list[str], indent: str
) -> None:
    node = ids(handler.ref_id)
    lines.append(f"{indent}subgraph cluster_{node} {{")
    lines.append(f'{indent}  label="{_dot_text(f"on {handler.event}")}"; style="dashed";')
    lines.append(f'{indent}  {node} [shape=point, style=invis, label=""];')
    _dot_container(handler, ids, lines, edges, indent + "  ")
    lines.append(f"{indent}}}")


def _dot_edge(pc: PrecedenceConstraint, ids: _Ids, container: Executable) -> str:
    children = {c.ref_id: c for c in container.executables}
    attrs = [
        f'label="{_dot_text(_edge_label(pc))}"',
        f'color="{_EDGE_COLOURS.get(pc.value, "black")}"',
    ]
    if not pc.logical_and:
        attrs.append("style=dashed")
    for ref, key in ((pc.from_ref, "ltail"), (pc.to_ref, "lhead")):
        child = children.get(ref)
        if child is not None and (child.kind is not ExecutableKind.TASK or child.event_handlers):
            attrs.append(f"{key}=cluster_{ids(ref)}")
    return f"  {ids(pc.from_ref)} -> {ids(pc.to_ref)} [{', '.join(attrs)}];"


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;").replace("\r", "").replace("\n", " ")


def graph_mermaid(package: Package) -> str:
    """A Mermaid flowchart: containers as subgraphs, constraints as labelled links."""
    ids = _Ids()
    lines = ["flowchart TD"]
    links: list[str] = []
    disabled: list[str] = []
    _mermaid_container(package, ids, lines, links, disabled, "  ")
    lines.extend(links)
    lines.append("  classDef disabled fill:#eeeeee,stroke:#999999,color:#999999")
    if disabled:
        lines.append(f"  class {','.join(disabled)} disabled")
    return "\n".join(lines) + "\n"


def _mermaid_container(
    container: Executable,
    ids: _Ids,
    lines: list[str],
    links: list[str],
    disabled: list[str],
    indent: str,
) -> None:
    for child in container.executables:
        node = ids(child.ref_id)
        label = _mermaid_text(f"{child.name} [{child.type_key or child.raw_type}]")
        if child.disabled:
            disabled.append(node)
        if child.kind is ExecutableKind.TASK and not child.event_handlers:
            lines.append(f'{indent}{node}["{label}"]')
            continue
        lines.append(f'{indent}subgraph {node}["{label}"]')
        _mermaid_container(child, ids, lines, links, disabled, indent + "  ")
        lines.append(f"{indent}end")
    for handler in container.event_handlers:
        node = ids(handler.ref_id)
        lines.append(
            f'{indent}subgraph {node}["{_mermaid_text(f"on {handler.event} of {container.name}")}"]'
        )
        _mermaid_container(handler, ids, lines, links, disabled, indent + "  ")
        lines.append(f"{indent}end")
    for pc in container.precedence_constraints:
        label = _mermaid_text(_edge_label(pc))
        arrow = f'-- "{label}" -->' if pc.logical_and else f'-. "{label}" .->'
        links.append(f"  {ids(pc.from_ref)} {arrow} {ids(pc.to_ref)}")
