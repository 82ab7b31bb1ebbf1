"""The typed model of an SSIS package: one shape whatever format the file was written in.

The loader fills it, the writer writes it back, the planner checks it, the executor runs it.
Every object keeps its ``ref_id`` (the 2012+ path form, e.g. ``Package\\Seq\\Send Mail``, which
the loader synthesises for 2005/2008 files) and the ``SourceLocation`` it came from.
Values are kept as the file stores them (text plus a type code); turning text into typed
values is the variables module's job. This module does no I/O.
"""

from __future__ import annotations

from enum import Enum, IntEnum
from typing import Any
from collections.abc import Callable, Iterator

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "SourceLocation",
    "XmlNode",
    "PropertyExpression",
    "ConnectionManagerSpec",
    "Variable",
    "Parameter",
    "PrecedenceConstraint",
    "ForEachEnumerator",
    "ForEachVariableMapping",
    "ExecutableKind",
    "Executable",
    "LogProvider",
    "Package",
    "VARTYPE_TO_DOTNET",
    "TYPECODE_TO_DOTNET",
    "DOTNET_TO_VARTYPE",
    "EXEC_RESULTS",
    "EVAL_OPS",
    "EvalOp",
    "DTSExecResult",
    "LocalNames",
    "LOCAL_NAMES",
    "local_name",
    "HOST_PROPERTIES",
    "FOR_LOOP_PROPERTIES",
    "IGNORED_HOST_PROPERTIES",
    "ENUMERATOR_PROPERTIES",
    "ENUMERATOR_DATA",
    "CONNECTION_PROPERTIES",
    "PROTECTION_LEVELS",
    "DTS_NS",
    "MAX_PACKAGE_BYTES",
    "MAX_XML_DEPTH",
    "MAX_XML_VALUE_BYTES",
    "marked_sensitive",
    "ssis_flag",
    "ConfiguredValue",
    "PackageConfiguration",
    "package_configurations",
    "ISOLATION_LEVELS",
    "TRANSACTION_OPTIONS",
]

# The namespace of every DTS: element and attribute in a package file.
DTS_NS = "www.microsoft.com/SqlServer/Dts"
# The limits of a package file, one definition for the loader (which refuses more) and the writer
# (which refuses to write more). The XML ones are libxml2's own without XML_PARSE_HUGE, which the
# loader's parser keeps: changing them here does not change what libxml2 accepts.
MAX_PACKAGE_BYTES = 64 * 1024 * 1024  # a whole file
MAX_XML_DEPTH = 256  # elements nested in one another
MAX_XML_VALUE_BYTES = 10_000_000  # one text (UTF-8, entities expanded), or one start tag as written
_SENSITIVE_KEYS = ("Sensitive", f"{{{DTS_NS}}}Sensitive", "Encrypted", f"{{{DTS_NS}}}Encrypted")


def ssis_flag(text: str) -> bool | None:
    """SSIS's boolean text: ``True``/``False`` (2012+), ``-1``/``0`` (2005/2008) and ``1``, in any
    case, surrounding spaces ignored; an empty value is False. None for anything else, so that
    each reader decides how to refuse it (a load error, a validation problem, a failed cast)."""
    exact = _AS_WRITTEN.get(text)
    if exact is not None:
        return exact
    low = text.strip().lower()
    if low in _SSIS_TRUE:
        return True
    if low in _SSIS_FALSE:
        return False
    return None


_SSIS_TRUE = frozenset({"true", "-1", "1"})
_SSIS_FALSE = frozenset({"false", "0", ""})
# The spellings files actually hold, looked up as they are: the loader reads tens of thousands.
_AS_WRITTEN = {"True": True, "False": False, "-1": True, "0": False, "1": True, "": False}


def marked_sensitive(attribute: Callable[[str], str | None]) -> bool:
    """Whether an element's ``Sensitive`` or ``Encrypted`` attribute (plain or ``DTS:``) is set;
    ``attribute`` reads one by its Clark name (an lxml element's ``get``, an XmlNode's
    ``attrs.get``)."""
    for key in _SENSITIVE_KEYS:
        value = attribute(key)
        if value is not None and ssis_flag(value):
            return True
    return False


