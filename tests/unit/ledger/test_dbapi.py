"""`padlock.ledger.dbapi`: SQL rendered for each driver's paramstyle, rows bound as SQLAlchemy
binds them. (Rows stored through it on real databases: tests/integration/ledger/
test_group_commit_bytes.py.)"""

from __future__ import annotations

import datetime

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from padlock.ledger import dbapi, schema

UTC = datetime.UTC
SQLITE = sqlite.dialect()
PSYCOPG = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]


def test_templates_get_each_drivers_placeholder_and_expanded_in_lists() -> None:
    template = "SELECT a FROM t WHERE b = ? AND c IN ({in}) AND d IN ({in})"
    assert dbapi.sql(SQLITE, template, 2, 1) == (
        "SELECT a FROM t WHERE b = ? AND c IN (?, ?) AND d IN (?)"
    )
    assert dbapi.sql(PSYCOPG, template, 1, 3) == (
        "SELECT a FROM t WHERE b = %s AND c IN (%s) AND d IN (%s, %s, %s)"
    )


def test_a_template_given_the_wrong_number_of_in_list_sizes_is_refused() -> None:
    with pytest.raises(ValueError, match="has 2 IN lists, 1 sizes given"):
        dbapi.sql(SQLITE, "SELECT 1 WHERE a IN ({in}) OR b IN ({in})", 3)


def test_a_multi_row_insert_names_every_column_once_and_repeats_the_value_group() -> None:
    insert = dbapi.Insert.of(schema.audit_head, PSYCOPG)
    assert insert.sql(2, returning="id") == (
        "INSERT INTO audit_head (id, last_event_id, last_hash) "
        "VALUES (%s, %s, %s), (%s, %s, %s) RETURNING id"
    )
    assert dbapi.Insert.of(schema.certificate, SQLITE, skip=("cert_id",)).columns[0] == (
        "serial_number"
    )


@pytest.mark.parametrize("dialect", [SQLITE, PSYCOPG], ids=["sqlite", "psycopg"])
def test_rows_bind_datetimes_as_sqlalchemy_does_with_repeated_values_processed_once(
    dialect: object,
) -> None:
    insert = dbapi.Insert.of(schema.audit_event, dialect)  # type: ignore[arg-type]
    at = datetime.datetime(2026, 3, 1, 12, 0, 0, 5, tzinfo=UTC)
    same_instant = at.astimezone(datetime.timezone(datetime.timedelta(hours=2)))
    rows = [
        {
            "event_id": n,
            "at": when,
            "kind": "k",
            "actor": "a",
            "details": "{}",
            "prev_hash": "0" * 64,
            "row_hash": "1" * 64,
        }
        for n, when in enumerate([at, same_instant, at + datetime.timedelta(seconds=1)])
    ]
    bound = insert.rows(rows)
    processor = schema.audit_event.c.at.type.dialect_impl(dialect).bind_processor(dialect)  # type: ignore[arg-type]
    assert processor is not None
    assert bound == [value for row in rows for value in insert.row(row)]
    assert bound[1::7] == [processor(row["at"]) for row in rows]
    if dialect is SQLITE:
        assert bound[1::7] == [
            "2026-03-01 12:00:00.000005",
            "2026-03-01 12:00:00.000005",
            "2026-03-01 12:00:01.000005",
        ]


def test_naive_datetimes_are_still_refused_on_the_cursor_path() -> None:
    insert = dbapi.Insert.of(schema.audit_event, SQLITE)
    row = {
        "event_id": 1,
        "at": datetime.datetime(2026, 3, 1),
        "kind": "k",
        "actor": "a",
        "details": "{}",
        "prev_hash": "0" * 64,
        "row_hash": "1" * 64,
    }
    with pytest.raises(ValueError, match="naive datetime"):
        insert.rows([row])
