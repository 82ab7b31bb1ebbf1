"""``.dtsx`` files (formats 2, 3, 6, 8) and project files → the package model.

One reader serves both persistence styles. Every DTS element's settings are read as one mapping
that merges its ``DTS:`` attributes (2012+) with its ``<DTS:Property DTS:Name=...>`` children
(2005/2008), so the only style-specific code is precedence-constraint endpoints (refId paths
versus ``IDREF`` GUIDs) and refIds, which are synthesised in the 2012+ form when a file has none.

Choices a reader of the model relies on:

* ``Executable.object_data`` / ``ConnectionManagerSpec.object_data`` /
  ``ForEachEnumerator.object_data`` are the ``<DTS:ObjectData>`` element itself; its first child is
  the task's data element (``SendMailTask:SendMailTaskData``), as ``Task.properties_from_node``
  expects. Whitespace-only text of elements that have children (indentation) is dropped.
* Empty descriptions and expressions load as None; other values are kept as text.
* Values marked ``Sensitive`` or encrypted never enter the model as plain values: their names go
  to ``sensitive_unavailable``.

The parser is hardened: no DTD, no entities, no network, a size limit and libxml2's depth and
text-node limits. Nothing here opens sockets, looks up plugins or evaluates expressions.

Speed code, each piece beside its plain reference (``fast=False`` reads through the
references only; tests/engine/test_loader_reference.py proves both readings give the same model):

* models built without validation by ``_Maker`` (``_TRUSTED``); reference: pydantic's strict
  validation (``_VALIDATED``);
* ``_PackageReader._plain_task`` for a task holding only ObjectData; reference:
  ``_executable_fields``;
* ``_PackageReader._attribute_constraint`` for a 2012+ constraint; reference: ``_constraint``;
* the collector paused while the model is built (``engine/gcpause.py`` says why).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from pathlib import Path
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from dtsx.engine.errors import PackageLoadError, PackageNotFoundError
from dtsx.engine.gcpause import paused_gc
from dtsx.engine.files import NotARegularFile, open_regular
from dtsx.engine.model import (
    MAX_PACKAGE_BYTES,
    MAX_XML_DEPTH,
    MAX_XML_VALUE_BYTES,
    DTS_NS,
    ConfiguredValue,
    PROTECTION_LEVELS,
    TYPECODE_TO_DOTNET,
    VARTYPE_TO_DOTNET,
    ConnectionManagerSpec,
    LOCAL_NAMES,
    Executable,
    ExecutableKind,
    ForEachEnumerator,
    ForEachVariableMapping,
    LogProvider,
    Package,
    Parameter,
    PrecedenceConstraint,
    PropertyExpression,
    SourceLocation,
    Variable,
    XmlNode,
    local_name,
    marked_sensitive,
    ssis_flag,
)
from dtsx.engine.protection import XMLENC_NS, decrypt_payload, is_password_encrypted
from dtsx.engine.references import guid_key
from dtsx.engine.registry import normalise_type
from lxml import etree
from pydantic import BaseModel

__all__ = [
    "DTS_NS",
    "MAX_PACKAGE_BYTES",
    "SSIS_NS",
    "SUPPORTED_FORMATS",
    "load",
    "load_bytes",
    "load_configuration_file",
    "load_project",
    "parse_xml",
    "xml_to_node",
]

SSIS_NS = "www.microsoft.com/SqlServer/SSIS"
SUPPORTED_FORMATS = frozenset({2, 3, 6, 8})

_D = "{" + DTS_NS + "}"
_DLEN = len(_D)
_S = "{" + SSIS_NS + "}"
_PROPERTY = _D + "Property"
_OBJECT_DATA = _D + "ObjectData"
_VARIABLES = _D + "Variables"
_NAME = _D + "Name"
# The attributes of a 2012+ precedence constraint that the model keeps.
_PC_OBJECT_NAME, _PC_REF_ID, _PC_FROM, _PC_TO = (
    _D + n for n in ("ObjectName", "refId", "From", "To")
)
_PC_VALUE, _PC_EVAL_OP, _PC_LOGICAL_AND = (_D + n for n in ("Value", "EvalOp", "LogicalAnd"))
_PC_DTSID, _PC_EXPRESSION = _D + "DTSID", _D + "Expression"
_CONTAINER_KINDS = {
    "STOCK:SEQUENCE": ExecutableKind.SEQUENCE,
    "STOCK:FORLOOP": ExecutableKind.FOR_LOOP,
    "STOCK:FOREACHLOOP": ExecutableKind.FOREACH_LOOP,
}
_PROLOGUE_DTD = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_FIRST_ELEMENT = re.compile(rb"<[A-Za-z_]")


def _parser() -> etree.XMLParser:
    # A fresh parser per call: lxml parsers are not thread-safe.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        dtd_validation=False,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


# --------------------------------------------------------------------------- speed code: models
# built without validation
#
# The reader makes every model object through a _Builders: _TRUSTED (below) builds it from the
# values the reader has already typed, without validation; _VALIDATED is the plain reference, in
# which pydantic validates every object strictly (a value of the wrong type fails instead of being
# converted). Measured on bench/load.py's 10,000-task package (CPU time, best of 8 to 12, the
# other fast paths on, four runs): with model_validate in _TRUSTED's place load takes about a third
# longer (+31% to +36%; 407 -> 534 ms in one run), which is why _TRUSTED exists.
# tests/engine/test_loader_reference.py loads every corpus, sample and test package both ways (and
# through the plain reference of each fast path) and compares the models object by object.

_M = TypeVar("_M", bound=BaseModel)


class _Maker(Generic[_M]):
    """Builds an instance of one model class from correctly typed values, leaving what
    ``model_construct`` leaves, but with the defaults worked out once per class (pydantic's
    ``model_construct`` inspects every default factory's signature on every call, which dominated
    load time)."""

    __slots__ = ("all_fields", "cls", "count", "factories", "template")

    def __init__(self, cls: type[_M]) -> None:
        fields = cls.__pydantic_fields__
        self.cls = cls
        # Field order is kept (the template holds every field), so dumps and reprs look as usual.
        self.template = {name: info.default for name, info in fields.items()}
        self.factories = [(name, info) for name, info in fields.items() if info.default_factory]
        self.count = len(fields)
        # One "fields set" naming every field, shared by every instance. Sharing is safe because
        # it already holds every field: pydantic only ever adds to it (on assignment, a no-op
        # here; extra fields are forbidden) and copies it before changing a copy's set.
        self.all_fields = set(fields)

    def __call__(self, values: dict[str, Any]) -> _M:
        """The instance holding ``values``; missing fields get their defaults. Callers that give
        every field give them in field order, and the instance keeps their dict.

        Every field counts as set (``model_fields_set``), defaults included: the loader states
        each object whole. A set of the given names per object would cost about 1.2 KB for each
        task of a package (an 18-name set), for bookkeeping nothing reads."""
        if len(values) != self.count:
            values = self._with_defaults(values)
        obj = _new(self.cls)
        _set_dict(obj, values)
        _set_fields_set(obj, self.all_fields)
        _set_extra(obj, None)
        _set_private(obj, None)
        return obj

    def _with_defaults(self, values: dict[str, Any]) -> dict[str, Any]:
        data = self.template.copy()
        for name, info in self.factories:
            if name not in values:
                data[name] = info.get_default(call_default_factory=True)
        data.update(values)
        return data


def _slot_setter(name: str) -> Callable[[object, object], None]:
    """The setter of one of BaseModel's slots, which every model inherits: calling it skips the
    attribute lookup that ``object.__setattr__`` does by name (a quarter of a node's cost)."""
    setter: Callable[[object, object], None] = BaseModel.__dict__[name].__set__
    return setter


_new = object.__new__
_set_dict = _slot_setter("__dict__")
_set_fields_set = _slot_setter("__pydantic_fields_set__")
_set_extra = _slot_setter("__pydantic_extra__")
_set_private = _slot_setter("__pydantic_private__")


def _validator(cls: type[_M]) -> Callable[[dict[str, Any]], _M]:
    """The plain reference of ``_Maker(cls)``: pydantic's strict validation."""

    fields = cls.model_fields

    def validated(values: dict[str, Any]) -> _M:
        # Whole, as _Maker states every object: the missing fields given their defaults.
        missing = {
            name: info.get_default(call_default_factory=True)
            for name, info in fields.items()
            if name not in values
        }
        return cls.model_validate({**missing, **values}, strict=True)

    return validated


@dataclass(frozen=True, slots=True)
class _Builders:
    """How the reader makes each kind of model object from a dict of its fields."""

    location: Callable[[dict[str, Any]], SourceLocation]
    node: Callable[[dict[str, Any]], XmlNode]
    expression: Callable[[dict[str, Any]], PropertyExpression]
    executable: Callable[[dict[str, Any]], Executable]
    package: Callable[[dict[str, Any]], Package]
    constraint: Callable[[dict[str, Any]], PrecedenceConstraint]
    variable: Callable[[dict[str, Any]], Variable]
    parameter: Callable[[dict[str, Any]], Parameter]
    connection: Callable[[dict[str, Any]], ConnectionManagerSpec]
    log_provider: Callable[[dict[str, Any]], LogProvider]
    enumerator: Callable[[dict[str, Any]], ForEachEnumerator]
    mapping: Callable[[dict[str, Any]], ForEachVariableMapping]


_TRUSTED = _Builders(
    location=_Maker(SourceLocation),
    node=_Maker(XmlNode),
    expression=_Maker(PropertyExpression),
    executable=_Maker(Executable),
    package=_Maker(Package),
    constraint=_Maker(PrecedenceConstraint),
    variable=_Maker(Variable),
    parameter=_Maker(Parameter),
    connection=_Maker(ConnectionManagerSpec),
    log_provider=_Maker(LogProvider),
    enumerator=_Maker(ForEachEnumerator),
    mapping=_Maker(ForEachVariableMapping),
)
_VALIDATED = _Builders(
    location=_validator(SourceLocation),
    node=_validator(XmlNode),
    expression=_validator(PropertyExpression),
    executable=_validator(Executable),
    package=_validator(Package),
    constraint=_validator(PrecedenceConstraint),
    variable=_validator(Variable),
    parameter=_validator(Parameter),
    connection=_validator(ConnectionManagerSpec),
    log_provider=_validator(LogProvider),
    enumerator=_validator(ForEachEnumerator),
    mapping=_validator(ForEachVariableMapping),
)


# --------------------------------------------------------------------------- parsing


def parse_xml(data: bytes, file: str) -> etree._Element:
    """Parse untrusted XML: any DOCTYPE/ENTITY is refused, entities are never expanded."""
    if len(data) > MAX_PACKAGE_BYTES:
        raise PackageLoadError(
            f"the file is {len(data):,} bytes, over dtsx's limit of "
            f"{MAX_PACKAGE_BYTES // (1024 * 1024)} MiB; "
            "split the package or check that this is really a .dtsx file",
            file=file,
        )
    _refuse_dtd(data, file)
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise _syntax_error(exc, file) from None
    if root is None:
        raise PackageLoadError("is empty: it holds no XML element", file=file, line=1)
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise PackageLoadError(
            "declares a DOCTYPE; packages never do, and dtsx refuses DTDs and entity declarations "
            "(they can read local files or expand without bound)",
            file=file,
            line=1,
        )
    return root


def _syntax_error(exc: etree.XMLSyntaxError, file: str) -> PackageLoadError:
    """libxml2's limits (depth 256, 10 MB per text or attribute value) are reported as limits,
    not as damage, so the user knows the file was refused on purpose."""
    line = exc.lineno if exc.lineno else None
    detail = " ".join(str(exc.msg).split())
    low = detail.lower()
    if "depth" in low:
        return PackageLoadError(
            f"nests elements deeper than dtsx's limit of {MAX_XML_DEPTH} levels ({detail}); real "
            "packages never do, "
            "so the file was refused",
            file=file,
            line=line,
        )
    if "resource limit" in low or "huge" in low:
        return PackageLoadError(
            "holds a single text or attribute value over dtsx's "
            f"{MAX_XML_VALUE_BYTES // 1_000_000} MB limit ({detail}); the file was refused "
            "rather than loaded without bound",
            file=file,
            line=line,
        )
    return PackageLoadError(
        f"is not well-formed XML ({detail}); the file is truncated or damaged, or not a package: "
        "restore it from source control or re-save it from the designer",
        file=file,
        line=line,
    )


def _refuse_dtd(data: bytes, file: str) -> None:
    """A DOCTYPE can only precede the root element, so only the prologue is searched."""
    first = _FIRST_ELEMENT.search(data)
    end = first.start() if first else len(data)
    found = _PROLOGUE_DTD.search(data, 0, end)
    if found:
        line = data.count(b"\n", 0, found.start()) + 1
        raise PackageLoadError(
            "declares a DOCTYPE or ENTITY; packages never do, and dtsx refuses DTDs and entity "
            "declarations (they can read local files or expand without bound)",
            file=file,
            line=line,
        )


def _read_file(path: Path, what: str = "package") -> bytes:
    """The bytes of a regular file of at most MAX_PACKAGE_BYTES: a FIFO, a device (``/dev/zero``)
    or a directory is refused before it is read, and a file that grows past the limit while it
    is read is refused too."""
    file = str(path)
    try:
        fd = open_regular(file)
    except FileNotFoundError:
        raise PackageNotFoundError(f"no such {what} file; check the path", file=file) from None
    except NotARegularFile as exc:
        raise PackageLoadError(f"is {exc.kind}, not a {what} file", file=file) from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise PackageLoadError(
            f"cannot be read: {getattr(exc, 'strerror', None) or exc}", file=file
        ) from None
    with open(fd, "rb", closefd=True) as stream:
        size = os.fstat(fd).st_size
        try:
            # Read what fstat says (the read allocates its whole size up front), then whatever the
            # file grew by since, still no further than the limit.
            data = b"" if size > MAX_PACKAGE_BYTES else stream.read(size + 1)
            if len(data) > size:
                data += stream.read(MAX_PACKAGE_BYTES + 1 - len(data))
        except OSError as exc:
            raise PackageLoadError(f"cannot be read: {exc.strerror}", file=file) from None
    if size > MAX_PACKAGE_BYTES or len(data) > MAX_PACKAGE_BYTES:
        raise PackageLoadError(
            f"the file is {max(size, len(data)):,} bytes or more, over dtsx's limit of "
            f"{MAX_PACKAGE_BYTES // (1024 * 1024)} MiB; split the package or check that this is "
            "really a .dtsx file",
            file=file,
        )
    return data


# --------------------------------------------------------------------------- public API


def load(
    path: str | os.PathLike[str],
    *,
    project_dir: str | os.PathLike[str] | None = None,
    password: str | None = None,
) -> Package:
    """Load a ``.dtsx`` file (format 2, 3, 6 or 8) into the model.

    Project connection managers (``*.conmgr``) and parameters (``*Project.params``) are read from
    ``project_dir`` if given, else from the package's own folder. ``password`` decrypts a package
    saved with EncryptAllWithPassword or EncryptSensitiveWithPassword (``dtexec /Decrypt``).
    """
    file_path = Path(path)
    data = _read_file(file_path)
    folder = Path(project_dir) if project_dir is not None else file_path.parent
    if project_dir is not None and not folder.is_dir():
        raise PackageNotFoundError("no such project folder; check --project-dir", file=str(folder))
    return load_bytes(data, file=str(path), project_dir=folder, password=password)


def load_bytes(
    data: bytes,
    *,
    file: str = "<bytes>",
    project_dir: str | os.PathLike[str] | None = None,
    password: str | None = None,
) -> Package:
    """Load a package from bytes; ``file`` is the name used in locations and errors."""
    return _load_bytes(data, file, project_dir, password, fast=True)


def _load_bytes(
    data: bytes,
    file: str,
    project_dir: str | os.PathLike[str] | None,
    password: str | None,
    *,
    fast: bool,
) -> Package:
    """``load_bytes``; ``fast=False`` reads through the plain reference of every fast path (the
    equality tests compare both)."""
    root = parse_xml(data, file)
    if password is not None:
        root = _decrypted(root, password, file)
    _check_root(root, file)
    with paused_gc():  # engine/gcpause.py says why
        package = _PackageReader(file, fast=fast).package(root)
    package.path = file
    if project_dir is not None:
        conns, params = _load_project(Path(project_dir), password, fast=fast)
        package.project_connections = conns
        package.project_parameters = params
    return package


def load_configuration_file(path: str | os.PathLike[str]) -> list[ConfiguredValue]:
    """The values of a ``.dtsConfig`` file: an XML package configuration, or ``--config-file``.

    Each ``<Configuration ConfiguredType="Property" Path="\\Package...">`` gives the property
    path and its ``<ConfiguredValue>``; anything else in the file is a load error at its line.
    """
    file = str(path)
    root = parse_xml(_read_file(Path(path), "configuration"), file)
    if etree.QName(root).localname != "DTSConfiguration":
        raise PackageLoadError(
            f"the root element is <{etree.QName(root).localname}>, not <DTSConfiguration>: "
            "this is not a package configuration file",
            file=file,
            line=root.sourceline,
        )
    return [
        _configured_value(el, file)
        for el in root
        if el.tag.__class__ is str and etree.QName(el).localname == "Configuration"
    ]


def _configured_value(el: etree._Element, file: str) -> ConfiguredValue:
    kind = el.get("ConfiguredType") or "Property"
    target = (el.get("Path") or "").strip()
    if kind.lower() != "property" or not target.startswith("\\"):
        raise PackageLoadError(
            f'a <Configuration> needs ConfiguredType="Property" and a Path such as '
            f"\\Package.Variables[User::X].Properties[Value] (found {kind!r}, {target!r})",
            file=file,
            line=el.sourceline,
        )
    value_el = next(
        (c for c in el if c.tag.__class__ is str and etree.QName(c).localname == "ConfiguredValue"),
        None,
    )
    return ConfiguredValue(
        path=target,
        value=(value_el.text or "") if value_el is not None else "",
        value_type=el.get("ValueType") or "String",
        location=SourceLocation(file=file, line=el.sourceline),
    )


def load_project(
    folder: str | os.PathLike[str],
    *,
    password: str | None = None,
) -> tuple[list[ConnectionManagerSpec], list[Parameter]]:
    """The project connection managers (``*.conmgr``) and parameters (``*.params``) in ``folder``;
    ``password`` decrypts their sensitive values (a project saved with
    EncryptSensitiveWithPassword)."""
    return _load_project(Path(folder), password, fast=True)


def _load_project(
    base: Path, password: str | None, *, fast: bool
) -> tuple[list[ConnectionManagerSpec], list[Parameter]]:
    conns: list[ConnectionManagerSpec] = []
    params: list[Parameter] = []
    if not base.is_dir():
        return conns, params
    for item in sorted(base.glob("*.conmgr")):
        conns.append(_load_conmgr(item, password, fast))
    for item in sorted(base.glob("*.params")):
        params.extend(_load_params(item, password, fast))
    return conns, params


def xml_to_node(el: etree._Element, parent_nsmap: dict[str | None, str] | None = None) -> XmlNode:
    """An lxml element as an XmlNode (Clark tags, prefixes declared here, no comments)."""
    return _xml_node(el, parent_nsmap, _TRUSTED.node)


# Speed: the namespaces in scope where a kept subtree starts (a task's ObjectData) are the same for
# every task of a kind, so those nodes share one copy of each map (about 580 bytes a task). Nothing
# writes a node's nsmap; the writer only reads it. Bounded: a file with more distinct maps than
# this keeps its own copies of the rest.
_NSMAPS: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
_NSMAPS_LIMIT = 1024


def _shared_nsmap(nsmap: dict[str | None, str]) -> dict[str, str]:
    items = tuple([((k or ""), v) for k, v in nsmap.items()])
    found = _NSMAPS.get(items)
    if found is None:
        found = dict(items)
        if len(_NSMAPS) < _NSMAPS_LIMIT:
            _NSMAPS[items] = found
    return found


# Speed: a node's tag and attribute keys are Clark names that repeat on every element of a kind
# (about 90 bytes each, made anew by lxml on every read); nodes keep one shared copy of each.
_intern = sys.intern


def _xml_node(
    el: etree._Element,
    parent_nsmap: dict[str | None, str] | None,
    make: Callable[[dict[str, Any]], XmlNode],
) -> XmlNode:
    nsmap = el.nsmap  # a new dict on every call
    if parent_nsmap is None:
        declared = _shared_nsmap(nsmap)
    elif nsmap == parent_nsmap:
        declared = {}  # the common case: nothing declared here
    else:
        declared = {(k or ""): v for k, v in nsmap.items() if parent_nsmap.get(k) != v}
    text = el.text
    children: list[XmlNode] = []
    if len(el):
        for child in el:  # a loop, not a comprehension: most nodes have one child or none
            if child.tag.__class__ is str:
                children.append(_xml_node(child, nsmap, make))
        if children and text is not None and not text.strip():
            text = None
    return make(
        {
            "tag": _intern(el.tag),
            "attrs": dict(zip(map(_intern, el.keys()), el.values(), strict=True)),
            "text": text,
            "children": children,
            "nsmap": declared,
            "line": el.sourceline,
        }
    )


# --------------------------------------------------------------------------- decryption


_ENCRYPTED_DATA = "{" + XMLENC_NS + "}EncryptedData"
_CIPHER_VALUE = "{" + XMLENC_NS + "}CipherValue"


def _decrypted(
    root: etree._Element, password: str, file: str, produced: set[etree._Element] | None = None
) -> etree._Element:
    """``root`` with every password-encrypted element replaced by what it stands for: the whole
    package under EncryptAllWithPassword, sensitive parts under EncryptSensitiveWithPassword
    (an ``EncryptedData`` element, or an element whose ``Salt`` and ``IV`` attributes say that
    its text is the cipher of the element it stands for, as project files hold them).
    Elements encrypted with a Windows user key are left alone (they load as unavailable).
    ``produced`` collects the elements decryption made (holding them keeps their identity), so
    that a reader can keep a sensitive value that came out of decryption."""
    if root.tag == _ENCRYPTED_DATA and is_password_encrypted(dict(root.attrib)):
        root = parse_xml(_plain_text(root, password, file).encode("utf-8"), file)
    for el in list(root.iter()):
        parent = el.getparent()
        if (
            parent is None
            or el.tag.__class__ is not str
            or not is_password_encrypted(dict(el.attrib))
        ):
            continue
        if el.tag != _ENCRYPTED_DATA and (len(el) or not (el.text or "").strip()):
            continue  # a Salt attribute on something that holds no cipher text
        replacement = _fragment(_plain_text(el, password, file), parent, file)
        for node in replacement.iter():  # lines of the decrypted text, counted from the element's
            node.sourceline = (el.sourceline or 1) + (node.sourceline or 1) - 1
        if produced is not None:
            produced.add(replacement)
        replacement.tail = el.tail
        parent.replace(el, replacement)
    return root


def _plain_text(el: etree._Element, password: str, file: str) -> str:
    if el.tag != _ENCRYPTED_DATA:
        return decrypt_payload(
            dict(el.attrib), el.text or "", password, file=file, line=el.sourceline
        )
    cipher = el.find(".//" + _CIPHER_VALUE)
    return decrypt_payload(
        dict(el.attrib),
        cipher.text or "" if cipher is not None else "",
        password,
        file=file,
        line=el.sourceline,
    )


def _fragment(text: str, parent: etree._Element, file: str) -> etree._Element:
    """Parse a decrypted element in the namespaces in scope where it was (it uses their
    prefixes)."""
    # Imported here: xml.sax pulls in urllib and http.client, which only decryption needs.
    from xml.sax.saxutils import quoteattr

    declarations = " ".join(
        f"xmlns:{prefix}={quoteattr(uri)}" if prefix else f"xmlns={quoteattr(uri)}"
        for prefix, uri in parent.nsmap.items()
    )
    wrapper = parse_xml(f"<dtsx-decrypted {declarations}>{text}</dtsx-decrypted>".encode(), file)
    children = [child for child in wrapper if child.tag.__class__ is str]
    if len(children) != 1:
        raise PackageLoadError(
            "a decrypted element does not hold exactly one XML element; the package is damaged",
            file=file,
            line=parent.sourceline,
        )
    return children[0]


# --------------------------------------------------------------------------- root checks


def _check_root(root: etree._Element, file: str) -> None:
    if (
        root.tag == "{" + XMLENC_NS + "}EncryptedData"
        or etree.QName(root).localname == "EncryptedData"
    ):
        # Password-encrypted packages carry the key-derivation Salt; user-key (DPAPI) ones do not.
        if is_password_encrypted(dict(root.attrib)):
            what = (
                "the whole package is encrypted with a password (ProtectionLevel "
                "EncryptAllWithPassword); "
                "give it with --decrypt-env VARIABLE or --decrypt-file FILE"
            )
        else:
            what = (
                f"the whole package is encrypted with a Windows user key (ProtectionLevel "
                f"{PROTECTION_LEVELS[4]}), which only that user on that machine can decrypt; "
                "re-save it "
                "with ProtectionLevel EncryptAllWithPassword or DontSaveSensitive"
            )
        raise PackageLoadError(what, file=file, line=root.sourceline)
    if root.tag != _D + "Executable":
        raise PackageLoadError(
            f"the root element is <{etree.QName(root).localname}> in namespace "
            f"{etree.QName(root).namespace or '(none)'!r}, not <DTS:Executable> in {DTS_NS!r}: "
            "this is not a .dtsx package",
            file=file,
            line=root.sourceline,
        )


# --------------------------------------------------------------------------- property reading


_EMPTY_MAP: Mapping[str, Any] = MappingProxyType({})
_EMPTY_SET: AbstractSet[str] = frozenset()


class _Props:
    """The settings of one DTS element: attributes and ``<DTS:Property>`` children, merged.

    ``values`` maps local names to text; ``types`` holds a Property's DTS:DataType;
    ``sensitive`` names values marked Sensitive/Encrypted; ``rest`` is every other child element.
    """

    __slots__ = ("lines", "rest", "sensitive", "types", "values")

    def __init__(self, el: etree._Element) -> None:
        # Attributes outside the DTS namespace are not settings.
        values: dict[str, str] = {
            LOCAL_NAMES[key]: value for key, value in el.items() if key[:_DLEN] == _D
        }
        # Shared empty (read-only) collections unless <DTS:Property> children need real ones:
        # 2012+ elements have none, and these are built for every element.
        self.types: Mapping[str, str] = _EMPTY_MAP
        self.sensitive: AbstractSet[str] = _EMPTY_SET
        self.lines: Mapping[str, int] = _EMPTY_MAP
        rest: list[etree._Element] = []
        properties: list[etree._Element] = []
        if len(el):
            for child in el:
                tag = child.tag
                if tag == _PROPERTY:
                    properties.append(child)
                elif tag.__class__ is str:
                    rest.append(child)
        if properties:
            self._properties(properties, values)
        self.values = values
        self.rest = rest

    def _properties(self, properties: list[etree._Element], values: dict[str, str]) -> None:
        """The ``<DTS:Property>`` children (the 2005/2008 style), merged into ``values``."""
        types: dict[str, str] = {}
        sensitive: set[str] = set()
        lines: dict[str, int] = {}
        for child in properties:
            name = child.get(_NAME)
            if name is None:
                continue
            if marked_sensitive(child.get):
                sensitive.add(name)
                continue
            values[name] = child.text or ""
            lines[name] = child.sourceline
            dtype = child.get(_D + "DataType")
            if dtype is not None:
                types[name] = dtype
        self.types, self.sensitive, self.lines = types, sensitive, lines

    def pop(self, name: str, default: str | None = None) -> str | None:
        return self.values.pop(name, default)

    def pop_text(self, *names: str) -> str | None:
        """The first present of ``names`` (aliases), empty text as None."""
        found: str | None = None
        for name in names:
            value = self.values.pop(name, None)
            if found is None and value is not None:
                found = value
        return found or None


class _ElementReader:
    """What every reader of a file's elements shares: the file name for locations and errors,
    how model objects are made, and the readings of settings and property expressions.

    ``fast=False`` reads through the plain reference of every fast path: models validated by
    pydantic instead of _TRUSTED, every task through ``_executable_fields`` rather than
    ``_plain_task``, every constraint through ``_constraint`` rather than ``_attribute_constraint``.
    It exists for the tests that prove both readings give the same model.
    """

    def __init__(self, file: str, *, fast: bool = True) -> None:
        self.file = file
        self.fast = fast
        self.make = _TRUSTED if fast else _VALIDATED

    def loc(self, el: etree._Element) -> SourceLocation:
        return self.make.location({"file": self.file, "line": el.sourceline})

    def node(self, el: etree._Element | None) -> XmlNode | None:
        """The element kept whole as an XmlNode (None for no element)."""
        return None if el is None else _xml_node(el, None, self.make.node)

    def error(self, el: etree._Element, message: str) -> PackageLoadError:
        return PackageLoadError(message, file=self.file, line=el.sourceline)

    def boolean(
        self, el: etree._Element, props: _Props, name: str, default: bool, *aliases: str
    ) -> bool:
        raw = props.values.pop(name, None)
        for key in aliases:
            value = props.values.pop(key, None)
            if raw is None and value is not None:
                raw = value
        return default if raw is None else self._as_bool(el, name, raw)

    def integer(
        self, el: etree._Element, props: _Props, name: str, default: int | None, *aliases: str
    ) -> int | None:
        raw = props.values.pop(name, None)
        for key in aliases:
            value = props.values.pop(key, None)
            if raw is None and value is not None:
                raw = value
        if raw is None or not raw.strip():
            return default
        try:
            return int(raw)
        except ValueError:
            raise self.error(el, f"{name}={raw!r} is not an integer: fix the value") from None

    def _as_bool(self, el: etree._Element, name: str, raw: str) -> bool:
        flag = ssis_flag(raw)
        if flag is None:
            raise self.error(
                el, f"{name}={raw!r} is not a boolean (expected True/False or -1/0): fix the value"
            )
        return flag

    def _as_int(self, el: etree._Element, name: str, raw: str, default: int | None) -> int | None:
        try:
            return int(raw)  # int() accepts surrounding whitespace, as SSIS does
        except ValueError:
            if not raw.strip():
                return default
            raise self.error(el, f"{name}={raw!r} is not an integer: fix the value") from None

    def expressions(self, elements: Iterable[etree._Element]) -> list[PropertyExpression]:
        found = []
        for el in elements:
            if el.tag == _D + "PropertyExpression":
                found.append(
                    self.make.expression(
                        {
                            "name": el.get(_NAME) or "",
                            "expression": el.text or "",
                            "location": self.loc(el),
                        }
                    )
                )
        return found


class _PartReader(_ElementReader):
    """Reads the parts a container or a project holds: variables, package and project
    parameters, connection managers, log providers, a Foreach Loop's enumerator and mappings."""

    def variable(self, el: etree._Element, scope: str) -> Variable:
        props = _Props(el)
        namespace = props.pop("Namespace") or "User"
        name = props.pop("ObjectName") or ""
        ref = props.pop("refId") or f"{scope}.Variables[{namespace}::{name}]"
        props.pop("CreationName")
        var = self.make.variable(
            {
                "ref_id": ref,
                "namespace": namespace,
                "name": name,
                "dtsid": props.pop("DTSID"),
                "description": props.pop_text("Description"),
                "evaluate_as_expression": self.boolean(el, props, "EvaluateAsExpression", False),
                "expression": props.pop_text("Expression"),
                "read_only": self.boolean(el, props, "ReadOnly", False),
                "raise_changed_event": self.boolean(el, props, "RaiseChangedEvent", False),
                "include_in_debug_dump": props.pop("IncludeInDebugDump"),
                "property_expressions": self.expressions(props.rest),
                "scope": scope,
                "location": self.loc(el),
            }
        )
        self._variable_value(var, el, props)
        return var

    def _variable_value(self, var: Variable, el: etree._Element, props: _Props) -> None:
        value_el = next((c for c in props.rest if c.tag == _D + "VariableValue"), None)
        var.data_type, var.data_subtype, var.value, var.sensitive_unavailable = 8, None, None, False
        if value_el is None:
            var.sensitive_unavailable = bool(props.sensitive)
            return
        dtype = value_el.get(_D + "DataType")
        if dtype is not None:
            try:
                var.data_type = int(dtype)
            except ValueError:
                raise self.error(
                    value_el, f"DataType {dtype!r} is not a type code: fix the value"
                ) from None
        var.data_subtype = value_el.get(_D + "DataSubType")
        encrypted = any(
            etree.QName(c).localname == "EncryptedData" for c in value_el if c.tag.__class__ is str
        )
        if marked_sensitive(value_el.get) or encrypted:
            var.sensitive_unavailable = True
            return
        kids = [c for c in value_el if c.tag.__class__ is str]
        if kids:
            # A serialised object (SOAP envelope) is kept as its XML text.
            var.value = "".join(
                etree.tostring(c, encoding="unicode", with_tail=False) for c in kids
            )
        else:
            var.value = value_el.text or ""

    def parameter(self, el: etree._Element) -> Parameter:
        props = _Props(el)
        name = props.pop("ObjectName") or ""
        code = self.integer(el, props, "DataType", 8) or 0
        sensitive = self.boolean(el, props, "Sensitive", False)
        value = props.pop("ParameterValue")
        unavailable = "ParameterValue" in props.sensitive or (sensitive and value is None)
        return self.make.parameter(
            {
                "name": name,
                "scope": "Package",
                "dtsid": props.pop("DTSID"),
                "dotnet_type": VARTYPE_TO_DOTNET.get(code, "Object"),
                "data_type_code": code,
                "value": None if unavailable else value,
                "sensitive": sensitive,
                "sensitive_unavailable": unavailable,
                "required": self.boolean(el, props, "Required", False),
                "description": props.pop_text("Description"),
                "location": self.loc(el),
            }
        )

    # -- connection managers, log providers

    def connection(self, el: etree._Element, scope: str = "Package") -> ConnectionManagerSpec:
        props = _Props(el)
        name = props.pop("ObjectName") or ""
        default_ref = f"{'Project' if scope == 'Project' else 'Package'}.ConnectionManagers[{name}]"
        creation = props.pop("CreationName") or ""
        spec = self.make.connection(
            {
                "ref_id": props.pop("refId") or default_ref,
                "name": name,
                "dtsid": props.pop("DTSID"),
                "creation_name": creation,
                "type_key": creation.strip().upper(),
                "description": props.pop_text("Description"),
                "connection_string": props.pop("ConnectionString"),
                "delay_validation": self.boolean(el, props, "DelayValidation", False),
                "property_expressions": self.expressions(props.rest),
                "scope": scope,
                "location": self.loc(el),
            }
        )
        spec.properties, spec.sensitive_unavailable, spec.object_data = (
            {},
            sorted(props.sensitive),
            None,
        )
        object_data = next((c for c in props.rest if c.tag == _D + "ObjectData"), None)
        if object_data is not None:
            spec.object_data = self.node(object_data)
            inner = next((c for c in object_data if c.tag.__class__ is str), None)
            if inner is not None:
                self._connection_inner(spec, inner)
        return spec

    def _connection_inner(self, spec: ConnectionManagerSpec, inner: etree._Element) -> None:
        """Settings of the inner element: DTS-style (OLEDB, FILE...) or plain (SMTP, FTP, HTTP)."""
        values: dict[str, str] = {local_name(k): v for k, v in inner.attrib.items()}
        sensitive = set(spec.sensitive_unavailable)
        for child in inner:
            if child.tag.__class__ is not str:
                continue
            local = etree.QName(child).localname
            name = child.get(_NAME)
            if local == "EncryptedData":
                sensitive.add("Password")
            elif name is not None and (marked_sensitive(child.get) or local == "Password"):
                sensitive.add(name)
            elif local == "Property" and name is not None and len(child) == 0:
                values[name] = child.text or ""
        connection_string = values.pop("ConnectionString", None)
        if spec.connection_string is None:
            spec.connection_string = connection_string
        for key in ("Sensitive", "Encrypted"):
            values.pop(key, None)
        spec.properties = values
        spec.sensitive_unavailable = sorted(sensitive)

    def log_provider(self, el: etree._Element) -> LogProvider:
        props = _Props(el)
        name = props.pop("ObjectName") or ""
        object_data = next((c for c in props.rest if c.tag == _D + "ObjectData"), None)
        return self.make.log_provider(
            {
                "ref_id": props.pop("refId") or f"Package.LogProviders[{name}]",
                "name": name,
                "dtsid": props.pop("DTSID"),
                "creation_name": props.pop("CreationName") or "",
                "config_string": props.pop_text("ConfigString"),
                "description": props.pop_text("Description"),
                "object_data": self.node(object_data),
                "location": self.loc(el),
            }
        )

    # -- Foreach Loop parts

    def enumerator(self, el: etree._Element, container_ref: str) -> ForEachEnumerator:
        props = _Props(el)
        raw = props.pop("CreationName") or ""
        object_data = next((c for c in props.rest if c.tag == _D + "ObjectData"), None)
        return self.make.enumerator(
            {
                "ref_id": props.pop("refId") or f"{container_ref}.ForEachEnumerator",
                "name": props.pop("ObjectName"),
                "dtsid": props.pop("DTSID"),
                "raw_type": raw,
                "type_key": normalise_type(raw),
                "properties": _enumerator_settings(object_data),
                "property_expressions": self.expressions(props.rest),
                "object_data": self.node(object_data),
                "location": self.loc(el),
            }
        )

    def mapping(self, el: etree._Element, container_ref: str) -> ForEachVariableMapping:
        props = _Props(el)
        name = props.pop("ObjectName") or ""
        return self.make.mapping(
            {
                "ref_id": props.pop("refId") or f"{container_ref}.ForEachVariableMappings[{name}]",
                "value_index": self.integer(el, props, "ValueIndex", 0),
                "variable": props.pop("VariableName") or "",
                "location": self.loc(el),
            }
        )

    # -- project parameters (Project.params)

    def project_parameter(
        self, el: etree._Element, decrypted: AbstractSet[etree._Element]
    ) -> Parameter:
        """One project parameter. A sensitive value is unavailable unless the project's password
        decrypted it; then it is kept, and the parameter stays sensitive (masked when shown)."""
        values: dict[str, str] = {}
        sensitive_value = False
        for prop in el.iter(_S + "Property"):
            name = prop.get(_S + "Name") or ""
            if (
                name == "Value"
                and (prop.get(_S + "Sensitive") == "1" or len(prop))
                and prop not in decrypted
            ):
                sensitive_value = True
                continue
            values[name] = prop.text or ""
        code_text = values.get("DataType", "18")
        code = int(code_text) if code_text.strip().lstrip("-").isdigit() else 18
        sensitive = ssis_flag(values.get("Sensitive", "0")) is True
        return self.make.parameter(
            {
                "name": el.get(_S + "Name") or "",
                "scope": "Project",
                "dtsid": values.get("ID"),
                "dotnet_type": TYPECODE_TO_DOTNET.get(code, "Object"),
                "data_type_code": code,
                "value": None if sensitive_value else values.get("Value"),
                "sensitive": sensitive,
                "sensitive_unavailable": sensitive_value or (sensitive and "Value" not in values),
                "required": ssis_flag(values.get("Required", "0")) is True,
                "description": values.get("Description") or None,
                "location": self.loc(el),
            }
        )


class _PackageReader(_ElementReader):
    """Reads a package: its own settings, its executables of every kind and their precedence
    constraints; the parts they hold are read by a _PartReader."""

    def __init__(self, file: str, *, fast: bool = True) -> None:
        super().__init__(file, fast=fast)
        self.parts = _PartReader(file, fast=fast)
        # A package repeats a few task types many times; normalising each spelling once is enough.
        self.type_keys: dict[str, str] = {}

    def package(self, root: etree._Element) -> Package:
        props = _Props(root)
        version = self._format_version(root, props)
        fields = self._package_fields(root, props)
        raw_type = props.pop("ExecutableType") or fields["creation_name"] or ""
        ref = props.pop("refId") or "Package"
        fields.update(
            kind=ExecutableKind.PACKAGE,
            ref_id=ref,
            name=props.pop("ObjectName") or "",
            raw_type=raw_type,
            type_key=normalise_type(str(raw_type)),
            format_version=version,
        )
        children = self._executable_fields(fields, root, props, ref)
        self._package_parts(fields, children)
        fields["properties"] = dict(props.values)
        return self.make.package(fields)

    def _format_version(self, root: etree._Element, props: _Props) -> int:
        raw = props.pop("PackageFormatVersion")
        if raw is None:
            raise self.error(
                root, "has no PackageFormatVersion property: this is not a saved .dtsx package"
            )
        try:
            version = int(raw)
        except ValueError:
            version = -1
        if version not in SUPPORTED_FORMATS:
            line = props.lines.get("PackageFormatVersion", root.sourceline)
            raise PackageLoadError(
                f"PackageFormatVersion {raw!r} is not one dtsx reads (2, 3, 6 or 8): "
                "re-save the package with SSDT targeting SQL Server 2012 or later",
                file=self.file,
                line=line,
            )
        return version

    def _package_fields(self, root: etree._Element, props: _Props) -> dict[str, object]:
        level_raw = props.pop("ProtectionLevel")
        return {
            "protection_level": self._protection_level(root, level_raw),
            "max_concurrent_executables": self.integer(root, props, "MaxConcurrentExecutables", -1),
            "creation_name": props.pop("CreationName"),
            "version_guid": props.pop("VersionGUID"),
            "version_major": self.integer(root, props, "VersionMajor", None),
            "version_minor": self.integer(root, props, "VersionMinor", None),
            "version_build": self.integer(root, props, "VersionBuild", None),
            "creator_name": props.pop("CreatorName"),
            "creator_computer_name": props.pop("CreatorComputerName"),
            "creation_date": props.pop("CreationDate"),
            "save_checkpoints": self.boolean(root, props, "SaveCheckpoints", False),
            "checkpoint_file_name": props.pop_text("CheckpointFileName"),
            "checkpoint_usage": self.integer(root, props, "CheckpointUsage", 0),
        }

    def _protection_level(self, root: etree._Element, raw: str | None) -> int:
        if raw is None or not raw.strip():
            return 1
        if raw.strip().lstrip("-").isdigit():
            return int(raw)
        by_name = {v.lower(): k for k, v in PROTECTION_LEVELS.items()}
        if raw.strip().lower() in by_name:
            return by_name[raw.strip().lower()]
        raise self.error(root, f"ProtectionLevel {raw!r} is unknown (expected 0-5): fix the value")

    # -- executables of every kind

    def executable(self, el: etree._Element, parent_ref: str) -> Executable:
        props = _Props(el)
        pop = props.values.pop
        name = pop("ObjectName", None) or ""
        ref = pop("refId", None) or f"{parent_ref}\\{name}"
        raw_type = pop("ExecutableType", None) or ""
        creation = pop("CreationName", None)
        if not raw_type:
            raw_type = creation or ""
        elif creation is not None and creation != raw_type:
            props.values["CreationName"] = creation
        type_key = self.type_keys.get(raw_type)
        if type_key is None:
            type_key = self.type_keys[raw_type] = normalise_type(raw_type)
        kind = _CONTAINER_KINDS.get(type_key, ExecutableKind.TASK)
        fields: dict[str, Any] = {
            "kind": kind,
            "ref_id": ref,
            "name": name,
            "raw_type": raw_type,
            "type_key": type_key,
        }
        if not (self.fast and kind is ExecutableKind.TASK and self._plain_task(fields, el, props)):
            self._executable_fields(fields, el, props, ref)
        fields["properties"] = props.values  # what no field took; props is not used again
        return self.make.executable(fields)

    def event_handler(self, el: etree._Element, owner_ref: str) -> Executable:
        props = _Props(el)
        event = props.pop("EventName") or props.values.get("CreationName") or ""
        ref = props.pop("refId") or f"{owner_ref}.EventHandlers[{event}]"
        creation = props.pop("CreationName")
        if creation is not None and creation != event:
            props.values["CreationName"] = creation
        props.pop("ObjectName")
        fields: dict[str, Any] = {
            "kind": ExecutableKind.EVENT_HANDLER,
            "ref_id": ref,
            "name": event,
            "event": event,
            "raw_type": "",
            "type_key": "",
        }
        self._executable_fields(fields, el, props, ref)
        fields["properties"] = dict(props.values)
        return self.make.executable(fields)

    def _executable_fields(
        self, fields: dict[str, Any], el: etree._Element, props: _Props, ref: str
    ) -> _Children:
        """Host settings and contents of any executable, added to ``fields``; the children are
        returned for the package's own parts. ``props`` keeps only unmapped settings afterwards."""
        self._host_fields(fields, el, props)
        fields["location"] = self.loc(el)
        children = _Children(props.rest)
        items, first = children.items, children.first
        # Each collection is read only when present: a task holds two or three of the ten kinds,
        # and this runs once per executable.
        found = children.get("PropertyExpression")
        fields["property_expressions"] = self.expressions(found) if found else []
        found = items("Variables", "Variable")
        fields["variables"] = [self.parts.variable(v, ref) for v in found] if found else []
        found = items("Executables", "Executable")
        executables = [self.executable(c, ref) for c in found] if found else []
        fields["executables"] = executables
        found = items("PrecedenceConstraints", "PrecedenceConstraint")
        fields["precedence_constraints"] = (
            [self.constraint(c, ref, executables) for c in found] if found else []
        )
        found = items("EventHandlers", "EventHandler")
        fields["event_handlers"] = [self.event_handler(h, ref) for h in found] if found else []
        fields["object_data"] = self.node(first("ObjectData"))
        fields["logging_options"] = self.node(first("LoggingOptions"))
        enum = first("ForEachEnumerator")
        fields["enumerator"] = self.parts.enumerator(enum, ref) if enum is not None else None
        found = items("ForEachVariableMappings", "ForEachVariableMapping")
        fields["variable_mappings"] = [self.parts.mapping(m, ref) for m in found] if found else []
        return children

    def _plain_task(self, fields: dict[str, Any], el: etree._Element, props: _Props) -> bool:
        """Speed code, the fast path of ``_executable_fields`` (its plain reference, above): the
        usual task holds only its ObjectData and empty Variables wrappers, so it needs none of the
        general child dispatch (about 35 ms of 345 on the 10k-task bench). False, having done
        nothing, for anything else, which takes the general path."""
        object_data = None
        for child in props.rest:
            tag = child.tag
            if tag == _OBJECT_DATA and object_data is None:
                object_data = child
            elif tag != _VARIABLES or len(child):
                return False
        self._host_fields(fields, el, props)
        fields["location"] = self.loc(el)
        fields["property_expressions"] = []
        fields["variables"] = []
        fields["executables"] = []
        fields["precedence_constraints"] = []
        fields["event_handlers"] = []
        fields["object_data"] = self.node(object_data)
        fields["logging_options"] = None
        fields["enumerator"] = None
        fields["variable_mappings"] = []
        return True

    def _host_fields(self, f: dict[str, Any], el: etree._Element, props: _Props) -> None:
        """Host settings by one pass over what the element holds (defaults are the model's).

        A 2012+ element carries a handful of the ~20 settings, so dispatching on what is present
        is much cheaper than asking for each setting in turn.
        """
        values = props.values
        for name in [n for n in values if n in _HOST_FIELDS]:
            field, kind = _HOST_FIELDS[name]
            raw = values.pop(name)
            if kind == "str":
                f[field] = raw
            elif kind == "int":
                f[field] = self._as_int(el, name, raw, _MODEL_DEFAULTS[field])
            elif kind == "bool":
                f[field] = self._as_bool(el, name, raw)
            else:
                f[field] = raw or None
        value_type = props.types.get("ExecValue") or props.types.get("ForcedExecutionValue")
        if value_type:
            f["forced_execution_value_type"] = (
                int(value_type) if value_type.lstrip("-").isdigit() else None
            )

    def _package_parts(self, fields: dict[str, Any], children: _Children) -> None:
        fields["connections"] = [
            self.parts.connection(c)
            for c in children.items("ConnectionManagers", "ConnectionManager")
        ]
        fields["parameters"] = [
            self.parts.parameter(p) for p in children.items("PackageParameters", "PackageParameter")
        ]
        fields["log_providers"] = [
            self.parts.log_provider(p) for p in children.items("LogProviders", "LogProvider")
        ]
        fields["configurations"] = [
            _xml_node(c, None, self.make.node)
            for c in children.items("Configurations", "Configuration")
        ]

    # -- constraints

    def constraint(
        self, el: etree._Element, container_ref: str, siblings: list[Executable]
    ) -> PrecedenceConstraint:
        if self.fast and not len(el):
            return self._attribute_constraint(el, container_ref)
        return self._constraint(el, container_ref, siblings)

    def _constraint(
        self, el: etree._Element, container_ref: str, siblings: list[Executable]
    ) -> PrecedenceConstraint:
        """A constraint in either style: settings as DTS attributes (2012+) or Property children
        (2005/2008), ends as refId paths or ``IDREF`` children."""
        props = _Props(el)
        pop = props.values.pop
        name = pop("ObjectName", None)
        ref = pop("refId", None) or f"{container_ref}.PrecedenceConstraints[{name or ''}]"
        from_ref = pop("From", None)
        to_ref = pop("To", None)
        if from_ref is None or to_ref is None:
            from_ref, to_ref = self._idref_ends(el, props, siblings, from_ref, to_ref)
        return self.make.constraint(
            {
                "ref_id": ref,
                "name": name,
                "dtsid": pop("DTSID", None),
                "from_ref": from_ref,
                "to_ref": to_ref,
                "value": self.integer(el, props, "Value", 0),
                "eval_op": self.integer(el, props, "EvalOp", 2),
                "expression": pop("Expression", None) or None,
                "logical_and": self.boolean(el, props, "LogicalAnd", True),
                "location": self.loc(el),
            }
        )

    def _attribute_constraint(self, el: etree._Element, container_ref: str) -> PrecedenceConstraint:
        """Speed code, the fast path of ``_constraint`` (its plain reference, above) for a
        constraint without child elements (2012+), whose every setting is a DTS attribute. A
        package can hold tens of thousands of these, so each setting is asked for by name,
        without the _Props bookkeeping or a dict of all attributes."""
        get = el.get
        name = get(_PC_OBJECT_NAME)
        ref = get(_PC_REF_ID) or f"{container_ref}.PrecedenceConstraints[{name or ''}]"
        from_ref = get(_PC_FROM)
        to_ref = get(_PC_TO)
        if from_ref is None or to_ref is None:
            missing = "From" if from_ref is None else "To"
            raise self.error(
                el, f"the precedence constraint has no {missing} end: fix or delete the constraint"
            )
        raw_value, raw_op, raw_and = get(_PC_VALUE), get(_PC_EVAL_OP), get(_PC_LOGICAL_AND)
        return self.make.constraint(
            {
                "ref_id": ref,
                "name": name,
                "dtsid": get(_PC_DTSID),
                "from_ref": from_ref,
                "to_ref": to_ref,
                "value": 0 if raw_value is None else self._as_int(el, "Value", raw_value, 0),
                "eval_op": 2 if raw_op is None else self._as_int(el, "EvalOp", raw_op, 2),
                "expression": get(_PC_EXPRESSION) or None,
                # "True" is what SSDT writes; anything else goes through the full parse.
                "logical_and": True
                if raw_and is None or raw_and == "True"
                else self._as_bool(el, "LogicalAnd", raw_and),
                "location": self.loc(el),
            }
        )

    def _idref_ends(
        self,
        el: etree._Element,
        props: _Props,
        siblings: list[Executable],
        from_ref: str | None,
        to_ref: str | None,
    ) -> tuple[str, str]:
        """2005/2008: ``<DTS:Executable IDREF="{GUID}" DTS:IsFrom="-1|0"/>`` children name the
        ends."""
        by_id = {guid_key(e.dtsid): e.ref_id for e in siblings if e.dtsid}
        for end in props.rest:
            if end.tag != _D + "Executable":
                continue
            idref = end.get("IDREF") or end.get(_D + "IDREF") or ""
            # An unresolved GUID is kept as written, so the planner can report it with its line.
            ref = by_id.get(guid_key(idref), idref)
            is_from = ssis_flag(end.get(_D + "IsFrom") or end.get("IsFrom") or "0") is True
            if is_from:
                from_ref = from_ref or ref
            else:
                to_ref = to_ref or ref
        if from_ref is None or to_ref is None:
            missing = "From" if from_ref is None else "To"
            raise self.error(
                el, f"the precedence constraint has no {missing} end: fix or delete the constraint"
            )
        return from_ref, to_ref


# Persisted host setting (either style) → (Executable field, conversion). 2005/2008 names
# (ForceExecValue, ExecValue, ISOLevel) and their long forms are both accepted.
_HOST_FIELDS: dict[str, tuple[str, str]] = {
    "DTSID": ("dtsid", "str"),
    "Description": ("description", "text"),
    "Disabled": ("disabled", "bool"),
    "DisableEventHandlers": ("disable_event_handlers", "bool"),
    "DelayValidation": ("delay_validation", "bool"),
    "FailPackageOnFailure": ("fail_package_on_failure", "bool"),
    "FailParentOnFailure": ("fail_parent_on_failure", "bool"),
    "MaxErrorCount": ("max_error_count", "int"),
    "ForceExecutionResult": ("force_execution_result", "int"),
    "ForceExecutionValue": ("force_execution_value", "bool"),
    "ForceExecValue": ("force_execution_value", "bool"),
    "ForcedExecutionValue": ("forced_execution_value", "text"),
    "ExecValue": ("forced_execution_value", "text"),
    "TransactionOption": ("transaction_option", "int"),
    "IsolationLevel": ("isolation_level", "int"),
    "ISOLevel": ("isolation_level", "int"),
    "LocaleID": ("locale_id", "int"),
    "LoggingMode": ("logging_mode", "int"),
    "InitExpression": ("init_expression", "text"),
    "EvalExpression": ("eval_expression", "text"),
    "AssignExpression": ("assign_expression", "text"),
}
_MODEL_DEFAULTS: dict[str, Any] = {
    name: info.default for name, info in Executable.model_fields.items()
}


# Persisted enumerator setting names → the runtime property names that expressions use.
_ENUM_RUNTIME_NAMES = {"Folder": "Directory"}


def _enumerator_settings(object_data: etree._Element | None) -> dict[str, str]:
    """Simple settings of an enumerator by runtime name: attributes of the data element and of
    its childless children (the File enumerator's ``<FEFEProperty Folder=.../>`` rows)."""
    settings: dict[str, str] = {}
    if object_data is None:
        return settings
    inner = next((c for c in object_data if c.tag.__class__ is str), None)
    if inner is None:
        return settings
    sources = [inner, *(c for c in inner if c.tag.__class__ is str and len(c) == 0 and c.attrib)]
    if etree.QName(inner).localname != "ForEachFileEnumeratorProperties":
        sources = [inner]
    for source in sources:
        for key, value in source.attrib.items():
            local = local_name(key)
            settings[_ENUM_RUNTIME_NAMES.get(local, local)] = value
    return settings


class _Children:
    """A container's child elements by local name, with 2012+ wrappers flattened."""

    __slots__ = ("by_name",)

    def __init__(self, elements: list[etree._Element]) -> None:
        by_name: dict[str, list[etree._Element]] = {}
        for el in elements:
            local = LOCAL_NAMES[el.tag]
            if local in by_name:
                by_name[local].append(el)
            else:
                by_name[local] = [el]
        self.by_name = by_name

    def get(self, local: str) -> list[etree._Element]:
        return self.by_name.get(local, [])

    def first(self, local: str) -> etree._Element | None:
        found = self.by_name.get(local)
        return found[0] if found else None

    def items(self, wrapper: str, item: str) -> list[etree._Element]:
        """Items inside ``<DTS:wrapper>`` (2012+) and bare ``<DTS:item>`` children (2005/2008)."""
        by_name = self.by_name
        if wrapper not in by_name and item not in by_name:
            return []  # most executables hold only a few of the possible collections
        tag = _D + item
        found: list[etree._Element] = []
        for wrap in by_name.get(wrapper, ()):
            found.extend(c for c in wrap if c.tag == tag)
        found.extend(self.by_name.get(item, ()))
        return found


# --------------------------------------------------------------------------- project files


def _project_root(
    path: Path,
    what: str,
    tag: str,
    shown: str,
    kind: str,
    password: str | None,
    produced: set[etree._Element] | None = None,
) -> etree._Element:
    """The parsed root of a project file, refused unless it is the element this file must hold."""
    file = str(path)
    root = parse_xml(_read_file(path, what), file)
    if password is not None:
        root = _decrypted(root, password, file, produced)
    if root.tag != tag:
        raise PackageLoadError(
            f"the root element is <{etree.QName(root).localname}>, not <{shown}>: this is not a "
            f"{kind} file",
            file=file,
            line=root.sourceline,
        )
    return root


def _load_conmgr(path: Path, password: str | None, fast: bool) -> ConnectionManagerSpec:
    root = _project_root(
        path,
        "connection manager",
        _D + "ConnectionManager",
        "DTS:ConnectionManager",
        ".conmgr",
        password,
    )
    return _PartReader(str(path), fast=fast).connection(root, scope="Project")


def _load_params(path: Path, password: str | None, fast: bool) -> list[Parameter]:
    decrypted: set[etree._Element] = set()
    root = _project_root(
        path,
        "project parameters",
        _S + "Parameters",
        "SSIS:Parameters",
        "Project.params",
        password,
        decrypted,
    )
    reader = _PartReader(str(path), fast=fast)
    return [reader.project_parameter(p, decrypted) for p in root if p.tag == _S + "Parameter"]
