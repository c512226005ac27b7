"""SQL constructs compiled differently on SQLite and PostgreSQL (for the statistics queries)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from store.types import UTCDateTime


class elapsed_seconds(FunctionElement[float]):  # noqa: N801 - reads like the SQL function it is
    """Seconds from timestamp `start` to timestamp `end`, as a float, on either backend."""

    type = Float()
    name = "elapsed_seconds"
    inherit_cache = True


@compiles(elapsed_seconds)
def _elapsed_sqlite(element: elapsed_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps julian days as integer milliseconds: round back to exact milliseconds
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"(ROUND((julianday({end}) - julianday({start})) * 86400000.0) / 1000.0)"


@compiles(elapsed_seconds, "postgresql")
def _elapsed_postgres(element: elapsed_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(EXTRACT(EPOCH FROM ({end} - {start})) AS DOUBLE PRECISION)"


class unindexed(FunctionElement[datetime]):  # noqa: N801
    """A timestamp column the SQLite planner must not use an index for (unary `+`).

    For a window holding most of the table, walking the `triggered_at` index visits the rows
    in time order, i.e. in random page order, which is several times slower than one
    sequential scan once the table outgrows SQLite's page cache. PostgreSQL's planner makes
    that choice itself from its statistics.
    """

    type = UTCDateTime()
    name = "unindexed"
    inherit_cache = True


@compiles(unindexed)
def _unindexed_sqlite(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = (compiler.process(c, **kw) for c in element.clauses)
    return f"+{column}"


@compiles(unindexed, "postgresql")
def _unindexed_postgres(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = (compiler.process(c, **kw) for c in element.clauses)
    return column


__all__ = ["elapsed_seconds", "unindexed"]
