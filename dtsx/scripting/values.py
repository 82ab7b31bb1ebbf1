""".NET values as a script sees them, the .NET exceptions, and the registry of .NET types.

This module is the contract between the three parts that run a Script Task: the interpreter
(``interpreter``), the base class library shims (``bcl_*``, one module per area, each registering
its types here when imported) and the task that runs a script, which provides the ``ScriptHost``.

Representation (chosen so that most values are plain Python objects and cost nothing to pass):

=====================  ==========================================
.NET                   Python
=====================  ==========================================
System.Boolean         bool
System.String          str
System.Char            ``Char`` (a one-character str subclass)
System.SByte … UInt64  ``SByte`` … ``UInt64`` (int subclasses that know their width)
System.Double          float
System.Single          ``Single`` (a float subclass)
System.Decimal         decimal.Decimal (``DECIMAL_CONTEXT``: 28 significant digits, half-even)
System.DateTime        datetime.datetime (naive; .NET's 100 ns ticks become microseconds)
System.TimeSpan        datetime.timedelta
System.DBNull          ``DBNULL``
an enum member         ``EnumValue`` (an int subclass; ``make_enum`` builds the type)
null                   None
T[]                    ``DotNetArray``
any other class        a ``DotNetObject`` subclass registered under its .NET full name
=====================  ==========================================

Members. A .NET type is a Python class registered under its full name (``System.IO.File``;
generic types with their arity, ``System.Collections.Generic.List`1``). Its static members are
the class's attributes, spelt as in .NET: constants are plain class attributes, computed static
properties are ``static_property`` (``DateTime.Now``), static methods are ``staticmethod``\\ s.
``new T(args)`` calls ``T.New(*args)`` when the class defines ``New`` (for types represented by
Python built-ins, such as DateTime), else ``T(*args)``. Instances of ``DotNetObject`` subclasses
expose their instance members as Python attributes (properties for .NET properties, methods for
methods); an indexer is ``__getitem__``/``__setitem__`` and ``foreach`` is ``__iter__``. For the
values represented by Python built-ins, ``register_instance_members(python_type, shim)`` names a
class whose functions take the receiver first; the ones that are .NET properties are marked with
``dotnet_property``. Overloads are resolved by the Python function from its arguments. A ``ref``
or ``out`` argument is passed as a ``Ref`` whose ``value`` the callee reads and sets.

Errors. Shims raise .NET exceptions (``raise exception_class("System.IO.IOException")(msg)``),
never bare Python ones, so that a script's ``catch`` sees the type it names.
"""

from __future__ import annotations

import contextlib
import contextvars
import decimal
import importlib
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

if TYPE_CHECKING:
    from typing import Self

__all__ = [
    "BCL_MODULES",
    "Byte",
    "Char",
    "DBNULL",
    "DECIMAL_CONTEXT",
    "DotNetArray",
    "DotNetException",
    "DotNetObject",
    "EnumValue",
    "Int16",
    "Int32",
    "Int64",
    "IntegralValue",
    "Ref",
    "SByte",
    "ScriptHost",
    "Single",
    "UInt16",
    "UInt32",
    "UInt64",
    "current_host",
    "dotnet_property",
    "exception_class",
    "instance_members",
    "is_dotnet_property",
    "load_types",
    "lookup_type",
    "make_enum",
    "register_instance_members",
    "register_type",
    "static_property",
    "type_names",
    "use_host",
]


# --- numbers -------------------------------------------------------------------------------


class IntegralValue(int):
    """An integral .NET value: an int that knows its type's width and signedness."""

    NAME: ClassVar[str] = ""
    BITS: ClassVar[int] = 0
    SIGNED: ClassVar[bool] = True
    MIN: ClassVar[int] = 0
    MAX: ClassVar[int] = 0

    def __init_subclass__(cls, *, name: str = "", bits: int = 0, signed: bool = True) -> None:
        super().__init_subclass__()
        cls.NAME, cls.BITS, cls.SIGNED = name, bits, signed
        cls.MIN = -(1 << (bits - 1)) if signed else 0
        cls.MAX = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1

    @classmethod
    def wrap(cls, number: int) -> Self:
        """C#'s unchecked conversion: keep the low ``BITS`` bits (two's complement)."""
        low = number & ((1 << cls.BITS) - 1)
        if cls.SIGNED and low > cls.MAX:
            low -= 1 << cls.BITS
        return cls(low)

    @classmethod
    def checked(cls, number: int) -> Self:
        """A checked conversion (C# ``checked``, VB always): OverflowException out of range."""
        if not cls.MIN <= number <= cls.MAX:
            raise exception_class("System.OverflowException")(
                "Arithmetic operation resulted in an overflow."
            )
        return cls(number)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({int(self)})"


