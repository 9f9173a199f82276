"""`Ledger`: the transactional operations the CA and the revocation responder call.

Called by the CA pipeline (from a worker thread: every method is synchronous and thread-safe,
each call is one transaction), by the OCSP/CRL responder (reads, `migrate=False`), and by the
CLI. Every change is committed together with its audit row, or not at all.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import typing

import sqlalchemy as sa
from cryptography import x509
from sqlalchemy.engine import Connection

from padlock.ledger import (
    audit,
    dcv,
    errors,
    issuance,
    publication,
    records,
    revocation,
    schema,
)
from padlock.ledger import engine as engines
from padlock.ledger import migrate as migrations

Clock = typing.Callable[[], datetime.datetime]


@dataclasses.dataclass(frozen=True)
class Issuance:
    """One signed certificate for `Ledger.record_issuances` (the arguments of
    `record_issuance`), with its first pre-signed OCSP response when the CA has one."""

    ca_id: int
    certificate: x509.Certificate
    cert_type: records.CertType
    requester: str
    idempotency_key: str | None = None
    domain_validated_at: datetime.datetime | None = None
    ocsp: records.OcspCacheEntry | None = None
    signature_verified: bool = False
    """The caller already verified `certificate`'s signature with this CA's certificate (the
    CA's lint gate does, `padlock.ca.lintgate`); the ledger then compares only the issuer
    name instead of verifying the signature a second time (`issuance.check_issued_by`)."""


IssuanceOutcome: typing.TypeAlias = (
    records.CertificateRecord | errors.SerialCollision | errors.IdempotencyKeyReused | ValueError
)
"""What `record_issuances` says about one item: committed, or why not (not raised)."""


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Ledger:
    """The issuance database at `url` (the CA config's `ledger.url`, `padlock.ca.config`).

    migrate: bring the schema to this padlock's head on open (the CA does); with False the
        schema must already be current (readers: OCSP responder, `padlock ledger verify`).
    clock: the time source for timestamps no caller passed (tests pass a fixed one).
    """

    def __init__(self, url: str, *, migrate: bool = True, clock: Clock = utc_now) -> None:
        self.url = engines.display_url(url)
        self._engine = engines.create_engine(url, create=migrate)
        self._clock = clock
        self._cas: dict[int, records.CARecord] = {}
        try:
            if migrate:
                migrations.upgrade(self._engine)
            else:
                migrations.check_current(self._engine)
        except BaseException:
            self._engine.dispose()
            raise

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def dialect(self) -> str:
        """The backend: "sqlite" or "postgresql"."""
        return self._engine.dialect.name

    # -- transactions ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _write(self) -> typing.Iterator[Connection]:
        """One write transaction, serialized against every other ledger writer."""
        with self._write_locked() as (connection, _head):
            yield connection

    @contextlib.contextmanager
    def _write_locked(self) -> typing.Iterator[tuple[Connection, audit.Head | None]]:
        """`_write`, with the audit head the PostgreSQL lock read (None on SQLite)."""
        with self._engine.connect() as connection:
            connection.execution_options(**{engines.WRITE_OPTION: True})
            with connection.begin():
                yield connection, audit.lock_head(connection)

    @contextlib.contextmanager
    def _read(self, *, snapshot: bool = False) -> typing.Iterator[Connection]:
        """A read transaction; `snapshot` makes every statement see the same state (SQLite's
        deferred BEGIN in WAL mode always does; PostgreSQL needs REPEATABLE READ)."""
        with self._engine.connect() as connection:
            if snapshot and not engines.is_sqlite(connection):
                connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                yield connection

    def _at(self, at: datetime.datetime | None) -> datetime.datetime:
        value = self._clock() if at is None else at
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; use a UTC-aware one")
        return value.astimezone(datetime.UTC)

    # -- certificate authorities -------------------------------------------------------------

    def register_ca(
        self,
        certificate: x509.Certificate,
        *,
        ca_type: records.CAType,
        parent_ca_id: int | None = None,
        hsm_slot_id: str | None = None,
        actor: str = "padlock",
        at: datetime.datetime | None = None,
    ) -> int:
        """The CA's id, registering it first if its public key is new (idempotent by key)."""
        key_hash = issuance.public_key_sha256(certificate)
        with self._read() as connection:
            existing = issuance.find_ca_by_key(connection, key_hash)
        if existing is not None:
            return existing
        when = self._at(at)
        with self._write() as connection:
            existing = issuance.find_ca_by_key(connection, key_hash)
            if existing is not None:
                return existing
            ca_id = issuance.insert_ca(
                connection,
                certificate,
                ca_type=ca_type,
                parent_ca_id=parent_ca_id,
                hsm_slot_id=hsm_slot_id,
                at=when,
            )
            audit.append(
                connection,
                kind="ca.registered",
                actor=actor,
                details={
                    "ca_id": ca_id,
                    "ca_type": ca_type.value,
                    "subject": certificate.subject.rfc4514_string(),
                    "public_key_sha256": key_hash.hex(),
                    "serial": f"{certificate.serial_number:x}",
                },
                at=when,
            )
            return ca_id

    def find_ca(self, certificate: x509.Certificate) -> int | None:
        """The id of the CA with this certificate's public key, if registered (read only: the
        OCSP responder looks its CA up without registering it)."""
        with self._read() as connection:
            return issuance.find_ca_by_key(connection, issuance.public_key_sha256(certificate))

    def get_ca(self, ca_id: int) -> records.CARecord:
        with self._read() as connection:
            return issuance.get_ca(connection, ca_id)

    # -- issuance ----------------------------------------------------------------------------

    def find_by_idempotency_key(self, ca_id: int, key: str) -> records.CertificateRecord | None:
        """The certificate already recorded for this sign request, if any."""
        with self._read() as connection:
            return issuance.find_by_idempotency_key(connection, ca_id, key)

    def find_by_idempotency_keys(
        self, ca_id: int, keys: typing.Collection[str]
    ) -> dict[str, records.CertificateRecord]:
        """The certificates already recorded under any of these keys, in one query (the CA
        batches the lookups of concurrent requests)."""
        if not keys:
            return {}
        with self._read() as connection:
            found, _serials = issuance.taken(connection, ca_id, keys, ())
        return found

    def record_issuance(
        self,
        ca_id: int,
        certificate: x509.Certificate,
        *,
        cert_type: records.CertType,
        requester: str,
        idempotency_key: str | None = None,
        domain_validated_at: datetime.datetime | None = None,
        at: datetime.datetime | None = None,
    ) -> records.CertificateRecord:
        """Commit a signed certificate and its audit row in one transaction.

        Raises SerialCollision (sign again with a new serial), IdempotencyKeyReused (return
        `.existing` instead), UnknownCA, or ValueError if the CA did not sign `certificate`.
        When this returns, the row is durable (see engine.py). A batch of one of
        `record_issuances`.
        """
        (outcome,) = self.record_issuances(
            [
                Issuance(
                    ca_id,
                    certificate,
                    cert_type=cert_type,
                    requester=requester,
                    idempotency_key=idempotency_key,
                    domain_validated_at=domain_validated_at,
                )
            ],
            at=at,
        )
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def record_issuances(
        self, batch: typing.Sequence[Issuance], *, at: datetime.datetime | None = None
    ) -> list[IssuanceOutcome]:
        """Group commit: record several signed certificates (each with its audit row, still
        hash-chained one by one, and its pre-signed OCSP response if given) in ONE write
        transaction, so a burst pays for one lock, one commit and one fsync.

        Returns one outcome per item, in order: the committed record, or (not raised) the
        `SerialCollision` / `IdempotencyKeyReused` / `ValueError` refusing that item alone;
        the others are committed. Two items with one idempotency key: the first is recorded,
        the second gets `IdempotencyKeyReused(first)`. A database error (or UnknownCA) raises
        and commits nothing of the batch. When this returns, every record is durable.
        """
        if not batch:
            return []
        when = self._at(at)
        outcomes: list[IssuanceOutcome | None] = [None] * len(batch)
        values: dict[int, dict[str, object]] = {}
        for index, item in enumerate(batch):
            if not item.requester:
                raise ValueError("record_issuance needs the requester (who asked for it)")
            # Checked before the write lock: the signature check is the slow part, and a CA
            # certificate never changes under its ca_id.
            try:
                issuance.check_issued_by(
                    self._ca(item.ca_id),
                    item.certificate,
                    signature_verified=item.signature_verified,
                )
                if item.ocsp is not None and (item.ocsp.ca_id, item.ocsp.serial) != (
                    item.ca_id,
                    item.certificate.serial_number,
                ):
                    raise ValueError(
                        f"the OCSP response given for serial {item.certificate.serial_number:#x}"
                        f" is about CA {item.ocsp.ca_id} serial {item.ocsp.serial:#x}"
                    )
            except ValueError as exc:
                outcomes[index] = exc
                continue
            values[index] = issuance.certificate_values(
                item.ca_id,
                item.certificate,
                cert_type=item.cert_type,
                requester=item.requester,
                idempotency_key=item.idempotency_key,
                domain_validated_at=item.domain_validated_at,
                at=when,
            )
        try:
            with self._write_locked() as (connection, head):
                self._record_batch(connection, batch, values, outcomes, when, head)
        except sa.exc.IntegrityError:
            # A UNIQUE constraint fired although the checks under the write lock passed;
            # nothing of the batch was committed. Settle each item in its own transaction,
            # so one bad row cannot fail the others.
            if len(batch) == 1:
                raise
            return [self.record_issuances([item], at=when)[0] for item in batch]
        return [typing.cast(IssuanceOutcome, outcome) for outcome in outcomes]

    @staticmethod
    def _record_batch(
        connection: Connection,
        batch: typing.Sequence[Issuance],
        values: dict[int, dict[str, object]],
        outcomes: list[IssuanceOutcome | None],
        when: datetime.datetime,
        head: audit.Head | None,
    ) -> None:
        """The inside of `record_issuances`' transaction (the write lock is held; `head` is
        what the lock read, nothing has been appended since)."""
        inserting: list[int] = []
        first_with_key: dict[tuple[int, str], int] = {}
        repeats: dict[int, int] = {}  # item -> the earlier item of the batch with its key
        by_ca: dict[int, list[int]] = {}
        for index in values:
            by_ca.setdefault(batch[index].ca_id, []).append(index)
        for ca_id, indexes in by_ca.items():
            # The CA exists: `_ca()` read it (UnknownCA aborts the batch); CAs are never deleted.
            keys = {k for i in indexes if (k := batch[i].idempotency_key) is not None}
            used_keys, used_serials = issuance.taken(
                connection, ca_id, keys, {batch[i].certificate.serial_number for i in indexes}
            )
            drawn: set[int] = set()
            for index in indexes:
                item = batch[index]
                serial = item.certificate.serial_number
                key = item.idempotency_key
                if key is not None and key in used_keys:
                    outcomes[index] = errors.IdempotencyKeyReused(used_keys[key])
                elif key is not None and (ca_id, key) in first_with_key:
                    repeats[index] = first_with_key[(ca_id, key)]
                elif serial in used_serials or serial in drawn:
                    outcomes[index] = errors.SerialCollision(ca_id, serial)
                else:
                    drawn.add(serial)
                    if key is not None:
                        first_with_key[(ca_id, key)] = index
                    inserting.append(index)
        inserting.sort()
        cert_ids = issuance.insert_certificates(connection, [values[i] for i in inserting])
        for index, cert_id in zip(inserting, cert_ids, strict=True):
            outcomes[index] = issuance.record_from_values(cert_id, values[index])
        for index, earlier in repeats.items():
            first = outcomes[earlier]
            assert isinstance(first, records.CertificateRecord)
            outcomes[index] = errors.IdempotencyKeyReused(first)
        publication.insert_new_ocsp(
            connection,
            [
                (cert_ids[n], ocsp)
                for n, index in enumerate(inserting)
                if (ocsp := batch[index].ocsp) is not None
            ],
        )
        events: list[tuple[str, str, typing.Mapping[str, audit.JsonValue]]] = []
        for index in inserting:
            record = outcomes[index]
            assert isinstance(record, records.CertificateRecord)
            events.append(
                (
                    "certificate.issued",
                    record.requester,
                    {
                        "ca_id": record.ca_id,
                        "serial": f"{record.serial:x}",
                        "cert_type": record.cert_type.value,
                        "subject": record.subject_dn,
                        "sans": list(record.sans),
                        "not_after": record.valid_until.isoformat(),
                        "idempotency_key": record.idempotency_key,
                    },
                )
            )
        audit.append_many(connection, events, at=when, head=head)

    def _ca(self, ca_id: int) -> records.CARecord:
        """The CA's record, read once per process (a CA's certificate never changes)."""
        ca = self._cas.get(ca_id)
        if ca is None:
            with self._read() as connection:
                ca = issuance.get_ca(connection, ca_id)
            self._cas[ca_id] = ca
        return ca

    def get_certificate(self, ca_id: int, serial: int) -> records.CertificateRecord | None:
        with self._read() as connection:
            return issuance.find_by_serial(connection, ca_id, serial)

    # -- revocation --------------------------------------------------------------------------

    def revoke(
        self,
        ca_id: int,
        serial: int,
        reason_code: int,
        requester: str,
        at: datetime.datetime | None = None,
        *,
        reason_text: str | None = None,
    ) -> records.RevocationRecord:
        """Revoke one certificate (RFC 5280 §5.3.1 reason). A second call returns the first
        revocation unchanged. Raises UnknownCertificate if the CA never issued `serial`."""
        records.check_reason_code(reason_code)
        when = self._at(at)
        with self._write() as connection:
            certificate = issuance.find_by_serial(connection, ca_id, serial)
            if certificate is None:
                raise errors.UnknownCertificate(ca_id, serial)
            return self._revoke_one(
                connection,
                certificate.cert_id,
                serial,
                ca_id,
                reason_code,
                reason_text,
                requester,
                when,
            )

    def revoke_all(
        self,
        ca_id: int,
        reason_code: int,
        requester: str,
        at: datetime.datetime | None = None,
        *,
        reason_text: str | None = None,
    ) -> list[records.RevocationRecord]:
        """Revoke every not-yet-revoked, unexpired certificate of the CA in one transaction
        (the issuer-wide drill); returns the new revocations, in serial order."""
        records.check_reason_code(reason_code)
        when = self._at(at)
        with self._write() as connection:
            issuance.get_ca(connection, ca_id)
            return [
                self._revoke_one(
                    connection,
                    cert_id,
                    serial,
                    ca_id,
                    reason_code,
                    reason_text,
                    requester,
                    when,
                )
                for cert_id, serial in revocation.unrevoked_cert_ids(connection, ca_id, when)
            ]

    @staticmethod
    def _revoke_one(
        connection: Connection,
        cert_id: int,
        serial: int,
        ca_id: int,
        reason_code: int,
        reason_text: str | None,
        requester: str,
        at: datetime.datetime,
    ) -> records.RevocationRecord:
        existing = revocation.find(connection, cert_id)
        if existing is not None:
            return existing
        revoked = revocation.insert(
            connection,
            cert_id,
            reason_code=reason_code,
            reason_text=reason_text,
            requested_by=requester,
            at=at,
        )
        audit.append(
            connection,
            kind="certificate.revoked",
            actor=requester,
            details={
                "ca_id": ca_id,
                "serial": f"{serial:x}",
                "reason_code": reason_code,
                "reason": records.REASON_CODES[reason_code],
                "reason_text": reason_text,
            },
            at=at,
        )
        return revoked

    def certificate_status(self, ca_id: int, serial: int) -> records.CertificateStatus:
        with self._read() as connection:
            return revocation.status(connection, ca_id, serial)

    def revoked_since(self, ca_id: int, cursor: int = 0) -> list[records.RevocationRecord]:
        """Revocations after `cursor` (a revocation_id; 0 = all), oldest first.

        Ids are handed out under the write lock, so they grow in commit order and a reader
        that remembers the largest id it saw never misses one.
        """
        with self._read() as connection:
            return revocation.since(connection, ca_id, cursor)

    def list_revoked(
        self, ca_id: int, *, unexpired_at: datetime.datetime | None = None
    ) -> list[records.RevocationRecord]:
        """The CA's revocations in serial order, for its CRL (see revocation.listed)."""
        with self._read() as connection:
            return revocation.listed(connection, ca_id, unexpired_at=unexpired_at)

    # -- CRLs and OCSP responses -------------------------------------------------------------

    def next_crl_number(self, ca_id: int, shard: int = 0) -> int:
        """RFC 5280 §5.2.3: a CRL number for (CA, shard) larger than every earlier one."""
        with self._write() as connection:
            issuance.get_ca(connection, ca_id)
            return publication.next_crl_number(connection, ca_id, shard)

    def put_crl(self, crl: records.CrlRecord) -> bool:
        """Store a signed CRL shard; False (and nothing stored) if a newer one is there."""
        with self._write() as connection:
            return publication.put_crl(connection, crl)

    def get_crl(self, ca_id: int, shard: int = 0) -> records.CrlRecord | None:
        with self._read() as connection:
            return publication.get_crl(connection, ca_id, shard)

    def put_ocsp_response(self, entry: records.OcspCacheEntry) -> None:
        with self._write() as connection:
            publication.put_ocsp(connection, entry)

    def get_ocsp_response(self, ca_id: int, serial: int) -> records.OcspCacheEntry | None:
        with self._read() as connection:
            return publication.get_ocsp(connection, ca_id, serial)

    def ocsp_responses(
        self, ca_id: int, *, expiring_before: datetime.datetime | None = None
    ) -> list[records.OcspCacheEntry]:
        with self._read() as connection:
            return publication.list_ocsp(connection, ca_id, expiring_before=expiring_before)

    # -- domain-control validation (ACME) ----------------------------------------------------

    def record_dcv(
        self,
        domain: str,
        method: str,
        challenge_token: str,
        challenge_value: str,
        expires_at: datetime.datetime,
    ) -> records.DcvRecord:
        """Record a challenge offered for `domain` (method: http-01, dns-01, tls-alpn-01)."""
        with self._write() as connection:
            return dcv.insert(
                connection,
                domain=domain,
                method=method,
                challenge_token=challenge_token,
                challenge_value=challenge_value,
                expires_at=self._at(expires_at),
            )

    def mark_dcv_validated(
        self,
        dcv_id: int,
        *,
        actor: str,
        ip: str | None = None,
        at: datetime.datetime | None = None,
    ) -> records.DcvRecord:
        """Mark a challenge passed (first time only) and audit it; LookupError if unknown."""
        when = self._at(at)
        with self._write() as connection:
            before = dcv.get(connection, dcv_id)
            if before is None:
                raise LookupError(f"no DCV challenge with id {dcv_id} in the ledger")
            if before.validated_at is not None:
                return before
            after = dcv.mark_validated(connection, dcv_id, at=when, ip=ip)
            assert after is not None
            audit.append(
                connection,
                kind="dcv.validated",
                actor=actor,
                details={
                    "dcv_id": dcv_id,
                    "domain": after.domain,
                    "method": after.method,
                    "ip": ip,
                },
                at=when,
            )
            return after

    def valid_dcv(
        self, domain: str, now: datetime.datetime | None = None
    ) -> records.DcvRecord | None:
        """The newest passed, unexpired validation of `domain`, for authorization reuse."""
        when = self._at(now)
        with self._read() as connection:
            return dcv.latest_valid(connection, domain, now=when)

    # -- audit -------------------------------------------------------------------------------

    def append_audit(
        self,
        kind: str,
        actor: str,
        details: typing.Mapping[str, audit.JsonValue],
        at: datetime.datetime | None = None,
    ) -> records.AuditEvent:
        """Append an event that is not a ledger change (e.g. a key ceremony, a refused CSR)."""
        when = self._at(at)
        with self._write() as connection:
            return audit.append(connection, kind=kind, actor=actor, details=details, at=when)

    def verify_audit_chain(
        self, checkpoints: typing.Iterable[records.AuditCheckpoint] = ()
    ) -> records.VerifyResult:
        """Walk the audit chain; `first_bad_id` names the first row that fails, None if ok.
        Earlier `audit_checkpoint()`s, kept outside the database, also catch a full rewrite."""
        with self._read(snapshot=True) as connection:
            return audit.verify(connection, checkpoints)

    def audit_checkpoint(self) -> records.AuditCheckpoint:
        """The audit chain's current last row id and hash, to log or sign elsewhere."""
        with self._read() as connection:
            return audit.checkpoint(connection)

    def count(self, table: str) -> int:
        """Rows in one ledger table (for tests, metrics and the CLI)."""
        with self._read() as connection:
            return int(
                connection.execute(
                    sa.select(sa.func.count()).select_from(schema.metadata.tables[table])
                ).scalar_one()
            )