# DTS:DataType on variables and package parameters: COM VARTYPE codes (spec §4.3).
VARTYPE_TO_DOTNET: dict[int, str] = {
    0: "Empty",
    1: "DBNull",
    2: "Int16",
    3: "Int32",
    4: "Single",
    5: "Double",
    6: "Decimal",  # VT_CY, currency; SSIS surfaces it as Decimal
    7: "DateTime",
    8: "String",
    9: "Object",  # VT_DISPATCH
    11: "Boolean",
    13: "Object",
    14: "Decimal",
    16: "SByte",
    17: "Byte",
    18: "Char",
    19: "UInt32",
    20: "Int64",
    21: "UInt64",
}
DOTNET_TO_VARTYPE: dict[str, int] = {
    name: code for code, name in VARTYPE_TO_DOTNET.items() if code not in (0, 6, 9)
}
# Project.params DataType: System.TypeCode codes (spec §5), a different code space.
TYPECODE_TO_DOTNET: dict[int, str] = {
    0: "Empty",
    1: "Object",
    2: "DBNull",
    3: "Boolean",
    4: "Char",
    5: "SByte",
    6: "Byte",
    7: "Int16",
    8: "UInt16",
    9: "Int32",
    10: "UInt32",
    11: "Int64",
    12: "UInt64",
    13: "Single",
    14: "Double",
    15: "Decimal",
    16: "DateTime",
    18: "String",
}
# Runtime properties of every task host and container that a property expression (or --set)
# may change: name -> the Executable field it sets. The executor applies them; the planner accepts
# them on any executable. A task's own properties come from its plugin's Properties model.
HOST_PROPERTIES: dict[str, str] = {
    "Disable": "disabled",
    "Disabled": "disabled",
    "DisableEventHandlers": "disable_event_handlers",
    "FailPackageOnFailure": "fail_package_on_failure",
    "FailParentOnFailure": "fail_parent_on_failure",
    "MaximumErrorCount": "max_error_count",
    "MaxErrorCount": "max_error_count",
    "ForceExecutionResult": "force_execution_result",
    "Description": "description",
}
# The For Loop's own runtime properties.
FOR_LOOP_PROPERTIES: dict[str, str] = {
    "InitExpression": "init_expression",
    "EvalExpression": "eval_expression",
    "AssignExpression": "assign_expression",
}
# SSIS container settings that dtsx reads from the file but does not change at run time: a
# property expression on one of them is legal SSIS, and has no effect here.
IGNORED_HOST_PROPERTIES = frozenset(
    {
        "TransactionOption",
        "IsolationLevel",
        "LoggingMode",
        "LocaleID",
        "DelayValidation",
        "ForceExecutionValue",
        "ForcedExecutionValue",
        "SuspendRequired",
        "Name",
        # The package's own settings.
        "MaxConcurrentExecutables",
        "PackagePriorityClass",
        "CheckpointFileName",
        "CheckpointUsage",
        "SaveCheckpoints",
        "OfflineMode",
        "SuppressConfigurationWarnings",
        "VersionComments",
    }
)
# The settings each built-in Foreach enumerator reads (by runtime name), which are also the
# properties a property expression on the enumerator may set.
ENUMERATOR_PROPERTIES: dict[str, frozenset[str]] = {
    "Microsoft.ForEachFileEnumerator": frozenset(
        {"Directory", "Folder", "FileSpec", "FileNameRetrievalType", "Recurse"}
    ),
    "Microsoft.ForEachItemEnumerator": frozenset(),
    "Microsoft.ForEachFromVarEnumerator": frozenset(
        {"VariableName", "VarName", "Variable", "SourceVariable"}
    ),
    "Microsoft.ForEachADOEnumerator": frozenset(
        {"VarName", "VariableName", "SourceVariable", "Type", "EnumType"}
    ),
}
# The XML each built-in enumerator keeps in its ObjectData: element names, and the attribute names
# those elements may carry (settings, or the Item enumerator's typed values).
ENUMERATOR_DATA: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "Microsoft.ForEachFileEnumerator": (
        frozenset({"ForEachFileEnumeratorProperties", "FEFEProperty"}),
        frozenset({"Folder", "FileSpec", "FileNameRetrievalType", "Recurse"}),
    ),
    "Microsoft.ForEachItemEnumerator": (
        frozenset({"FEIEItems", "FEIEItem", "FEIEItemValue"}),
        frozenset({"Type", "DataType", "Value"}),
    ),
    "Microsoft.ForEachFromVarEnumerator": (
        frozenset({"FEEFVE", "FEFVE"}),
        ENUMERATOR_PROPERTIES["Microsoft.ForEachFromVarEnumerator"],
    ),
    "Microsoft.ForEachADOEnumerator": (
        frozenset({"FEEADO"}),
        ENUMERATOR_PROPERTIES["Microsoft.ForEachADOEnumerator"],
    ),
}
# Properties every connection manager has; a connection-manager plugin adds its own through
# its ``runtime_properties`` class attribute (connections.base).
CONNECTION_PROPERTIES = frozenset(
    {
        "ConnectionString",
        "Description",
        "Name",
        "DelayValidation",
        "ProtectionLevel",
        "SupportsDTCTransactions",
        "ConnectByProxy",
    }
)
EXEC_RESULTS = {0: "Success", 1: "Failure", 2: "Completion", 3: "Canceled"}
EVAL_OPS = {
    1: "Expression",
    2: "Constraint",
    3: "ExpressionAndConstraint",
    4: "ExpressionOrConstraint",
}


