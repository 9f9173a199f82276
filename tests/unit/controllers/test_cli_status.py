"""`padlock status`: soonest expiry first, certificates without one on top."""

from __future__ import annotations

import datetime

from padlock.cli import operator as cli_operator

NOW = datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC)


def _item(name: str, not_after: str | None, ready: str = "True") -> dict[str, object]:
    status: dict[str, object] = {"conditions": [{"type": "Ready", "status": ready, "reason": "R"}]}
    if not_after:
        status["notAfter"] = not_after
    return {"metadata": {"namespace": "apps", "name": name}, "status": status}


def test_rows_are_sorted_by_expiry_with_days_left() -> None:
    rows = cli_operator.status_rows(
        [
            _item("late", "2026-08-30T00:00:00Z"),
            _item("soon", "2026-06-03T12:00:00Z"),
            _item("pending", None, ready="False"),
        ],
        NOW,
    )
    assert [r[1] for r in rows] == ["pending", "soon", "late"]
    assert rows[0][2] == "False (R)"
    assert rows[1][4] == "2.5"
    table = cli_operator.format_table(rows)
    assert table.splitlines()[0].split() == [
        "NAMESPACE",
        "NAME",
        "READY",
        "NOT",
        "AFTER",
        "DAYS",
        "LEFT",
    ]
