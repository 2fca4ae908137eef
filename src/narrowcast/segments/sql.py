"""SQL pieces whose spelling differs between SQLite and PostgreSQL.

Each is a small ``FunctionElement`` compiled per dialect, so the compiler
builds one expression tree and SQLAlchemy renders each database's own SQL:

* ``WholeDaysSince(now, ts)`` — floor of the days between two instants, to
  the microsecond on both databases;
* ``AgeInYears(today, born)`` — whole years, a 29 February birthday
  counted on 1 March in other years;
* ``IsoDate(value)`` — a calendar date as ``YYYY-MM-DD`` text. Dates are
  compared as ISO text everywhere: it orders like the dates themselves, and
  an imported attribute that holds text can never make PostgreSQL fail
  half-way through a segment with a cast error;
* ``DaysBetween(now, ts)`` — the same as a fraction, for time decay;
* ``UtcDay(ts)``, ``UtcHour(ts)`` — the UTC day / hour of an instant as ISO text;
* ``json_property(table, name, kind)`` — a property of the ``properties``
  JSON, with the name bound as a parameter, never spliced into the SQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, FromClause, String, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

# SQLite keeps instants as 'YYYY-MM-DD HH:MM:SS.ffffff' text (see store.schema.UtcInstant).
_SQLITE_MICROS = (
    "(CAST(strftime('%s', substr({0}, 1, 19)) AS INTEGER) * 1000000"
    " + CAST(substr({0}, 21, 6) AS INTEGER))"
)
_MICROS_PER_DAY = 86_400_000_000


class WholeDaysSince(FunctionElement[float]):
    """floor((now − ts) in days), for a ts ≤ now."""

    inherit_cache = True
    type = Float()


@compiles(WholeDaysSince, "sqlite")
def _days_sqlite(element: WholeDaysSince, compiler: SQLCompiler, **kw: Any) -> str:
    now, ts = (compiler.process(c, **kw) for c in element.clauses)
    # julianday() keeps only milliseconds, so whole seconds come from strftime on the
    # text without its fraction and the microseconds from the text itself. The
    # difference is never negative (ts ≤ now), so integer division is floor.
    return f"(({_SQLITE_MICROS.format(now)} - {_SQLITE_MICROS.format(ts)}) / {_MICROS_PER_DAY})"


@compiles(WholeDaysSince, "postgresql")
def _days_postgresql(element: WholeDaysSince, compiler: SQLCompiler, **kw: Any) -> str:
    now, ts = (compiler.process(c, **kw) for c in element.clauses)
    return f"floor(extract(epoch FROM ({now} - {ts})) / 86400)"


class AgeInYears(FunctionElement[float]):
    """Whole years between a birth date and a date."""

    inherit_cache = True
    type = Float()


@compiles(AgeInYears, "sqlite")
def _age_sqlite(element: AgeInYears, compiler: SQLCompiler, **kw: Any) -> str:
    today, born = (compiler.process(c, **kw) for c in element.clauses)
    return (
        f"(CAST(strftime('%Y', {today}) AS INTEGER) - CAST(strftime('%Y', {born}) AS INTEGER)"
        f" - (strftime('%m-%d', {today}) < strftime('%m-%d', {born})))"
    )


@compiles(AgeInYears, "postgresql")
def _age_postgresql(element: AgeInYears, compiler: SQLCompiler, **kw: Any) -> str:
    today, born = (compiler.process(c, **kw) for c in element.clauses)
    return f"date_part('year', age({today}, {born}))"


class IsoDate(FunctionElement[str]):
    """A DATE column as 'YYYY-MM-DD' text."""

    inherit_cache = True
    type = String()


@compiles(IsoDate, "sqlite")
def _iso_sqlite(element: IsoDate, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite already stores DATE as ISO text.
    return compiler.process(element.clauses, **kw)


@compiles(IsoDate, "postgresql")
def _iso_postgresql(element: IsoDate, compiler: SQLCompiler, **kw: Any) -> str:
    return f"to_char({compiler.process(element.clauses, **kw)}, 'YYYY-MM-DD')"


def json_property(table: FromClause, name: str, kind: str, column: str = "properties") -> Any:
    """``table.<column>[name]`` read as ``kind`` (number, bool, or text)."""
    if '"' in name:
        return _QuotedKey(table.c[column], literal(name), literal(kind))
    prop = table.c[column][name]
    if kind == "number":
        return prop.as_float()
    if kind == "bool":
        return prop.as_boolean()
    return prop.as_string()


class _QuotedKey(FunctionElement[Any]):
    """A JSON key containing a double quote.

    SQLAlchemy writes SQLite's JSON path as '$."name"', and SQLite has no escape
    for a quote inside it, so such a key would always read as missing; SQLite
    looks the key up with json_each instead (slower, and such names are rare).
    """

    inherit_cache = True


@compiles(_QuotedKey, "sqlite")
def _quoted_sqlite(element: _QuotedKey, compiler: SQLCompiler, **kw: Any) -> str:
    document_c, name_c, _kind = element.clauses  # the kind is not rendered: no bind for it
    document, name = compiler.process(document_c, **kw), compiler.process(name_c, **kw)
    return f"(SELECT value FROM json_each({document}) WHERE key = {name})"


@compiles(_QuotedKey, "postgresql")
def _quoted_postgresql(element: _QuotedKey, compiler: SQLCompiler, **kw: Any) -> str:
    document_c, name_c, kind_c = element.clauses
    document, name = compiler.process(document_c, **kw), compiler.process(name_c, **kw)
    kind = kind_c.value  # a literal: read here, never bound
    text = f"({document} ->> {name})"
    if kind == "number":
        return f"CAST({text} AS FLOAT)"
    if kind == "bool":
        return f"CAST({text} AS BOOLEAN)"
    return text


class DaysBetween(FunctionElement[float]):
    """(now − ts) in days, fractional, to the microsecond."""

    inherit_cache = True
    type = Float()


@compiles(DaysBetween, "sqlite")
def _between_sqlite(element: DaysBetween, compiler: SQLCompiler, **kw: Any) -> str:
    now, ts = (compiler.process(c, **kw) for c in element.clauses)
    return f"(({_SQLITE_MICROS.format(now)} - {_SQLITE_MICROS.format(ts)}) / {_MICROS_PER_DAY}.0)"


@compiles(DaysBetween, "postgresql")
def _between_postgresql(element: DaysBetween, compiler: SQLCompiler, **kw: Any) -> str:
    now, ts = (compiler.process(c, **kw) for c in element.clauses)
    return f"(extract(epoch FROM ({now} - {ts})) / 86400.0)"


class UtcDay(FunctionElement[str]):
    """The UTC calendar day of an instant, as 'YYYY-MM-DD' text."""

    inherit_cache = True
    type = String()


@compiles(UtcDay, "sqlite")
def _day_sqlite(element: UtcDay, compiler: SQLCompiler, **kw: Any) -> str:
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 10)"


@compiles(UtcDay, "postgresql")
def _day_postgresql(element: UtcDay, compiler: SQLCompiler, **kw: Any) -> str:
    ts = compiler.process(element.clauses, **kw)
    return f"to_char({ts} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


class UtcHour(FunctionElement[str]):
    """The UTC hour of an instant, as 'YYYY-MM-DD HH' text."""

    inherit_cache = True
    type = String()


@compiles(UtcHour, "sqlite")
def _hour_sqlite(element: UtcHour, compiler: SQLCompiler, **kw: Any) -> str:
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 13)"


@compiles(UtcHour, "postgresql")
def _hour_postgresql(element: UtcHour, compiler: SQLCompiler, **kw: Any) -> str:
    ts = compiler.process(element.clauses, **kw)
    return f"to_char({ts} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24')"


class PlusInterval(FunctionElement[Any]):
    """An instant plus a number of seconds, in the instant's own stored form."""

    inherit_cache = True


@compiles(PlusInterval, "sqlite")
def _plus_sqlite(element: PlusInterval, compiler: SQLCompiler, **kw: Any) -> str:
    ts, seconds = (compiler.process(c, **kw) for c in element.clauses)
    # strftime's %f has milliseconds; pad to the microseconds instants are stored with.
    return f"(strftime('%Y-%m-%d %H:%M:%f', {ts}, ({seconds}) || ' seconds') || '000')"


@compiles(PlusInterval, "postgresql")
def _plus_postgresql(element: PlusInterval, compiler: SQLCompiler, **kw: Any) -> str:
    ts, seconds = (compiler.process(c, **kw) for c in element.clauses)
    return f"({ts} + ({seconds}) * interval '1 second')"