class EvalOp(IntEnum):
    """A precedence constraint's ``DTS:EvalOp`` (``PrecedenceConstraint.eval_op``). The field
    stays a plain int, so that the planner can report a value outside the enum with its line."""

    EXPRESSION = 1
    CONSTRAINT = 2
    EXPRESSION_AND_CONSTRAINT = 3
    EXPRESSION_OR_CONSTRAINT = 4


class DTSExecResult(IntEnum):
    """SSIS's DTSExecResult: a precedence constraint's ``DTS:Value`` (0 to 2 only), an
    executable's ForceExecutionResult (-1, not forced, is not a member) and a child package's
    outcome (3, canceled). ``PrecedenceConstraint.value`` stays a plain int, as ``eval_op`` does."""

    SUCCESS = 0
    FAILURE = 1
    COMPLETION = 2
    CANCELED = 3


PROTECTION_LEVELS = {
    0: "DontSaveSensitive",
    1: "EncryptSensitiveWithUserKey",
    2: "EncryptSensitiveWithPassword",
    3: "EncryptAllWithPassword",
    4: "EncryptAllWithUserKey",
    5: "ServerStorage",
}


# An executable's IsolationLevel (ISOLevel): System.Data.IsolationLevel codes -> their names.
ISOLATION_LEVELS: dict[int, str] = {
    -1: "Unspecified",
    16: "Chaos",
    256: "ReadUncommitted",
    4096: "ReadCommitted",
    65536: "RepeatableRead",
    1048576: "Serializable",
    16777216: "Snapshot",
}
# An executable's TransactionOption (DTSTransactionOption) -> its name.
TRANSACTION_OPTIONS: dict[int, str] = {0: "NotSupported", 1: "Supported", 2: "Required"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False)