class SByte(IntegralValue, name="System.SByte", bits=8):
    pass


class Byte(IntegralValue, name="System.Byte", bits=8, signed=False):
    pass


class Int16(IntegralValue, name="System.Int16", bits=16):
    pass


class UInt16(IntegralValue, name="System.UInt16", bits=16, signed=False):
    pass


class Int32(IntegralValue, name="System.Int32", bits=32):
    pass


class UInt32(IntegralValue, name="System.UInt32", bits=32, signed=False):
    pass


class Int64(IntegralValue, name="System.Int64", bits=64):
    pass


class UInt64(IntegralValue, name="System.UInt64", bits=64, signed=False):
    pass


class Single(float):
    """System.Single; arithmetic on it is done in double, as the CLR may."""

    def __repr__(self) -> str:
        return f"Single({float(self)!r})"


class Char(str):
    """System.Char: one UTF-16 code unit (a one-character str here)."""

    def __repr__(self) -> str:
        return f"Char({str(self)!r})"


# .NET's decimal has 28-29 significant digits and rounds half to even (MidpointRounding.ToEven).
DECIMAL_CONTEXT = decimal.Context(prec=28, rounding=decimal.ROUND_HALF_EVEN)


class _DBNull:
    """System.DBNull.Value: what a NULL database field holds; ToString() is the empty string."""

    _instance: ClassVar[_DBNull | None] = None

    def __new__(cls) -> _DBNull:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "DBNull.Value"


DBNULL = _DBNull()


class EnumValue(int):
    """A member of a .NET enum: compares and converts as its underlying integer, prints its name."""

    ENUM_NAME: ClassVar[str] = ""
    _names: ClassVar[dict[int, str]] = {}

    def ToString(self) -> str:  # noqa: N802
        return self._names.get(int(self), str(int(self)))

    def __repr__(self) -> str:
        return f"{self.ENUM_NAME}.{self.ToString()}"


def make_enum(name: str, members: dict[str, int]) -> type[EnumValue]:
    """A .NET enum type ``name`` whose attributes are its members (``ScriptResults.Success``)."""
    short = name.rsplit(".", 1)[-1]
    names = {value: member for member, value in reversed(members.items())}
    cls = type(short, (EnumValue,), {"ENUM_NAME": name, "_names": names})
    for member, value in members.items():
        setattr(cls, member, cls(value))
    return cls


# --- objects, arrays, ref cells ------------------------------------------------------------


class DotNetObject:
    """Base of every reference type a shim implements. ``DOTNET_NAME`` is its .NET full name."""

    DOTNET_NAME: ClassVar[str] = "System.Object"

    def ToString(self) -> str:  # noqa: N802 - .NET's own member name
        return self.DOTNET_NAME

    def GetType(self) -> str:  # noqa: N802
        return self.DOTNET_NAME


class DotNetArray(DotNetObject):
    """A one-dimensional .NET array: fixed length, typed elements, IndexOutOfRangeException."""

    DOTNET_NAME = "System.Array"

    def __init__(self, element_type: str, items: list[Any]) -> None:
        self.element_type = element_type
        self.items = items

    @property
    def Length(self) -> Int32:  # noqa: N802
        return Int32(len(self.items))

    def _index(self, index: object) -> int:
        if not isinstance(index, int) or not 0 <= index < len(self.items):
            raise exception_class("System.IndexOutOfRangeException")(
                "Index was outside the bounds of the array."
            )
        return int(index)

    def __getitem__(self, index: object) -> Any:
        return self.items[self._index(index)]

    def __setitem__(self, index: object, value: Any) -> None:
        self.items[self._index(index)] = value

    def __iter__(self) -> Iterator[Any]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def ToString(self) -> str:  # noqa: N802
        return f"{self.element_type}[]"


class Ref:
    """A ``ref``/``out`` argument: the callee reads and sets ``value``."""

    __slots__ = ("value",)

    def __init__(self, value: Any = None) -> None:
        self.value = value


# --- exceptions ----------------------------------------------------------------------------


