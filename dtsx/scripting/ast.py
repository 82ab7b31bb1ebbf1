"""The language-neutral AST a Script Task's C# or VB.NET source is lowered to.

``csharp.lower`` and ``vb.lower`` build it; ``checks`` walks it at plan time and ``interpreter``
compiles it to closures. Every node carries ``line`` and ``column`` (1-based, column counted in
characters, not the parser's bytes); the file is the ``CompilationUnit``'s and each ``TypeDecl``'s
``file``. Nodes are frozen and built with keywords only.

Where C# and VB differ the difference is explicit in the tree, never in a language flag:

- ``Binary.op``: ``/`` is C#'s division (integral for integral operands, else floating), ``fdiv``
  VB's ``/`` (always floating), ``idiv`` VB's ``\\``; ``concat`` is VB's ``&``; ``pow`` VB's ``^``;
  ``==``/``!=`` are C#'s equality, ``=``/``<>`` VB's (``Nothing = ""`` is True, strings by value);
  ``is``/``isnot`` VB's reference comparison; ``like`` VB's ``Like``; ``&&``/``||`` short-circuit,
  ``&``/``|``/``^`` do not.
- ``checked`` on arithmetic, casts and compound assignment: True raises OverflowException on
  overflow (VB always, C# inside ``checked``), False wraps (C#'s default).
- ``Cast.kind``: ``cast`` is C#'s ``(T)x``; ``convert`` VB's ``CType``/``CInt``/``CStr`` (converts
  strings, rounds half to even).
- ``Invocation.maybe_index``: VB's ``a(i)`` that may be a call or an element access; decided on
  the value at run time.

A construct the lowering does not support becomes ``UnsupportedExpr``/``UnsupportedStmt``/
``UnsupportedMember`` holding what the plan-time report needs, so lowering is total and only what
``Main`` reaches is reported.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Argument",
    "ArrayCreation",
    "As",
    "Assignment",
    "Base",
    "Binary",
    "Block",
    "Break",
    "Case",
    "Cast",
    "Catch",
    "ClassDecl",
    "CollectionInitializer",
    "CompilationUnit",
    "Conditional",
    "ConstructorDecl",
    "Continue",
    "Declarator",
    "Default",
    "DoWhile",
    "ElementAccess",
    "EnumDecl",
    "EnumMember",
    "Expr",
    "ExprStmt",
    "FieldDecl",
    "For",
    "ForEach",
    "ForTo",
    "If",
    "IncDec",
    "Interpolation",
    "InterpolatedString",
    "Invocation",
    "Is",
    "Literal",
    "LocalDecl",
    "Member",
    "MemberAccess",
    "MethodDecl",
    "Name",
    "Node",
    "ObjectCreation",
    "ObjectInitializer",
    "Param",
    "PropertyDecl",
    "Return",
    "Stmt",
    "Switch",
    "SwitchSection",
    "This",
    "Throw",
    "Try",
    "TypeDecl",
    "TypeOf",
    "TypeRef",
    "Unary",
    "UnsupportedExpr",
    "UnsupportedMember",
    "UnsupportedStmt",
    "Using",
    "UsingDirective",
    "While",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """Where a node starts: 1-based script line and column (in characters)."""

    line: int
    column: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TypeRef(Node):
    """A type as written: ``name`` dotted (``System.IO.File``, ``int``, ``List``), ``args`` its
    generic arguments, ``rank`` the array dimensions of ``T[]`` (0: not an array), ``nullable`` for
    ``T?``. Resolution (usings, aliases, keywords) is the interpreter's."""

    name: str
    args: tuple[TypeRef, ...] = ()
    rank: int = 0
    nullable: bool = False


