"""The group commit's hot statements, run on the DB-API cursor below SQLAlchemy's execution layer.

Called by `issuance.taken` / `issuance.insert_certificates`, `publication.insert_new_ocsp` and
`audit` (lock and read the head, insert events, move the head) inside a transaction that
`Ledger._write` began through SQLAlchemy: the same connection and the same transaction, so
SQLite's `BEGIN IMMEDIATE` (engine.py), PostgreSQL's row lock, COMMIT and ROLLBACK are
SQLAlchemy's as before. Why: a Core statement costs 30-90 µs of CPU in SQLAlchemy (cache key,
execution context, parameter and result processing) against ~3 µs on the cursor; a group
commit of any size is six statements here on either backend (PostgreSQL reads the audit head
with its lock, SQLite apart from its BEGIN IMMEDIATE), each one multi-row:
bench/bench_ledger_batch.py measures the difference.

What keeps every stored byte the same as a Core statement's:
- values go through the bind processors SQLAlchemy itself applies for the column's type
  (`Insert.row`), e.g. `schema.UTCDateTime` → SQLite's `YYYY-MM-DD HH:MM:SS.ffffff` text;
- the SQL names the same columns; placeholders are positional: `?` for sqlite3 (qmark),
  `%s` for psycopg (format; SQLAlchemy's psycopg dialect uses pyformat, which psycopg reads
  the same way);
- DB-API errors are raised as SQLAlchemy's (`sa.exc.IntegrityError`, `OperationalError`, ...)
  and a lost connection is invalidated, as `Connection.execute` does;
- when anyone listens to `before_cursor_execute` / `after_cursor_execute` on the engine (tests
  inject failures that way), statements go through `Connection.exec_driver_sql`, which fires
  those events. SQLAlchemy's statement logging (`echo`) is bypassed: padlock never turns it on.
"""

from __future__ import annotations

import dataclasses
import functools
import typing

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

Processor: typing.TypeAlias = typing.Callable[[typing.Any], typing.Any] | None
Params: typing.TypeAlias = typing.Sequence[typing.Any]


def placeholder(dialect: Dialect) -> str:
    """The positional placeholder of the dialect's DB-API driver."""
    if dialect.paramstyle == "qmark":
        return "?"
    if dialect.paramstyle in ("format", "pyformat"):
        return "%s"
    raise NotImplementedError(f"ledger: DB-API paramstyle {dialect.paramstyle!r} not supported")


def sql(dialect: Dialect, template: str, *listed: int) -> str:
    """`template` (a constant written with `?` placeholders) for the dialect's driver, each
    `{in}` in it expanded to as many placeholders as the next of `listed` (IN lists); cached."""
    return _render(placeholder(dialect), template, listed)


@functools.lru_cache(maxsize=512)
def _render(mark: str, template: str, listed: tuple[int, ...]) -> str:
    # Only placeholders are put into the constant templates: no value ever is.
    parts = template.split("{in}")
    if len(parts) != len(listed) + 1:
        raise ValueError(f"{template!r} has {len(parts) - 1} IN lists, {len(listed)} sizes given")
    text = parts[0]
    for count, part in zip(listed, parts[1:], strict=True):
        text += ", ".join(["?"] * count) + part
    return text.replace("?", mark)


@dataclasses.dataclass(frozen=True)
class Insert:
    """INSERT INTO one table's `columns`, with SQLAlchemy's bind processors for `dialect`."""

    table: str
    columns: tuple[str, ...]
    processors: tuple[Processor, ...]
    mark: str

    @classmethod
    def of(cls, table: sa.Table, dialect: Dialect, *, skip: tuple[str, ...] = ()) -> Insert:
        columns = tuple(c for c in table.columns if c.name not in skip)
        return cls(
            table=table.name,
            columns=tuple(c.name for c in columns),
            processors=tuple(c.type.dialect_impl(dialect).bind_processor(dialect) for c in columns),
            mark=placeholder(dialect),
        )

    def rows(self, rows: typing.Sequence[typing.Mapping[str, object]]) -> list[typing.Any]:
        """The parameters of `sql(len(rows))`: every row's, one after the other. A value
        met again in the same column (a batch's `issued_at`, validity to the second) is
        processed once: the processors are pure functions of the value."""
        params: list[typing.Any] = []
        memo: dict[tuple[int, type, object], object] = {}
        for values in rows:
            row = [values[c] for c in self.columns]
            for index, process in self._processed:
                value = row[index]
                key = (index, type(value), value)
                try:
                    row[index] = memo[key]
                except KeyError:
                    row[index] = memo[key] = process(value)
                except TypeError:  # unhashable: no memo
                    row[index] = process(value)
            params.extend(row)
        return params

    def row(self, values: typing.Mapping[str, object]) -> tuple[typing.Any, ...]:
        """The parameters of one row, in column order, as SQLAlchemy would bind them."""
        row = [values[c] for c in self.columns]
        for index, process in self._processed:
            row[index] = process(row[index])
        return tuple(row)

    @functools.cached_property
    def _processed(self) -> tuple[tuple[int, typing.Callable[[typing.Any], typing.Any]], ...]:
        return tuple((i, p) for i, p in enumerate(self.processors) if p is not None)

    def sql(self, rows: int = 1, returning: str = "") -> str:
        """`INSERT INTO t (a, b) VALUES (?, ?)[, (?, ?) ...] [RETURNING ...]`."""
        return _insert_sql(self.table, self.columns, self.mark, rows, returning)


