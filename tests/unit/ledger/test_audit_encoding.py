"""The audit row encoding is a stored format: its hashes must never change silently."""

from __future__ import annotations

import datetime
import hashlib

import pytest

from padlock.ledger import audit, schema

AT = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.UTC)


def test_row_hash_is_sha256_over_the_documented_canonical_array() -> None:
    # Known answer: sha256(b'["padlock-audit-v1",1,"2026-01-02T03:04:05.678901+00:00",'
    #                     b'"certificate.issued","ns/web","{\\"serial\\":\\"2a\\"}","000...0"]')
    encoded = (
        '["padlock-audit-v1",1,"2026-01-02T03:04:05.678901+00:00","certificate.issued",'
        '"ns/web","{\\"serial\\":\\"2a\\"}","' + "0" * 64 + '"]'
    )
    expected = hashlib.sha256(encoded.encode("ascii")).hexdigest()
    assert (
        audit.row_hash(
            event_id=1,
            at=AT,
            kind="certificate.issued",
            actor="ns/web",
            details_json=audit.canonical_details({"serial": "2a"}),
            prev_hash=schema.GENESIS_HASH,
        )
        == expected
    )


def test_the_same_instant_in_another_zone_hashes_the_same() -> None:
    elsewhere = AT.astimezone(datetime.timezone(datetime.timedelta(hours=-5)))
    fields = {"event_id": 3, "kind": "k", "actor": "a", "details_json": "{}", "prev_hash": "ab"}
    assert audit.row_hash(at=AT, **fields) == audit.row_hash(at=elsewhere, **fields)


def test_details_are_canonical_whatever_the_key_order() -> None:
    assert audit.canonical_details({"b": 1, "a": [True, None, "é"]}) == (
        '{"a":[true,null,"\\u00e9"],"b":1}'
    )
    assert audit.canonical_details({"a": [True, None, "é"], "b": 1}) == audit.canonical_details(
        {"b": 1, "a": [True, None, "é"]}
    )


def test_field_boundaries_are_unambiguous() -> None:
    common = {"event_id": 1, "at": AT, "details_json": "{}", "prev_hash": "00"}
    assert audit.row_hash(kind="ab", actor="c", **common) != audit.row_hash(
        kind="a", actor="bc", **common
    )


def test_nan_is_refused_in_details() -> None:
    with pytest.raises(ValueError, match="Out of range float"):
        audit.canonical_details({"x": float("nan")})
