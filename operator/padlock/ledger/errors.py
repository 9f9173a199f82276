"""Errors the ledger raises, sorted so the CA can tell "retry" from "give up".

Called by the CA pipeline (catches `SerialCollision` and draws a new serial; catches
`IdempotencyKeyReused` and returns the certificate already issued) and the CLI (prints them).
"""

from __future__ import annotations

import typing

if typing.TYPE_CHECKING:
    from padlock.ledger import records


class LedgerError(Exception):
    """Base class of every error the ledger raises on purpose."""


class SerialCollision(LedgerError):
    """The CA already issued a certificate with this serial: sign again with a new serial.

    RFC 5280 §4.1.2.2: the serial MUST be unique for each certificate issued by a given CA.
    """

    def __init__(self, ca_id: int, serial: int) -> None:
        super().__init__(
            f"CA {ca_id} already issued a certificate with serial {serial:#x}; "
            "draw a new serial and sign again"
        )
        self.ca_id = ca_id
        self.serial = serial


class IdempotencyKeyReused(LedgerError):
    """A certificate was already recorded under this idempotency key; `existing` is it."""

    def __init__(self, existing: records.CertificateRecord) -> None:
        super().__init__(
            f"CA {existing.ca_id} already recorded certificate serial {existing.serial:#x} "
            f"for idempotency key {existing.idempotency_key!r}"
        )
        self.existing = existing


class UnknownCA(LedgerError):
    """No certificate authority with this id is registered in the ledger."""

    def __init__(self, ca_id: int) -> None:
        super().__init__(f"no certificate authority with id {ca_id} in the ledger")
        self.ca_id = ca_id


class UnknownCertificate(LedgerError):
    """The CA never issued (or the ledger never recorded) a certificate with this serial."""

    def __init__(self, ca_id: int, serial: int) -> None:
        super().__init__(f"CA {ca_id} has no certificate with serial {serial:#x} in the ledger")
        self.ca_id = ca_id
        self.serial = serial


class SchemaNotCurrent(LedgerError):
    """The database schema is not the one this padlock expects (opened without migrating)."""

    def __init__(self, url: str, current: str | None, head: str) -> None:
        super().__init__(
            f"ledger {url} is at schema revision {current or '(empty)'}, this padlock needs "
            f"{head}; open it once with migrations enabled (padlock ca serve does)"
        )
        self.current = current
        self.head = head