@functools.lru_cache(maxsize=256)
def _insert_sql(table: str, columns: tuple[str, ...], mark: str, rows: int, returning: str) -> str:
    group = "(" + ", ".join([mark] * len(columns)) + ")"
    # Table and column names come from padlock.ledger.schema; values are never put in SQL.
    text = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "  # noqa: S608
    text += ", ".join([group] * rows)
    return f"{text} RETURNING {returning}" if returning else text


def _listened(connection: Connection) -> bool:
    dispatch = connection.dispatch
    return bool(dispatch.before_cursor_execute) or bool(dispatch.after_cursor_execute)


def fetch(connection: Connection, sql: str, params: Params) -> list[tuple[typing.Any, ...]]:
    """Run one statement in the connection's transaction; its rows (none for plain DML)."""
    if _listened(connection):
        result = connection.exec_driver_sql(sql, tuple(params))
        return [tuple(row) for row in result] if result.returns_rows else []
    return _on_cursor(connection, sql, params, many=False)


def insert(
    connection: Connection,
    statement: Insert,
    rows: typing.Sequence[typing.Mapping[str, object]],
    *,
    returning: str = "",
) -> list[tuple[typing.Any, ...]]:
    """Insert `rows` (column values by name) in one statement; the RETURNING rows, if asked.

    SQLite: one multi-row `INSERT ... VALUES (...), (...)`. psycopg parses a statement with
    more than 50 parameters anew on every execution (its query cache stops there,
    psycopg._queries.MAX_CACHED_STATEMENT_PARAMS): there, several rows go as one
    `executemany` of the one-row statement (pipelined, one round trip), their RETURNING rows
    collected from each result set.
    """
    if not rows:
        return []
    params = statement.rows(rows)
    if len(rows) == 1 or connection.dialect.paramstyle == "qmark" or _listened(connection):
        return fetch(connection, statement.sql(len(rows), returning), params)
    width = len(statement.columns)
    each = [params[n : n + width] for n in range(0, len(params), width)]
    return _on_cursor(
        connection, statement.sql(1, returning), each, many=True, returning=bool(returning)
    )


def _on_cursor(
    connection: Connection,
    sql: str,
    params: typing.Any,
    *,
    many: bool,
    returning: bool = False,
) -> list[tuple[typing.Any, ...]]:
    proxied = connection.connection  # the pooled DB-API connection of this transaction
    cursor = proxied.cursor()
    try:
        if not many:
            cursor.execute(sql, params)
            return list(cursor.fetchall()) if cursor.description is not None else []
        if not returning:
            cursor.executemany(sql, params)
            return []
        typing.cast(typing.Any, cursor).executemany(sql, params, returning=True)  # psycopg
        out: list[tuple[typing.Any, ...]] = []
        while True:
            out.extend(cursor.fetchall())
            if not cursor.nextset():
                return out
    except connection.dialect.loaded_dbapi.Error as exc:
        dialect = connection.dialect
        lost = bool(dialect.is_disconnect(exc, proxied.dbapi_connection, cursor))
        if lost:
            connection.invalidate(exc)
        raise sa.exc.DBAPIError.instance(
            sql,
            params,
            exc,
            dialect.loaded_dbapi.Error,
            connection_invalidated=lost,
            dialect=dialect,
            ismulti=many,
        ) from exc
    finally:
        cursor.close()