# --- expressions ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Expr(Node):
    """Base of every expression."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Literal(Expr):
    """A literal: ``value`` already the .NET value (``values.Int32(1)``, ``"s"``, ``Char('c')``,
    ``Decimal``, ``None`` for null/Nothing); ``type_name`` its .NET type (``System.Int32``), or
    ``null`` for null."""

    value: object
    type_name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Name(Expr):
    """A simple name: a local, parameter, field, property, method group, type or namespace."""

    name: str
    type_args: tuple[TypeRef, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class This(Expr):
    """``this`` / ``Me``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Base(Expr):
    """``base`` / ``MyBase``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberAccess(Expr):
    """``target.name`` (``target`` may name a type or namespace: resolved by the interpreter)."""

    target: Expr
    name: str
    type_args: tuple[TypeRef, ...] = ()
    conditional: bool = False  # ``?.``


@dataclass(frozen=True, slots=True, kw_only=True)
class ElementAccess(Expr):
    """``target[args]``: arrays, strings (a Char), indexers."""

    target: Expr
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Argument(Node):
    """One argument: ``modifier`` is ``""``, ``ref`` or ``out`` (VB ByRef arguments are plain:
    the callee's parameter decides); ``name`` for a named argument."""

    value: Expr
    modifier: str = ""
    name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Invocation(Expr):
    """``target(args)``; ``maybe_index`` for VB, where ``a(i)`` may be an element access."""

    target: Expr
    args: tuple[Argument, ...]
    maybe_index: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectInitializer(Node):
    """``new T { A = 1, B = x }`` / VB ``With {.A = 1}``: member assignments after construction."""

    members: tuple[tuple[str, Expr], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectionInitializer(Node):
    """``new List<T> { a, b }`` / ``{ {k, v} }``: one ``Add(*item)`` call per item."""

    items: tuple[tuple[Expr, ...], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectCreation(Expr):
    """``new T(args) { initializer }``."""

    type: TypeRef
    args: tuple[Argument, ...]
    initializer: ObjectInitializer | CollectionInitializer | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ArrayCreation(Expr):
    """``new T[n]`` (``sizes``), ``new T[] { a, b }`` / ``{ a, b }`` (``items``); ``element`` is
    the element type (None for an implicitly typed ``new[] { ... }``)."""

    element: TypeRef | None
    sizes: tuple[Expr, ...] = ()
    items: tuple[Expr, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Assignment(Expr):
    """``target op value``; ``op`` is ``=`` or a compound operator (``+=``, ``-=``, ``*=``, ``/=``,
    ``%=``, ``&=``, ``|=``, ``^=``, ``<<=``, ``>>=``, ``??=``, VB's ``&=`` is ``concat=``, ``\\=``
    is ``idiv=``, ``/=`` ``fdiv=``). A compound assignment casts back to the target's type."""

    target: Expr
    op: str
    value: Expr
    checked: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Unary(Expr):
    """``op operand``: ``-``, ``+``, ``!`` (C# logical not), ``~`` (complement), ``not`` (VB's
    Not: logical on Boolean, bitwise on integers)."""

    op: str
    operand: Expr
    checked: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class IncDec(Expr):
    """``++x``, ``x--``...: ``delta`` is +1 or -1; ``prefix``: the new value is the result."""

    target: Expr
    delta: int
    prefix: bool
    checked: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Binary(Expr):
    """``left op right``; the operators are listed in the module's docstring. ``??`` is here too."""

    op: str
    left: Expr
    right: Expr
    checked: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Conditional(Expr):
    """``cond ? then : otherwise`` / VB ``If(cond, a, b)``."""

    cond: Expr
    then: Expr
    otherwise: Expr


@dataclass(frozen=True, slots=True, kw_only=True)
class Cast(Expr):
    """``(T)value`` (``kind="cast"``) or VB's ``CType(value, T)``/``CInt(value)`` (``convert``)."""

    type: TypeRef
    value: Expr
    kind: str = "cast"
    checked: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class As(Expr):
    """``value as T`` / VB ``TryCast(value, T)``: the value if it is a T, else null."""

    value: Expr
    type: TypeRef


@dataclass(frozen=True, slots=True, kw_only=True)
class Is(Expr):
    """``value is T`` / VB ``TypeOf value Is T``; ``name`` for C#'s ``value is T name``."""

    value: Expr
    type: TypeRef
    name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TypeOf(Expr):
    """``typeof(T)`` / VB ``GetType(T)``."""

    type: TypeRef


@dataclass(frozen=True, slots=True, kw_only=True)
class Default(Expr):
    """``default(T)`` (``type`` None for the target-typed ``default``)."""

    type: TypeRef | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Interpolation(Node):
    """One hole of an interpolated string: ``{value,alignment:format}``."""

    value: Expr
    alignment: Expr | None = None
    format: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InterpolatedString(Expr):
    """``$"a{b}c"``: ``parts`` are literal text (braces already unescaped) and holes."""

    parts: tuple[str | Interpolation, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class UnsupportedExpr(Expr):
    """An expression the interpreter does not run: reported if ``Main`` reaches it.

    ``construct`` names the kind (``lambda``, ``LINQ query``, ``syntax error``); ``name`` the
    .NET name involved, if any; ``snippet`` the source text; ``hint`` what to do."""

    construct: str
    name: str = ""
    snippet: str = ""
    hint: str = ""


# --- statements ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Stmt(Node):
    """Base of every statement."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Block(Stmt):
    """``{ ... }``: a scope for the locals it declares."""

    statements: tuple[Stmt, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Declarator(Node):
    """One name of a declaration, with its initial value (None: default/unassigned)."""

    name: str
    init: Expr | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalDecl(Stmt):
    """``T a = 1, b;`` (``type`` None for ``var``/VB inference); ``const`` for constants."""

    type: TypeRef | None
    declarators: tuple[Declarator, ...]
    const: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ExprStmt(Stmt):
    expr: Expr


@dataclass(frozen=True, slots=True, kw_only=True)
class If(Stmt):
    cond: Expr
    then: Stmt
    otherwise: Stmt | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Case(Node):
    """One label: ``value`` (None is ``default``/``Case Else``); VB's ``Case a To b`` sets
    ``high``; VB's ``Case Is > x`` sets ``op`` (``<``, ``<=``, ``>``, ``>=``, ``<>``; ``=`` for a
    plain value)."""

    value: Expr | None
    high: Expr | None = None
    op: str = "="


@dataclass(frozen=True, slots=True, kw_only=True)
class SwitchSection(Node):
    cases: tuple[Case, ...]
    body: tuple[Stmt, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Switch(Stmt):
    """``switch``/``Select Case``: the first section with a matching label runs; C#'s ``break``
    ends it, VB's sections end by themselves."""

    value: Expr
    sections: tuple[SwitchSection, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class For(Stmt):
    """C#'s ``for (init; cond; update) body``."""

    init: tuple[Stmt, ...]
    cond: Expr | None
    update: tuple[Expr, ...]
    body: Stmt


@dataclass(frozen=True, slots=True, kw_only=True)
class ForTo(Stmt):
    """VB's ``For v = start To stop Step step``: bounds and step evaluated once, the direction by
    the step's sign; ``type`` declares ``v`` (``For i As Integer``), None to use an existing one."""

    name: str
    type: TypeRef | None
    start: Expr
    stop: Expr
    step: Expr | None
    body: Stmt
    declares: bool = False
    checked: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class ForEach(Stmt):
    """``foreach (T name in iterable)`` (``type`` None for ``var``); VB ``For Each``."""

    type: TypeRef | None
    name: str
    iterable: Expr
    body: Stmt
    declares: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class While(Stmt):
    cond: Expr
    body: Stmt


@dataclass(frozen=True, slots=True, kw_only=True)
class DoWhile(Stmt):
    """``do body while (cond);`` (VB ``Loop Until c`` lowers ``cond`` to ``Not c``)."""

    body: Stmt
    cond: Expr


@dataclass(frozen=True, slots=True, kw_only=True)
class Break(Stmt):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Continue(Stmt):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Return(Stmt):
    value: Expr | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Throw(Stmt):
    """``throw value;``; ``value`` None is the rethrow ``throw;``."""

    value: Expr | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Catch(Node):
    """``catch (T name) when (filter) { body }``; ``type`` None catches everything."""

    type: TypeRef | None
    name: str | None
    body: Block
    filter: Expr | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Try(Stmt):
    body: Block
    catches: tuple[Catch, ...] = ()
    final: Block | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Using(Stmt):
    """``using (resource) body``: ``resource`` a declaration or an expression; each non-null
    resource is disposed (``Dispose()``, else ``Close()``) however ``body`` ends."""

    resource: LocalDecl | Expr
    body: Stmt


@dataclass(frozen=True, slots=True, kw_only=True)
class UnsupportedStmt(Stmt):
    """A statement the interpreter does not run (see ``UnsupportedExpr``)."""

    construct: str
    name: str = ""
    snippet: str = ""
    hint: str = ""


# --- declarations --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Member(Node):
    """Base of a class member; ``static`` is C#'s ``static``/VB's ``Shared`` (every member of a VB
    Module)."""

    name: str
    static: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldDecl(Member):
    """One field (``int a, b;`` is two); ``const`` fields are static."""

    type: TypeRef | None
    init: Expr | None = None
    const: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Param(Node):
    """``modifier``: ``""``, ``ref`` (VB ByRef), ``out``, ``params``; ``default`` for optional."""

    name: str
    type: TypeRef | None
    modifier: str = ""
    default: Expr | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MethodDecl(Member):
    """A method (``returns`` None for void/Sub); ``body`` None for an abstract/extern one."""

    params: tuple[Param, ...]
    returns: TypeRef | None
    body: Block | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConstructorDecl(Member):
    """A constructor (``name`` is the class's); ``chain`` is ``base``/``this`` with ``chain_args``
    for ``: base(...)``/``: this(...)``."""

    params: tuple[Param, ...]
    body: Block
    chain: str | None = None
    chain_args: tuple[Argument, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PropertyDecl(Member):
    """A property: ``getter``/``setter`` bodies (the setter sees ``value``), both None with
    ``auto`` for ``{ get; set; }`` (a hidden field, initialised from ``init``)."""

    type: TypeRef | None
    getter: Block | None = None
    setter: Block | None = None
    auto: bool = False
    init: Expr | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UnsupportedMember(Member):
    """A member kind the interpreter does not run (an event, an operator, an indexer...)."""

    construct: str
    snippet: str = ""
    hint: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TypeDecl(Member):
    """Base of a type declaration: ``namespace`` its enclosing namespace (dotted, "" for none),
    ``file`` the source it is in."""

    namespace: str = ""
    file: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class EnumMember(Node):
    name: str
    value: Expr | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EnumDecl(TypeDecl):
    """``enum E { A = 1, B }``: a member without a value is the previous one plus one."""

    members: tuple[EnumMember, ...] = ()
    underlying: TypeRef | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ClassDecl(TypeDecl):
    """A class, struct or VB Module (``kind``); nested types are among ``members``."""

    kind: str = "class"
    bases: tuple[TypeRef, ...] = ()
    members: tuple[Member, ...] = ()
    partial: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class UsingDirective(Node):
    """``using A.B;`` (``alias`` None) or ``using X = A.B;``; VB ``Imports``; ``static`` for C#'s
    ``using static``."""

    target: str
    alias: str | None = None
    static: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class CompilationUnit(Node):
    """One source file: its usings (file level and inside namespaces) and its types, each with
    its namespace. ``syntax_errors`` are what lowering could not place in the tree; ``ignore_case``
    makes names case-insensitive (VB: identifiers, members, types)."""

    file: str
    usings: tuple[UsingDirective, ...]
    types: tuple[TypeDecl, ...]
    syntax_errors: tuple[UnsupportedStmt, ...] = ()
    ignore_case: bool = False
