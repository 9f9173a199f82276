"""Two CA workers publishing one CRL shard at once: the higher CRL number lists every
revocation committed before either publication (padlock.services.ca_http.crl_lock).

Two `LockedCrlPublisher`s on two `Ledger`s (two engines, as two worker processes have) share
one lock file. Worker A lists the shard's revocations and is held there; meanwhile a second
revocation commits and worker B publishes the same shard. Unlocked, B would take CRL number 1
and A, resuming, number 2 with its stale listing: the newest CRL would lack the revocation.
Real SQLite ledger, software keys (the lock is about ordering, not the HSM).
"""

from __future__ import annotations

import datetime
import threading
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from padlock.ca import authority as authority_mod
from padlock.ca import config as ca_config
from padlock.ca import hsm
from padlock.keys import software
from padlock.ledger import ledger as ledger_mod
from padlock.ledger import records
from padlock.pki import profiles
from padlock.pki.algorithms import KeyAlgorithm
from padlock.services.ca_http import crl_lock

T0 = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=datetime.UTC)
SHARD = 3


def _cert(profile: profiles.Profile, cn: str, public: object, issuer: x509.Certificate | None,
          key: object, serial: int) -> x509.Certificate:  # fmt: skip
    return profiles.build_certificate(
        profile,
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]) if cn else x509.Name([]),
        public_key=public,  # type: ignore[arg-type]
        sans=(x509.DNSName("a.example.test"),) if profile is profiles.TLS_SERVER else (),
        issuer=issuer,
        issuer_key=key,  # type: ignore[arg-type]
        serial=serial,
        not_before=T0 - datetime.timedelta(days=1),
        not_after=T0 + datetime.timedelta(days=30),
    )


class PausingLedger(ledger_mod.Ledger):
    """Worker A's ledger: `list_revoked` answers, then waits until the test lets it go."""

    def __init__(self, url: str) -> None:
        super().__init__(url, migrate=False, clock=lambda: T0)
        self.listed = threading.Event()
        self.go = threading.Event()

    def list_revoked(
        self, ca_id: int, *, unexpired_at: datetime.datetime | None = None
    ) -> list[records.RevocationRecord]:
        found = super().list_revoked(ca_id, unexpired_at=unexpired_at)
        self.listed.set()
        assert self.go.wait(30)
        return found


def test_the_newest_crl_of_a_shard_lists_a_revocation_made_during_another_publication(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    root_key = software.generate("root", KeyAlgorithm.EC_P256)
    root = _cert(profiles.ROOT_CA, "root", root_key.public_key(), None,
                 root_key.private_key(), 1)  # fmt: skip
    inter_key = software.generate("inter", KeyAlgorithm.EC_P256)
    inter = _cert(profiles.INTERMEDIATE_CA, "inter", inter_key.public_key(), root,
                  root_key.private_key(), 2)  # fmt: skip
    shared = ledger_mod.Ledger(url, clock=lambda: T0)
    root_id = shared.register_ca(root, ca_type=records.CAType.ROOT)
    ca_id = shared.register_ca(inter, ca_type=records.CAType.INTERMEDIATE, parent_ca_id=root_id)
    first, second = (authority_mod.CRL_SHARDS * n + SHARD for n in (1000, 2000))
    for serial in (first, second):
        leaf_key = software.generate("leaf", KeyAlgorithm.EC_P256)
        leaf = _cert(profiles.TLS_SERVER, "", leaf_key.public_key(), inter,
                     inter_key.private_key(), serial)  # fmt: skip
        shared.record_issuance(ca_id, leaf, cert_type=records.CertType.TLS_SERVER, requester="t")
    authority = authority_mod.Authority("test", ca_id, inter, (inter,), root,
                                        ca_config.UrlConfig())  # fmt: skip
    key = hsm.IssuingKey(lambda: inter_key)
    key.open()
    lock = tmp_path / "crl.lock"
    ledger_a, ledger_b = PausingLedger(url), ledger_mod.Ledger(url, migrate=False)
    worker_a = crl_lock.LockedCrlPublisher(
        lock, ledger=ledger_a, authority=authority, key=key, now=lambda: T0
    )
    worker_b = crl_lock.LockedCrlPublisher(
        lock, ledger=ledger_b, authority=authority, key=key, now=lambda: T0
    )

    shared.revoke(ca_id, first, 1, "t")
    a = threading.Thread(target=worker_a.publish, args=([SHARD],))
    a.start()
    assert ledger_a.listed.wait(30)  # A has listed {first} and holds the lock
    shared.revoke(ca_id, second, 1, "t")
    b = threading.Thread(target=worker_b.publish, args=([SHARD],))
    b.start()
    b.join(timeout=1.0)  # unlocked, B would finish here with CRL number 1
    ledger_a.go.set()
    a.join(30)
    b.join(30)

    newest = shared.get_crl(ca_id, SHARD)
    assert newest is not None
    assert newest.crl_number == 2
    listed = x509.load_der_x509_crl(newest.crl_der)
    assert {r.serial_number for r in listed} == {first, second}
    for ledger in (shared, ledger_a, ledger_b):
        ledger.close()
