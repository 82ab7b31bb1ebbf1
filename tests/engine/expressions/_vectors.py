"""Shared helpers for the expression tests: where /work/shared is, and the vector table."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from typing import Any

from tests._shared import shared_dir

__all__ = ["load_vectors", "Vector"]


class Vector:
    def __init__(self, row: dict[str, str]) -> None:
        self.id = row["id"]
        self.expression = row["expression"]
        self.variables: dict[str, list[Any]] = json.loads(row["variables"])
        raw = row["expected_result"]
        self.sentinel = raw if raw in ("ERROR", "TYPE_ONLY") else None
        self.expected: Any = None if self.sentinel else json.loads(raw, parse_float=Decimal)
        self.expected_text = raw
        self.expected_type = row["expected_type"]
        self.source = row["source"]

    def __repr__(self) -> str:
        return self.id


def load_vectors() -> list[Vector]:
    base = shared_dir()
    if base is None or not (base / "vectors" / "expressions.tsv").exists():
        return []
    with open(base / "vectors" / "expressions.tsv", encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [Vector(row) for row in reader]