class SourceLocation(_Model):
    """Where an object was read from; ``line`` is 1-based, None for synthesised objects."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    file: str
    line: int | None = None

    def __str__(self) -> str:
        return self.file if self.line is None else f"{self.file}:{self.line}"


class XmlNode(_Model):
    """An opaque XML element kept whole (a task's ObjectData, a log provider's settings).

    ``tag`` and attribute keys are in Clark notation (``{namespace}local``) so the writer can
    reproduce them; tasks read them by local name through :meth:`get` and :meth:`find`, so they
    never parse XML themselves. ``nsmap`` holds the prefixes declared on this element.
    """

    tag: str
    attrs: dict[str, str] = Field(default_factory=dict)
    text: str | None = None
    children: list[XmlNode] = Field(default_factory=list)
    nsmap: dict[str, str] = Field(default_factory=dict)
    line: int | None = Field(default=None, exclude=True)

    @property
    def local_name(self) -> str:
        return local_name(self.tag)

    def get(self, local_name: str, default: str | None = None) -> str | None:
        """An attribute by local name, ignoring its namespace and case."""
        wanted = local_name.lower()
        for key, value in self.attrs.items():
            if LOCAL_NAMES[key].lower() == wanted:
                return value
        return default

    def find(self, local_name: str) -> XmlNode | None:
        """The first child element with this local name (case-insensitive), or None."""
        return next(self.findall(local_name), None)

    def findall(self, local_name: str) -> Iterator[XmlNode]:
        wanted = local_name.lower()
        return (c for c in self.children if c.local_name.lower() == wanted)

    def child_text(self, local_name: str, default: str | None = None) -> str | None:
        child = self.find(local_name)
        return default if child is None or child.text is None else child.text

    def iter(self) -> Iterator[XmlNode]:
        """This node and every descendant, depth first."""
        yield self
        for child in self.children:
            yield from child.iter()


def local_name(clark: str) -> str:
    """The local part of a name in Clark notation: ``{uri}Name`` -> ``Name``, ``Name`` -> ``Name``.
    The plain reference of :data:`LOCAL_NAMES`."""
    return clark.rsplit("}", 1)[-1]


class LocalNames(dict[str, str]):
    """Clark name -> local name, each key sliced once: a package repeats a few dozen attribute
    and element names thousands of times, and a dict read is much cheaper than the slicing.
    Read it as ``names[key]``; the result equals :func:`local_name` (pinned by a test).

    Bounded (keys come from package files, which a long-running process may read without end):
    past ``limit`` keys a miss is computed and not kept. Filling it from several threads is safe:
    each write stores the same value a racing thread would.
    """

    def __init__(self, limit: int = 1 << 14) -> None:
        super().__init__()
        self.limit = limit

    def __missing__(self, key: str) -> str:
        local = key.rsplit("}", 1)[-1]
        if len(self) < self.limit:
            self[key] = local
        return local


# The process's one cache of local names: the loader, the planner and the tasks share it.
LOCAL_NAMES = LocalNames()


class PropertyExpression(_Model):
    """``<DTS:PropertyExpression DTS:Name="ToLine">@[User::To]</DTS:PropertyExpression>``.

    ``name`` is the runtime property name it sets (``ToLine``, ``SmtpServer``, ``Directory``...).
    """

    name: str
    expression: str
    location: SourceLocation | None = None


class ConnectionManagerSpec(_Model):
    """A connection manager as stored: in the package, or a project ``.conmgr`` file.

    ``creation_name`` is the raw CreationName (``SMTP``, ``FILE``, ``OLEDB``,
    ``ADO.NET:System.Data.SqlClient.SqlConnection``); ``type_key`` is its upper-cased registry
    key (``SMTP``). ``properties`` keeps the other settings found on the inner ObjectData
    element (e.g. ``FileUsageType`` of a FILE connection). ``sensitive_unavailable`` names
    values that were encrypted or not saved, which load as "sensitive, not available".
    """

    ref_id: str
    name: str
    dtsid: str | None = None
    creation_name: str
    type_key: str
    description: str | None = None
    connection_string: str | None = Field(default=None, repr=False)  # may hold a password
    properties: dict[str, str] = Field(default_factory=dict)
    property_expressions: list[PropertyExpression] = Field(default_factory=list)
    object_data: XmlNode | None = None
    delay_validation: bool = False
    sensitive_unavailable: list[str] = Field(default_factory=list)
    scope: str = "Package"  # "Package" or "Project"
    location: SourceLocation | None = None


class Variable(_Model):
    """A variable in some container's Variables collection.

    ``value`` is the persisted text; ``data_type`` the VARTYPE code (``dotnet_type`` its name).
    ``scope`` is the ref_id of the owning container (``Package``, ``Package\\Loop``...).
    """

    ref_id: str
    namespace: str = "User"
    name: str
    dtsid: str | None = None
    description: str | None = None
    data_type: int = 8
    data_subtype: str | None = None
    value: str | None = Field(default=None, repr=False)  # may be sensitive
    evaluate_as_expression: bool = False
    expression: str | None = None
    read_only: bool = False
    raise_changed_event: bool = False
    include_in_debug_dump: str | None = None
    sensitive_unavailable: bool = False
    property_expressions: list[PropertyExpression] = Field(default_factory=list)
    scope: str = "Package"
    location: SourceLocation | None = None

    @property
    def qualified_name(self) -> str:
        return f"{self.namespace}::{self.name}"

    @property
    def dotnet_type(self) -> str:
        return VARTYPE_TO_DOTNET.get(self.data_type, "Object")


class Parameter(_Model):
    """A package parameter (``$Package::``) or a project parameter from Project.params
    (``$Project::``)."""

    name: str
    scope: str  # "Package" or "Project"
    dtsid: str | None = None
    dotnet_type: str
    data_type_code: int
    value: str | None = Field(default=None, repr=False)  # may be a secret: never in reprs
    sensitive: bool = False
    sensitive_unavailable: bool = False
    required: bool = False
    description: str | None = None
    location: SourceLocation | None = None

    @property
    def qualified_name(self) -> str:
        return f"${self.scope}::{self.name}"


class PrecedenceConstraint(_Model):
    """A constraint between two executables of the same container; defaults filled in.

    ``from_ref``/``to_ref`` are ref_ids. ``value``: 0 Success, 1 Failure, 2 Completion.
    ``eval_op``: 1 Expression, 2 Constraint, 3 ExpressionAndConstraint, 4 ExpressionOrConstraint.
    """

    ref_id: str
    name: str | None = None
    dtsid: str | None = None
    from_ref: str
    to_ref: str
    value: int = 0
    eval_op: int = 2
    expression: str | None = None
    logical_and: bool = True
    location: SourceLocation | None = None


class ForEachEnumerator(_Model):
    """A Foreach Loop's enumerator: its type, its settings, and expressions on them.

    ``properties`` holds the simple settings (Directory, FileSpec, FileNameRetrievalType,
    Recurse, SourceVariable...) by their runtime names; ``object_data`` keeps the enumerator's
    data whole (e.g. the Item enumerator's rows) for the executor to interpret.
    """

    ref_id: str
    name: str | None = None
    dtsid: str | None = None
    raw_type: str
    type_key: str
    properties: dict[str, str] = Field(default_factory=dict)
    property_expressions: list[PropertyExpression] = Field(default_factory=list)
    object_data: XmlNode | None = None
    location: SourceLocation | None = None


class ForEachVariableMapping(_Model):
    ref_id: str | None = None
    value_index: int = 0
    variable: str  # qualified name as stored, e.g. "User::FileName"
    location: SourceLocation | None = None


class ExecutableKind(str, Enum):
    TASK = "task"
    SEQUENCE = "sequence"
    FOR_LOOP = "forloop"
    FOREACH_LOOP = "foreachloop"
    EVENT_HANDLER = "eventhandler"
    PACKAGE = "package"

    @property
    def is_container(self) -> bool:
        return self is not ExecutableKind.TASK


class Executable(_Model):
    """A task host or a container (Sequence, For Loop, Foreach Loop, event handler, package).

    One class for all kinds keeps recursion simple; fields that do not apply to a kind stay at
    their defaults. ``raw_type`` is CreationName/ExecutableType as written; ``type_key`` its
    normalised registry key (``Microsoft.SendMailTask``, ``STOCK:SEQUENCE``...).
    ``properties`` keeps host settings the model has no field for, so the writer loses nothing.
    """

    kind: ExecutableKind
    ref_id: str
    name: str
    dtsid: str | None = None
    description: str | None = None
    raw_type: str = ""
    type_key: str = ""
    # Host settings, with SSIS defaults.
    disabled: bool = False
    disable_event_handlers: bool = False
    delay_validation: bool = False
    fail_package_on_failure: bool = False
    fail_parent_on_failure: bool = False
    max_error_count: int = 1
    force_execution_result: int = -1
    force_execution_value: bool = False
    forced_execution_value: str | None = None
    forced_execution_value_type: int | None = None
    transaction_option: int = 1
    isolation_level: int | None = None
    locale_id: int | None = None
    logging_mode: int | None = None
    properties: dict[str, str] = Field(default_factory=dict)
    property_expressions: list[PropertyExpression] = Field(default_factory=list)
    # LoggingOptions of this container or task, kept whole (dtsx logs through its own providers).
    logging_options: XmlNode | None = None
    variables: list[Variable] = Field(default_factory=list)
    event_handlers: list[Executable] = Field(default_factory=list)
    location: SourceLocation | None = None
    # Tasks: the task's ObjectData, kept whole for the task to interpret.
    object_data: XmlNode | None = None
    # Containers.
    executables: list[Executable] = Field(default_factory=list)
    precedence_constraints: list[PrecedenceConstraint] = Field(default_factory=list)
    # For Loop.
    init_expression: str | None = None
    eval_expression: str | None = None
    assign_expression: str | None = None
    # Foreach Loop.
    enumerator: ForEachEnumerator | None = None
    variable_mappings: list[ForEachVariableMapping] = Field(default_factory=list)
    # Event handlers: the event name (OnError, OnPreExecute...).
    event: str | None = None

    def walk(self) -> Iterator[Executable]:
        """This executable and everything below it, event handlers included, depth first."""
        yield self
        for handler in self.event_handlers:
            yield from handler.walk()
        for child in self.executables:
            yield from child.walk()


class LogProvider(_Model):
    """A log provider, kept as data (dtsx logs through its own providers)."""

    ref_id: str
    name: str
    dtsid: str | None = None
    creation_name: str
    config_string: str | None = None
    description: str | None = None
    object_data: XmlNode | None = None
    location: SourceLocation | None = None


class Package(Executable):
    """The package: the root container, plus what only a package has."""

    kind: ExecutableKind = ExecutableKind.PACKAGE
    path: str = ""
    format_version: int = 8
    protection_level: int = 1
    max_concurrent_executables: int = -1
    creation_name: str | None = None
    version_guid: str | None = None
    version_major: int | None = None
    version_minor: int | None = None
    version_build: int | None = None
    creator_name: str | None = None
    creator_computer_name: str | None = None
    creation_date: str | None = None
    save_checkpoints: bool = False
    checkpoint_file_name: str | None = None
    checkpoint_usage: int = 0
    connections: list[ConnectionManagerSpec] = Field(default_factory=list)
    project_connections: list[ConnectionManagerSpec] = Field(default_factory=list)
    parameters: list[Parameter] = Field(default_factory=list)
    project_parameters: list[Parameter] = Field(default_factory=list)
    log_providers: list[LogProvider] = Field(default_factory=list)
    logging_options: XmlNode | None = None
    configurations: list[XmlNode] = Field(default_factory=list)

    def all_connections(self) -> list[ConnectionManagerSpec]:
        """Package connection managers first, then the project's."""
        return [*self.connections, *self.project_connections]

    def comparable(self) -> dict[str, Any]:
        """A dump without source locations or the file path, for round-trip comparisons."""
        stripped: dict[str, Any] = _strip_locations(self.model_dump(mode="json", exclude={"path"}))
        return stripped


def _strip_locations(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _strip_locations(v) for k, v in data.items() if k not in ("location", "line")}
    if isinstance(data, list):
        return [_strip_locations(v) for v in data]
    return data


class PackageConfiguration(_Model):
    """One ``DTS:Configuration`` of a package (the 2005-2008 package configurations).

    ``type`` is SSIS's DTSConfigurationType: 0 parent package variable, 1 XML file, 2
    environment variable, 3 registry entry, 5 XML file named by an environment variable, 7 SQL
    Server table; 4, 6, 9 and 10 name their source through an environment variable, 8 is an INI
    file. ``string`` is the file, variable or table it names; ``target`` the property path a
    single value goes to (types 0, 2 and 3).
    """

    name: str = ""
    type: int = 0
    string: str = ""
    target: str = ""
    location: SourceLocation | None = None

    @property
    def kind(self) -> str:
        """The type in words, as the package configuration wizard names it."""
        return _CONFIGURATION_KINDS.get(self.type, f"type {self.type}")


_CONFIGURATION_KINDS = {
    0: "parent package variable",
    1: "XML configuration file",
    2: "environment variable",
    3: "registry entry",
    4: "parent variable named by environment variable",
    5: "XML file named by environment variable",
    6: "registry entry named by environment variable",
    7: "SQL Server table",
    8: "INI file",
    9: "SQL Server table named by environment variable",
    10: "INI file named by environment variable",
}


class ConfiguredValue(_Model):
    """One ``<Configuration>`` of a ``.dtsConfig`` file: a property path and the value it gets."""

    path: str
    value: str = Field(default="", repr=False)  # may be a password
    value_type: str = "String"
    location: SourceLocation | None = None


def package_configurations(package: Package) -> list[PackageConfiguration]:
    """The package's configurations in order, read from the kept ``DTS:Configuration`` nodes
    (attributes in 2012+ files, ``DTS:Property`` children before)."""
    found = []
    for node in package.configurations:
        values = {local_name(k): v for k, v in node.attrs.items()}
        for child in node.findall("Property"):
            name = child.get("Name")
            if name:
                values[name] = child.text or ""
        # 2012+ files omit default values, and the type's default is 0 (parent package variable).
        raw_type = (values.get("ConfigurationType") or "0").strip()
        found.append(
            PackageConfiguration(
                name=values.get("ObjectName", ""),
                type=int(raw_type) if raw_type.lstrip("-").isdigit() else -1,
                string=values.get("ConfigurationString", "").strip(),
                target=values.get("ConfigurationVariable", "").strip(),
                location=SourceLocation(file=package.path, line=node.line)
                if package.path
                else None,
            )
        )
    return found


XmlNode.model_rebuild()
Executable.model_rebuild()
Package.model_rebuild()
