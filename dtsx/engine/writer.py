"""Model → ``.dtsx`` in format 8 (the 2012+ attribute style), so a loaded package round-trips.

Settings are written as ``DTS:`` attributes and omitted when they hold SSIS's default, as the
designer does; opaque parts (ObjectData, LoggingOptions, configurations) are written back exactly
as they were kept. For every package ``load(write(load(f)))`` equals ``load(f)`` apart from
``format_version`` (a 2005/2008 package comes back as format 8, with the same model).
Values that loaded as "sensitive, not available" are written as empty ``Sensitive="1"`` markers:
the writer never has a secret to write.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from lxml import etree

from dtsx.engine.errors import PackageWriteError
from dtsx.engine.model import (
    DTS_NS,
    MAX_PACKAGE_BYTES,
    MAX_XML_DEPTH,
    MAX_XML_VALUE_BYTES,
    ConnectionManagerSpec,
    Executable,
    ExecutableKind,
    ForEachEnumerator,
    ForEachVariableMapping,
    LogProvider,
    Package,
    Parameter,
    PrecedenceConstraint,
    PropertyExpression,
    Variable,
    XmlNode,
    local_name,
    marked_sensitive,
)

__all__ = ["WRITTEN_FORMAT", "node_to_xml", "write", "write_file"]

WRITTEN_FORMAT = 8
_D = "{" + DTS_NS + "}"
_NCNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
# Subtrees whose whitespace is data, not layout: never re-indented.
_NO_INDENT = {_D + "VariableValue", _D + "ObjectData", _D + "PropertyExpression", _D + "Property"}


# libxml2 reads a start tag whole within its 10,000,000-byte look-ahead, which may still hold a
# little of what came before the tag: a tag is kept this far below the limit.
_TAG_SLACK = 4096
_SEP = "\\"  # between the parts of a refId


def write(package: Package) -> bytes:
    """The package as a format-8 ``.dtsx`` document (UTF-8 bytes).

    Raises PackageWriteError rather than write what the loader would refuse: elements nested
    over MAX_XML_DEPTH, a text or start tag over MAX_XML_VALUE_BYTES, a file over MAX_PACKAGE_BYTES.
    """
    _check_nesting(package)
    root = etree.Element(_D + "Executable", nsmap={"DTS": DTS_NS})
    _package(root, package)
    if _TOO_DEEP(root):
        _find_too_deep(root)
    _indent(root, 0)
    data: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    if len(data) > MAX_XML_VALUE_BYTES - _TAG_SLACK:  # smaller files cannot hold a value too large
        _check_values(root)
    if len(data) > MAX_PACKAGE_BYTES:
        raise PackageWriteError(
            f"the package {package.name!r} would be written as {len(data):,} bytes, over the "
            "loader's limit of "
            f"{MAX_PACKAGE_BYTES // (1024 * 1024)} MiB for a file; split it into packages run by "
            "Execute Package tasks."
        )
    return data


def write_file(package: Package, path: str | os.PathLike[str]) -> None:
    """Write ``package`` to ``path`` in format 8."""
    with open(path, "wb") as handle:
        handle.write(write(package))


def node_to_xml(node: XmlNode, parent: etree._Element | None = None) -> etree._Element:
    """An XmlNode back into lxml (as a child of ``parent`` when given)."""
    nsmap = {(k or None): v for k, v in node.nsmap.items()}
    if parent is None:
        el = etree.Element(node.tag, nsmap=nsmap)
    else:
        el = etree.SubElement(parent, node.tag, nsmap=nsmap)
    for key, value in node.attrs.items():
        el.set(key, value)
    el.text = node.text
    for child in node.children:
        node_to_xml(child, el)
    return el


# --------------------------------------------------------------------------- limits
# Format 8 puts each child executable two levels below its parent (Executables, Executable),
# where 2005/2008 packages used one, so a package that loaded can nest too deep once written.


def _check_nesting(package: Package) -> None:
    """Refuse executables nested too deep before the recursive build would meet them."""
    pending: list[tuple[Executable, int]] = [(child, 3) for child in _children(package)]
    while pending:
        exe, depth = pending.pop()
        if depth > MAX_XML_DEPTH:
            raise _too_deep(exe.ref_id, depth)
        pending.extend((child, depth + 2) for child in _children(exe))


def _children(exe: Executable) -> list[Executable]:
    return [*exe.executables, *exe.event_handlers]


# True when some element lies one level below the deepest the loader reads (evaluated in C).
_TOO_DEEP = etree.XPath("boolean(" + "/*" * (MAX_XML_DEPTH + 1) + ")")


def _find_too_deep(root: etree._Element) -> None:
    """Raise for the first element nested deeper than MAX_XML_DEPTH (e.g. inside ObjectData)."""
    depth = 0
    for event, el in etree.iterwalk(root, events=("start", "end")):
        depth += 1 if event == "start" else -1
        if depth > MAX_XML_DEPTH:
            raise _too_deep(_owner(el), depth, el)


def _check_values(root: etree._Element) -> None:
    """Every text and start tag within MAX_XML_VALUE_BYTES (the start tags less _TAG_SLACK)."""
    for el in root.iter():
        for text in (el.text, el.tail):
            # A character is at most four UTF-8 bytes: only long texts need encoding to measure.
            if (
                text
                and len(text) * 4 > MAX_XML_VALUE_BYTES
                and len(text.encode()) > MAX_XML_VALUE_BYTES
            ):
                raise PackageWriteError(
                    f"the text of {_describe(el)} is {len(text.encode()):,} bytes, over the "
                    "loader's limit of "
                    f"{MAX_XML_VALUE_BYTES:,} bytes for one value; shorten it or keep the data in "
                    "a file."
                )
        _check_tag(el)


def _check_tag(el: etree._Element) -> None:
    # An escaped character is at most six bytes (&quot;): only large attribute sets need writing
    # out.
    if sum(len(v) for v in el.attrib.values()) * 6 <= MAX_XML_VALUE_BYTES - _TAG_SLACK:
        return
    bare = etree.Element(el.tag, el.attrib, nsmap=el.nsmap)
    size = len(etree.tostring(bare, encoding="UTF-8"))
    if size > MAX_XML_VALUE_BYTES - _TAG_SLACK:
        largest = max(el.attrib.items(), key=lambda item: len(item[1]))[0]
        raise PackageWriteError(
            f"the attributes of {_describe(el)} would take {size:,} bytes (most in "
            f"{_local(largest)}), over the "
            f"loader's limit of {MAX_XML_VALUE_BYTES - _TAG_SLACK:,} bytes for one element's "
            "attributes; "
            "shorten the value or keep the data in a file."
        )


def _too_deep(ref_id: str, depth: int, el: etree._Element | None = None) -> PackageWriteError:
    where = f"{_describe(el)}" if el is not None else f"the executable {_short(ref_id)}"
    return PackageWriteError(
        f"{where} would be nested {depth} elements deep in format 8, over the loader's limit of "
        f"{MAX_XML_DEPTH} levels; flatten the containers above it or move part of it into a child "
        "package."
    )


def _owner(el: etree._Element) -> str:
    for node in (el, *el.iterancestors()):
        ref: str | None = node.get(_D + "refId")
        if ref:
            return ref
    return "Package"


def _describe(el: etree._Element) -> str:
    ref = _owner(el)
    return f"the element {_local(el.tag)} of {_short(ref)}"


def _local(name: str) -> str:
    return "DTS:" + name[len(_D) :] if name.startswith(_D) else local_name(name)


def _short(ref_id: str) -> str:
    """A refId for a message: deep ones keep their start and end."""
    if len(ref_id) <= 120:
        return ref_id
    return f"{ref_id[:50].rstrip(_SEP)}{_SEP}...{_SEP}{ref_id[-60:].lstrip(_SEP)}"


# --------------------------------------------------------------------------- helpers


def _set(el: etree._Element, name: str, value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool):
        value = "True" if value else "False"
    el.set(_D + name, str(value))


def _sub(parent: etree._Element, local: str) -> etree._Element:
    return etree.SubElement(parent, _D + local)


def _property(
    parent: etree._Element, name: str, text: str | None, data_type: int | None = None
) -> etree._Element:
    prop = _sub(parent, "Property")
    if data_type is not None:
        prop.set(_D + "DataType", str(data_type))
    prop.set(_D + "Name", name)
    prop.text = text
    return prop


def _extra(el: etree._Element, properties: dict[str, str], skip: Iterable[str] = ()) -> None:
    """Settings the model has no field for: attributes, or Property children for odd names."""
    skipped = set(skip)
    for name, value in properties.items():
        if name in skipped:
            continue
        if _NCNAME.match(name):
            el.set(_D + name, value)
        else:
            _property(el, name, value)


def _expressions(el: etree._Element, expressions: list[PropertyExpression]) -> None:
    for expr in expressions:
        node = _sub(el, "PropertyExpression")
        node.set(_D + "Name", expr.name)
        node.text = expr.expression


_Item = TypeVar("_Item")


def _wrapped(
    el: etree._Element,
    wrapper: str,
    items: Sequence[_Item],
    write_one: Callable[[etree._Element, _Item], object],
) -> None:
    """``<DTS:wrapper>`` holding each of ``items`` as ``write_one`` writes it; nothing if empty."""
    if not items:
        return
    box = _sub(el, wrapper)
    for item in items:
        write_one(box, item)


# --------------------------------------------------------------------------- package and
# executables


def _package(root: etree._Element, pkg: Package) -> None:
    _set(root, "refId", pkg.ref_id)
    _set(root, "CreationDate", pkg.creation_date)
    _set(root, "CreationName", pkg.creation_name)
    _set(root, "CreatorComputerName", pkg.creator_computer_name)
    _set(root, "CreatorName", pkg.creator_name)
    _set(root, "ExecutableType", pkg.raw_type or None)
    _set(root, "ObjectName", pkg.name)
    _set(root, "ProtectionLevel", pkg.protection_level if pkg.protection_level != 1 else None)
    _set(
        root,
        "MaxConcurrentExecutables",
        pkg.max_concurrent_executables if pkg.max_concurrent_executables != -1 else None,
    )
    _set(root, "VersionGUID", pkg.version_guid)
    _set(root, "VersionMajor", pkg.version_major)
    _set(root, "VersionMinor", pkg.version_minor)
    _set(root, "VersionBuild", pkg.version_build)
    _set(root, "SaveCheckpoints", True if pkg.save_checkpoints else None)
    _set(root, "CheckpointFileName", pkg.checkpoint_file_name)
    _set(root, "CheckpointUsage", pkg.checkpoint_usage or None)
    _host_attributes(root, pkg)
    _property(root, "PackageFormatVersion", str(WRITTEN_FORMAT))
    _wrapped(root, "ConnectionManagers", pkg.connections, _connection)
    _wrapped(root, "Configurations", pkg.configurations, lambda box, node: node_to_xml(node, box))
    _wrapped(root, "LogProviders", pkg.log_providers, _log_provider)
    _wrapped(root, "PackageParameters", pkg.parameters, _parameter)
    _body(root, pkg)


def _executable(parent: etree._Element, exe: Executable) -> None:
    el = _sub(parent, "Executable")
    _set(el, "refId", exe.ref_id)
    if exe.kind is ExecutableKind.EVENT_HANDLER:
        _set(el, "CreationName", exe.properties.get("CreationName", exe.event or ""))
        _set(el, "EventName", exe.event)
        el.tag = _D + "EventHandler"
    else:
        _set(el, "CreationName", exe.properties.get("CreationName", exe.raw_type))
        _set(el, "ExecutableType", exe.raw_type)
        _set(el, "ObjectName", exe.name)
    _set(el, "InitExpression", exe.init_expression)
    _set(el, "EvalExpression", exe.eval_expression)
    _set(el, "AssignExpression", exe.assign_expression)
    _host_attributes(el, exe)
    _body(el, exe)


def _host_attributes(el: etree._Element, exe: Executable) -> None:
    _set(el, "DTSID", exe.dtsid)
    _set(el, "Description", exe.description)
    _set(el, "Disabled", True if exe.disabled else None)
    _set(el, "DisableEventHandlers", True if exe.disable_event_handlers else None)
    _set(el, "DelayValidation", True if exe.delay_validation else None)
    _set(el, "FailPackageOnFailure", True if exe.fail_package_on_failure else None)
    _set(el, "FailParentOnFailure", True if exe.fail_parent_on_failure else None)
    _set(el, "MaxErrorCount", exe.max_error_count if exe.max_error_count != 1 else None)
    _set(
        el,
        "ForceExecutionResult",
        exe.force_execution_result if exe.force_execution_result != -1 else None,
    )
    _set(el, "ForceExecValue", True if exe.force_execution_value else None)
    _set(el, "TransactionOption", exe.transaction_option if exe.transaction_option != 1 else None)
    _set(el, "ISOLevel", exe.isolation_level)
    _set(el, "LocaleID", exe.locale_id)
    _set(el, "LoggingMode", exe.logging_mode)
    _extra(el, exe.properties, skip=("CreationName",))
    if exe.forced_execution_value is not None or exe.forced_execution_value_type is not None:
        _property(el, "ExecValue", exe.forced_execution_value, exe.forced_execution_value_type)


def _body(el: etree._Element, exe: Executable) -> None:
    _wrapped(el, "Variables", exe.variables, _variable)
    if exe.logging_options is not None:
        node_to_xml(exe.logging_options, el)
    _expressions(el, exe.property_expressions)
    if exe.enumerator is not None:
        _enumerator(el, exe.enumerator, exe.ref_id)
    _wrapped(
        el,
        "ForEachVariableMappings",
        exe.variable_mappings,
        lambda box, m: _mapping(box, m, exe.ref_id),
    )
    _wrapped(el, "Executables", exe.executables, _executable)
    _wrapped(el, "PrecedenceConstraints", exe.precedence_constraints, _constraint)
    _wrapped(el, "EventHandlers", exe.event_handlers, _executable)
    if exe.object_data is not None:
        node_to_xml(exe.object_data, el)


def _constraint(parent: etree._Element, pc: PrecedenceConstraint) -> None:
    el = _sub(parent, "PrecedenceConstraint")
    _set(el, "refId", pc.ref_id)
    _set(el, "CreationName", "")
    _set(el, "DTSID", pc.dtsid)
    _set(el, "EvalOp", pc.eval_op if pc.eval_op != 2 else None)
    _set(el, "Expression", pc.expression)
    _set(el, "From", pc.from_ref)
    _set(el, "LogicalAnd", pc.logical_and)
    _set(el, "ObjectName", pc.name)
    _set(el, "To", pc.to_ref)
    _set(el, "Value", pc.value if pc.value != 0 else None)


# --------------------------------------------------------------------------- variables, parameters


def _variable(parent: etree._Element, var: Variable) -> None:
    el = _sub(parent, "Variable")
    _set(el, "refId", var.ref_id)
    _set(el, "CreationName", "")
    _set(el, "DTSID", var.dtsid)
    _set(el, "Description", var.description)
    _set(el, "EvaluateAsExpression", True if var.evaluate_as_expression else None)
    _set(el, "Expression", var.expression)
    _set(el, "IncludeInDebugDump", var.include_in_debug_dump)
    _set(el, "Namespace", var.namespace)
    _set(el, "ObjectName", var.name)
    _set(el, "RaiseChangedEvent", True if var.raise_changed_event else None)
    _set(el, "ReadOnly", True if var.read_only else None)
    _expressions(el, var.property_expressions)
    value = _sub(el, "VariableValue")
    _set(value, "DataType", var.data_type)
    _set(value, "DataSubType", var.data_subtype)
    if var.sensitive_unavailable:
        value.set("Sensitive", "1")
        return
    _variable_text(value, var)


def _variable_text(value_el: etree._Element, var: Variable) -> None:
    text = var.value
    if text is not None and var.data_subtype and text.lstrip().startswith("<"):
        # A serialised object was kept as XML text: put the elements back.
        try:
            holder = etree.fromstring(
                f"<holder>{text}</holder>".encode(),
                etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False),
            )
        except etree.XMLSyntaxError:
            holder = None
        if holder is not None and len(holder):
            value_el.extend(list(holder))
            return
    value_el.text = text


def _parameter(parent: etree._Element, param: Parameter) -> None:
    el = _sub(parent, "PackageParameter")
    _set(el, "CreationName", "")
    _set(el, "DataType", param.data_type_code)
    _set(el, "Description", param.description)
    _set(el, "DTSID", param.dtsid)
    _set(el, "ObjectName", param.name)
    _set(el, "Required", True if param.required else None)
    _set(el, "Sensitive", True if param.sensitive else None)
    if param.sensitive_unavailable:
        prop = _property(el, "ParameterValue", None, param.data_type_code)
        prop.set("Sensitive", "1")
    elif param.value is not None:
        _property(el, "ParameterValue", param.value, param.data_type_code)


# --------------------------------------------------------------------------- connections, logging


def _connection(parent: etree._Element, cm: ConnectionManagerSpec) -> None:
    el = _sub(parent, "ConnectionManager")
    _set(el, "refId", cm.ref_id)
    _set(el, "CreationName", cm.creation_name)
    _set(el, "DelayValidation", True if cm.delay_validation else None)
    _set(el, "Description", cm.description)
    _set(el, "DTSID", cm.dtsid)
    _set(el, "ObjectName", cm.name)
    inner_string, inner_sensitive = _inner_facts(cm.object_data)
    if (
        cm.object_data is not None
        and cm.connection_string is not None
        and cm.connection_string != inner_string
    ):
        _set(el, "ConnectionString", cm.connection_string)
    for name in cm.sensitive_unavailable:
        if name not in inner_sensitive:
            _property(el, name, None).set("Sensitive", "1")
    _expressions(el, cm.property_expressions)
    if cm.object_data is not None:
        node_to_xml(cm.object_data, el)
    elif cm.connection_string is not None or cm.properties:
        _synthesised_object_data(el, cm)


def _synthesised_object_data(el: etree._Element, cm: ConnectionManagerSpec) -> None:
    """A manager built in code has no stored ObjectData: write the shape SSIS saves, so the
    designer finds the connection string where it looks (SMTP's element has no namespace)."""
    data = _sub(el, "ObjectData")
    if cm.type_key == "SMTP":
        inner = etree.SubElement(data, "SmtpConnectionManager")
        for key, value in {"ConnectionString": cm.connection_string, **cm.properties}.items():
            if value is not None:
                inner.set(key, value)
        return
    inner = _sub(data, "ConnectionManager")
    _set(inner, "ConnectionString", cm.connection_string)
    for key, value in cm.properties.items():
        if _NCNAME.match(key):
            inner.set(_D + key, value)


def _inner_facts(object_data: XmlNode | None) -> tuple[str | None, set[str]]:
    """The connection string and sensitive names the loader will find inside ObjectData."""
    if object_data is None or not object_data.children:
        return None, set()
    inner = object_data.children[0]
    found = inner.get("ConnectionString")
    sensitive: set[str] = set()
    for child in inner.children:
        name = child.attrs.get(_D + "Name")
        if child.local_name == "EncryptedData":
            sensitive.add("Password")
        elif name is not None and (
            child.local_name == "Password" or marked_sensitive(child.attrs.get)
        ):
            sensitive.add(name)
        elif child.local_name == "Property" and name == "ConnectionString" and not child.children:
            found = child.text or ""
    return found, sensitive


def _log_provider(parent: etree._Element, lp: LogProvider) -> None:
    el = _sub(parent, "LogProvider")
    _set(el, "refId", lp.ref_id)
    _set(el, "ConfigString", lp.config_string)
    _set(el, "CreationName", lp.creation_name)
    _set(el, "Description", lp.description)
    _set(el, "DTSID", lp.dtsid)
    _set(el, "ObjectName", lp.name)
    if lp.object_data is not None:
        node_to_xml(lp.object_data, el)


def _enumerator(parent: etree._Element, enum: ForEachEnumerator, container_ref: str) -> None:
    el = _sub(parent, "ForEachEnumerator")
    if enum.ref_id != f"{container_ref}.ForEachEnumerator":
        _set(el, "refId", enum.ref_id)
    _set(el, "CreationName", enum.raw_type)
    _set(el, "DTSID", enum.dtsid)
    _set(el, "ObjectName", enum.name)
    _expressions(el, enum.property_expressions)
    if enum.object_data is not None:
        node_to_xml(enum.object_data, el)


def _mapping(parent: etree._Element, mapping: ForEachVariableMapping, container_ref: str) -> None:
    el = _sub(parent, "ForEachVariableMapping")
    name = (mapping.ref_id or "").rpartition(".ForEachVariableMappings[")[2][:-1]
    if mapping.ref_id != f"{container_ref}.ForEachVariableMappings[{name}]":
        _set(el, "refId", mapping.ref_id)
    _set(el, "CreationName", "")
    _set(el, "ObjectName", name)
    _set(el, "ValueIndex", mapping.value_index)
    _set(el, "VariableName", mapping.variable)


def _indent(el: etree._Element, level: int) -> None:
    """Two-space indentation of the DTS structure; data-bearing subtrees are left untouched."""
    if len(el) == 0 or el.tag in _NO_INDENT:
        return
    pad = "\n" + "  " * (level + 1)
    if not el.text or not el.text.strip():
        el.text = pad
    child = None
    for child in el:
        _indent(child, level + 1)
        child.tail = pad
    if child is not None:
        child.tail = "\n" + "  " * level
