"""AST node classes. Every node keeps the offset of the token that an error should point at."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .datatypes import TypeSpec

__all__ = [
    "Node",
    "Literal",
    "Variable",
    "Unary",
    "Binary",
    "Conditional",
    "Cast",
    "NullOf",
    "Call",
    "Assignment",
    "walk",
]


@dataclass(frozen=True, slots=True, eq=False)
class Node:
    offset: int


@dataclass(frozen=True, slots=True, eq=False)
class Literal(Node):
    dtype: str
    value: Any


@dataclass(frozen=True, slots=True, eq=False)
class Variable(Node):
    name: str


@dataclass(frozen=True, slots=True, eq=False)
class Unary(Node):
    op: str
    operand: Node


@dataclass(frozen=True, slots=True, eq=False)
class Binary(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True, eq=False)
class Conditional(Node):
    condition: Node
    when_true: Node
    when_false: Node


@dataclass(frozen=True, slots=True, eq=False)
class Cast(Node):
    spec: TypeSpec
    operand: Node


@dataclass(frozen=True, slots=True, eq=False)
class NullOf(Node):
    spec: TypeSpec


@dataclass(frozen=True, slots=True, eq=False)
class Call(Node):
    name: str  # upper-cased
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True, eq=False)
class Assignment(Node):
    target: Variable
    expression: Node


def walk(node: Node) -> list[Node]:
    """Every node of the tree, parents before children."""
    out: list[Node] = []
    stack = [node]
    while stack:
        current = stack.pop()
        out.append(current)
        if isinstance(current, Unary):
            stack.append(current.operand)
        elif isinstance(current, Binary):
            stack.extend((current.right, current.left))
        elif isinstance(current, Conditional):
            stack.extend((current.when_false, current.when_true, current.condition))
        elif isinstance(current, Cast):
            stack.append(current.operand)
        elif isinstance(current, Call):
            stack.extend(reversed(current.args))
        elif isinstance(current, Assignment):
            stack.extend((current.expression, current.target))
    return out