class DotNetException(DotNetObject, Exception):
    """System.Exception, and through ``exception_class`` every .NET exception type."""

    DOTNET_NAME = "System.Exception"
    DEFAULT_MESSAGE: ClassVar[str] = "Exception of type 'System.Exception' was thrown."

    def __init__(self, message: str | None = None, inner: BaseException | None = None) -> None:
        self.message = self.DEFAULT_MESSAGE if message is None else message
        self.inner = inner
        self.script_line: int | None = None  # where it was thrown, set by the interpreter
        super().__init__(self.message)

    @classmethod
    def New(cls, message: str | None = None, inner: BaseException | None = None) -> Self:  # noqa: N802
        return cls(message, inner)

    @property
    def Message(self) -> str:  # noqa: N802
        return self.message

    @property
    def InnerException(self) -> BaseException | None:  # noqa: N802
        return self.inner

    @property
    def StackTrace(self) -> str:  # noqa: N802
        return (
            "" if self.script_line is None else f"   at ScriptMain.Main() line {self.script_line}"
        )

    def ToString(self) -> str:  # noqa: N802
        return f"{self.DOTNET_NAME}: {self.message}"


# Each exception type and its base, as .NET's documentation draws the hierarchy. A name that is not
# here is still creatable (its base is System.Exception), so scripts can name rarer types.
_EXCEPTION_BASES: dict[str, str] = {
    "System.SystemException": "System.Exception",
    "System.ApplicationException": "System.Exception",
    "System.ArgumentException": "System.SystemException",
    "System.ArgumentNullException": "System.ArgumentException",
    "System.ArgumentOutOfRangeException": "System.ArgumentException",
    "System.ArithmeticException": "System.SystemException",
    "System.DivideByZeroException": "System.ArithmeticException",
    "System.OverflowException": "System.ArithmeticException",
    "System.FormatException": "System.SystemException",
    "System.IndexOutOfRangeException": "System.SystemException",
    "System.InvalidCastException": "System.SystemException",
    "System.InvalidOperationException": "System.SystemException",
    "System.NotImplementedException": "System.SystemException",
    "System.NotSupportedException": "System.SystemException",
    "System.NullReferenceException": "System.SystemException",
    "System.ObjectDisposedException": "System.InvalidOperationException",
    "System.OperationCanceledException": "System.SystemException",
    "System.TimeoutException": "System.SystemException",
    "System.UnauthorizedAccessException": "System.SystemException",
    "System.Collections.Generic.KeyNotFoundException": "System.SystemException",
    "System.IO.IOException": "System.SystemException",
    "System.IO.FileNotFoundException": "System.IO.IOException",
    "System.IO.DirectoryNotFoundException": "System.IO.IOException",
    "System.IO.PathTooLongException": "System.IO.IOException",
    "System.IO.EndOfStreamException": "System.IO.IOException",
    "System.Data.DataException": "System.SystemException",
    "System.Data.Common.DbException": "System.Runtime.InteropServices.ExternalException",
    "System.Runtime.InteropServices.ExternalException": "System.SystemException",
    "System.Data.SqlClient.SqlException": "System.Data.Common.DbException",
    "System.Data.OleDb.OleDbException": "System.Data.Common.DbException",
    "System.Data.Odbc.OdbcException": "System.Data.Common.DbException",
    "System.Reflection.TargetInvocationException": "System.ApplicationException",
    "System.Threading.ThreadInterruptedException": "System.SystemException",
}

_exception_classes: dict[str, type[DotNetException]] = {"System.Exception": DotNetException}
_exception_lock = threading.RLock()  # re-entered: a class is made after its base


def exception_class(name: str) -> type[DotNetException]:
    """The Python class of the .NET exception type ``name`` (a full name), made on first use.

    ``isinstance`` follows .NET's hierarchy, so ``catch (IOException)`` catches a
    FileNotFoundException."""
    found = _exception_classes.get(name)
    if found is not None:
        return found
    with _exception_lock:
        found = _exception_classes.get(name)
        if found is None:
            base = exception_class(_EXCEPTION_BASES.get(name, "System.Exception"))
            short = name.rsplit(".", 1)[-1]
            found = type(
                short,
                (base,),
                {"DOTNET_NAME": name, "DEFAULT_MESSAGE": f"Exception of type '{name}' was thrown."},
            )
            _exception_classes[name] = found
    return found


# --- the type registry ---------------------------------------------------------------------

_TYPES: dict[str, type] = {}
_INSTANCE_MEMBERS: dict[type, type] = {}

