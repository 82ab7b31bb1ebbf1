"""The value a full result set puts into an Object variable: tables of named columns and rows.

SSIS hands out two shapes (spec §2.5, §2.6): native connections (OLE DB, ODBC, ADO) give an ADO
*Recordset* — one table, read forward only, so a second Foreach ADO loop over the same variable
sees no rows — and ADO.NET gives a *DataSet* — tables that re-iterate. :class:`Recordset` is both,
told apart by ``forward_only``. The Foreach ADO enumerator walks it by row or by table; Script Tasks
and the Data Flow's Recordset Destination will read and build the same value.

Only the standard library here: this module sits at the foundation and imports nothing else.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Column", "Table", "Recordset"]


@dataclass(frozen=True)
class Column:
    """One result column: its name (``""`` for an unnamed ``COUNT(*)``) and the driver's type
    code from ``cursor.description`` (kept as the driver gave it, for readers that want it)."""

    name: str
    type_code: Any = None


class Table:
    """A DataTable: columns and rows (tuples). Always re-iterable."""

    __slots__ = ("name", "columns", "rows")

    def __init__(
        self, columns: Sequence[Column], rows: Sequence[Sequence[Any]], name: str = "Table"
    ) -> None:
        self.name = name
        self.columns: tuple[Column, ...] = tuple(columns)
        self.rows: list[tuple[Any, ...]] = [tuple(r) for r in rows]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column_index(self, name: str) -> int | None:
        """The ordinal of the column called ``name`` (case-insensitive, as SSIS matches), or
        None."""
        wanted = name.lower()
        return next((i for i, c in enumerate(self.columns) if c.name.lower() == wanted), None)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.rows)

    def __repr__(self) -> str:
        return f"Table({self.name!r}, columns={self.column_names!r}, rows={len(self.rows)})"


class Recordset:
    """A full result set: one or more :class:`Table`.

    ``forward_only=True`` (an ADO Recordset): the rows can be read once; reading them again gives
    none, as a second loop over an ADO Recordset does in SSIS. ``forward_only=False`` (a DataSet):
    every read starts again from the first row. Build with :meth:`recordset` or :meth:`dataset`.
    """

    def __init__(self, tables: Sequence[Table], *, forward_only: bool) -> None:
        self.tables: tuple[Table, ...] = tuple(tables)
        self.forward_only = forward_only
        self._read = False
        self._lock = threading.Lock()  # two loops in parallel tasks must not both get the rows

    @classmethod
    def recordset(cls, columns: Sequence[Column], rows: Sequence[Sequence[Any]]) -> Recordset:
        """An ADO Recordset (OLE DB, ODBC, ADO): one table, read once."""
        return cls([Table(columns, rows)], forward_only=True)

    @classmethod
    def dataset(cls, tables: Sequence[Table]) -> Recordset:
        """An ADO.NET DataSet: tables, re-iterable."""
        return cls(tables, forward_only=False)

    @property
    def columns(self) -> tuple[Column, ...]:
        """The first table's columns (none when there is no table)."""
        return self.tables[0].columns if self.tables else ()

    @property
    def rows(self) -> list[tuple[Any, ...]]:
        """The first table's rows, without consuming them (for inspection and tests)."""
        return self.tables[0].rows if self.tables else []

    def _take(self) -> bool:
        """Whether the rows may be read now; a forward-only set is then used up."""
        if not self.forward_only:
            return True
        with self._lock:
            if self._read:
                return False
            self._read = True
            return True

    def first_table_rows(self) -> list[tuple[Any, ...]]:
        """EnumerateRowsInFirstTable: the first table's rows."""
        return list(self.rows) if self._take() else []

    def all_rows(self) -> list[tuple[Any, ...]]:
        """EnumerateAllRows: every table's rows, table after table."""
        if not self._take():
            return []
        return [row for table in self.tables for row in table.rows]

    def all_tables(self) -> list[Table]:
        """EnumerateTables: the tables of a DataSet. A Recordset has no tables to give: SSIS
        yields its rows instead, so callers ask :attr:`forward_only` first."""
        return list(self.tables)

    def __deepcopy__(self, memo: dict[int, Any]) -> Recordset:
        # The lock cannot be copied; the copy shares the (never mutated) tables and the read state.
        copied = Recordset(self.tables, forward_only=self.forward_only)
        copied._read = self._read
        return copied

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        """The first table's rows (consuming a forward-only set), so code that treats an Object
        variable as a list of rows keeps working."""
        return iter(self.first_table_rows())

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        kind = "Recordset" if self.forward_only else "DataSet"
        shapes = ", ".join(
            f"{t.name}: {len(t.columns)} columns x {len(t.rows)} rows" for t in self.tables
        )
        return f"{kind}({shapes})"