# The shim modules, imported once by load_types(); each registers its types at import.
BCL_MODULES: tuple[str, ...] = (
    "dtsx.scripting.bcl_core",
    "dtsx.scripting.bcl_io",
    "dtsx.scripting.bcl_regex",
    "dtsx.scripting.bcl_text",
    "dtsx.scripting.bcl_data",
    "dtsx.scripting.bcl_threading",
)
_loaded = False
_load_lock = threading.Lock()

_T = TypeVar("_T", bound=type)


def register_type(name: str, cls: _T) -> _T:
    """Register ``cls`` as the .NET type ``name`` (full name; generics as ``List`1``)."""
    if name in _TYPES and _TYPES[name] is not cls:
        raise ValueError(f".NET type {name} is registered twice")
    _TYPES[name] = cls
    return cls


def register_instance_members(python_type: type, shim: type) -> None:
    """The instance members of values represented by ``python_type`` (str, int, datetime...)."""
    _INSTANCE_MEMBERS[python_type] = shim


def instance_members(value: object) -> type | None:
    """The shim for ``value``'s instance members, by its Python type's MRO (Int32 finds int's)."""
    for klass in type(value).__mro__:
        shim = _INSTANCE_MEMBERS.get(klass)
        if shim is not None:
            return shim
    return None


def lookup_type(name: str) -> type | None:
    """The class registered as the .NET type ``name``, or None; loads the shims first."""
    load_types()
    found = _TYPES.get(name)
    if found is None and name.startswith("System.") and name in _EXCEPTION_NAMES:
        return exception_class(name)
    return found


_EXCEPTION_NAMES = frozenset(_EXCEPTION_BASES) | {"System.Exception"}


def type_names() -> frozenset[str]:
    """Every registered .NET type name (the known exception types included)."""
    load_types()
    return frozenset(_TYPES) | _EXCEPTION_NAMES


def load_types() -> None:
    """Import every shim module once, so that their types are registered."""
    global _loaded
    if _loaded:
        return
    with _load_lock:
        if not _loaded:
            for module in BCL_MODULES:
                importlib.import_module(module)
            _loaded = True


_F = TypeVar("_F", bound=Callable[..., Any])


def dotnet_property(function: _F) -> _F:
    """Mark a receiver-first shim function as a .NET property (``s.Length``, ``d.Year``)."""
    function.__dotnet_property__ = True  # type: ignore[attr-defined]
    return function


def is_dotnet_property(member: object) -> bool:
    return bool(getattr(member, "__dotnet_property__", False))


class static_property:  # noqa: N801 - used as a decorator, like property
    """A computed static property of a registered type (``DateTime.Now``): read, never called."""

    def __init__(self, getter: Callable[[], Any]) -> None:
        self.getter = getter

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        return self.getter()


# --- the host ------------------------------------------------------------------------------


class ScriptHost(Protocol):
    """What the running task gives a script's library calls (``current_host()``)."""

    @property
    def culture(self) -> Any:
        """The ``dtsx.scripting.cultures.Culture`` of the script thread (``--culture``)."""
        ...

    def map_path(self, path: str) -> str:
        """A Windows path the script names, through ``--path-map``, as a local path."""
        ...

    def sleep(self, seconds: float) -> None:
        """Thread.Sleep: wait, returning early by raising if the run is canceled."""
        ...

    def message_box(self, text: str, caption: str) -> None:
        """MessageBox.Show / MsgBox: an information event, never a window."""
        ...

    def database(self, connection: object) -> Any:
        """A database lease for ADO.NET shims: ``connection`` is a connection manager's name or
        ID, or a connection string the package's connection managers are matched against."""
        ...

    def canceled(self) -> bool:
        """Whether the run was canceled: the interpreter asks every 1,024 loop iterations (with
        ``getattr``, so a host without it still works) and raises OperationCanceledException."""
        ...


_HOST: contextvars.ContextVar[ScriptHost] = contextvars.ContextVar("dtsx_script_host")


def current_host() -> ScriptHost:
    """The host of the script running on this thread."""
    try:
        return _HOST.get()
    except LookupError:
        raise RuntimeError(
            "no script is running on this thread (use_host was not entered)"
        ) from None


@contextlib.contextmanager
def use_host(host: ScriptHost) -> Iterator[ScriptHost]:
    """Make ``host`` the current host while a script runs."""
    token = _HOST.set(host)
    try:
        yield host
    finally:
        _HOST.reset(token)
