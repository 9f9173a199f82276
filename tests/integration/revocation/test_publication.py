"""padlock.ca.publication on a real SQLite ledger with software keys and a fixed clock: what is
(re-)signed after issuance, after revocation and on the timer, and which CRL shards."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import datetime
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509 import ocsp as c_ocsp
from cryptography.x509.oid import NameOID

from padlock import metrics
from padlock.ca import authority as authority_mod
from padlock.ca import config as ca_config
from padlock.ca import crl_publisher, hsm, ocsp_signing, pipeline, publication
from padlock.keys import software
from padlock.ledger import ledger as ledger_mod
from padlock.ledger import records
from padlock.pki import profiles, serials
from padlock.pki.algorithms import KeyAlgorithm

T0 = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=datetime.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime.datetime:
        return self.now


def _cert(profile: profiles.Profile, cn: str, public: object, issuer: x509.Certificate | None,
          key: object, days: int = 30) -> x509.Certificate:  # fmt: skip
    return profiles.build_certificate(
        profile,
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]) if cn else x509.Name([]),
        public_key=public,  # type: ignore[arg-type]
        sans=(x509.DNSName("a.example.test"),) if profile is profiles.TLS_SERVER else (),
        issuer=issuer,
        issuer_key=key,  # type: ignore[arg-type]
        serial=serials.new_serial(),
        not_before=T0 - datetime.timedelta(days=1),
        not_after=T0 + datetime.timedelta(days=days),
    )


@dataclasses.dataclass
class World:
    ledger: ledger_mod.Ledger
    authority: authority_mod.Authority
    publication: publication.Publication
    clock: Clock
    leaves: list[x509.Certificate]
    issuer_key: object


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    root_signer = software.generate("root", KeyAlgorithm.EC_P256)
    root = _cert(profiles.ROOT_CA, "root", root_signer.public_key(), None,
                 root_signer.private_key(), 3650)  # fmt: skip
    inter_signer = software.generate("inter", KeyAlgorithm.EC_P256)
    inter = _cert(profiles.INTERMEDIATE_CA, "inter", inter_signer.public_key(), root,
                  root_signer.private_key(), 365)  # fmt: skip
    ocsp_signer = software.generate("ocsp", KeyAlgorithm.EC_P256)
    ocsp_cert = _cert(profiles.OCSP_RESPONDER, "ocsp", ocsp_signer.public_key(), inter,
                      inter_signer.private_key())  # fmt: skip
    clock = Clock()
    ledger = ledger_mod.Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", clock=clock)
    root_id = ledger.register_ca(root, ca_type=records.CAType.ROOT)
    ca_id = ledger.register_ca(inter, ca_type=records.CAType.INTERMEDIATE, parent_ca_id=root_id)
    urls = ca_config.UrlConfig(crl_base="http://ca.example.test/crl")
    authority = authority_mod.Authority("test", ca_id, inter, (inter,), root, urls)
    key = hsm.IssuingKey(lambda: inter_signer)
    key.open()
    signer = ocsp_signing.ResponseSigner(
        issuer=inter,
        responder_certificate=ocsp_cert,
        key=ocsp_signing.ResponderKey(lambda: ocsp_signer),
        now=clock,
    )
    executor = concurrent.futures.ThreadPoolExecutor(2)
    pub = publication.Publication(
        ocsp_signing.PreSigner(ledger=ledger, ca_id=ca_id, signer=signer),
        crl_publisher.CrlPublisher(ledger=ledger, authority=authority, key=key, now=clock),
        executor,
        now=clock,
    )
    leaves = []
    for days in (30, 2):
        leaf_key = software.generate("leaf", KeyAlgorithm.EC_P256)
        leaf = _cert(profiles.TLS_SERVER, "", leaf_key.public_key(), inter,
                     inter_signer.private_key(), days)  # fmt: skip
        ledger.record_issuance(ca_id, leaf, cert_type=records.CertType.TLS_SERVER, requester="t")
        leaves.append(leaf)
    yield World(ledger, authority, pub, clock, leaves, inter_signer.private_key())
    executor.shutdown()
    ledger.close()


def issued(cert: x509.Certificate) -> pipeline.Issued:
    return pipeline.Issued(cert, "", cert.serial_number, "tls-server", "t", False)


def crl_numbers(world: World) -> int:
    """The sum of every shard's CRL number: how many CRLs were published, plus a constant."""
    total = 0
    for shard in range(16):
        record = world.ledger.get_crl(world.authority.ca_id, shard)
        assert record is not None
        total += record.crl_number
    return total


def cached_status(world: World, serial: int) -> c_ocsp.OCSPCertStatus:
    entry = world.ledger.get_ocsp_response(world.authority.ca_id, serial)
    assert entry is not None
    return c_ocsp.load_der_ocsp_response(entry.response_der).certificate_status


async def test_issuance_presigns_good_and_revocation_resigns_and_regenerates_only_its_shard(
    world: World,
) -> None:
    leaf = world.leaves[0]
    ca_id = world.authority.ca_id
    await world.publication.after_issue(issued(leaf))
    assert cached_status(world, leaf.serial_number) is c_ocsp.OCSPCertStatus.GOOD
    await world.publication.tick()  # first tick: every shard gets a CRL
    numbers = {s: world.ledger.get_crl(ca_id, s).crl_number for s in range(16)}  # type: ignore[union-attr]

    world.ledger.revoke(ca_id, leaf.serial_number, 1, "t")
    await world.publication.after_revoke(leaf.serial_number)

    entry = world.ledger.get_ocsp_response(ca_id, leaf.serial_number)
    assert entry is not None and entry.status is records.Status.REVOKED
    parsed = c_ocsp.load_der_ocsp_response(entry.response_der)
    assert parsed.revocation_reason is x509.ReasonFlags.key_compromise
    shard = authority_mod.crl_shard(leaf.serial_number)
    for s in range(16):
        record = world.ledger.get_crl(ca_id, s)
        assert record is not None
        assert record.crl_number == numbers[s] + (1 if s == shard else 0)
    crl = x509.load_der_x509_crl(world.ledger.get_crl(ca_id, shard).crl_der)  # type: ignore[union-attr]
    assert crl.get_revoked_certificate_by_serial_number(leaf.serial_number) is not None
    idp = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
    assert idp.full_name == [
        x509.UniformResourceIdentifier(f"http://ca.example.test/crl/{shard}.crl")
    ]
    # The shard URL is the one the certificate's CDP names (authority.endpoints).
    assert world.authority.endpoints(leaf.serial_number).crl_urls == (
        f"http://ca.example.test/crl/{shard}.crl",
    )


async def test_timer_resigns_after_half_validity_and_skips_expired_certificates(
    world: World,
) -> None:
    fresh, short = world.leaves
    for leaf in world.leaves:
        await world.publication.after_issue(issued(leaf))
    ca_id = world.authority.ca_id
    before = {leaf.serial_number: world.ledger.get_ocsp_response(ca_id, leaf.serial_number)
              for leaf in world.leaves}  # fmt: skip
    assert world.publication.presigner is not None
    world.clock.now = T0 + datetime.timedelta(hours=11)
    assert world.publication.presigner.refresh_due(world.clock.now) == 0
    world.clock.now = T0 + datetime.timedelta(days=3)  # past half validity; `short` expired
    assert world.publication.presigner.refresh_due(world.clock.now) == 1
    after = world.ledger.get_ocsp_response(ca_id, fresh.serial_number)
    assert after is not None and after.this_update > before[fresh.serial_number].this_update  # type: ignore[union-attr]
    unchanged = world.ledger.get_ocsp_response(ca_id, short.serial_number)
    assert unchanged == before[short.serial_number]


async def test_crls_are_due_at_two_thirds_of_validity_and_export_next_update(
    world: World,
) -> None:
    crls = world.publication.crls
    assert crls.due(T0) == list(range(16))
    crls.publish_due(T0)
    assert crls.due(T0 + datetime.timedelta(hours=15)) == []
    assert crls.due(T0 + datetime.timedelta(hours=16, minutes=1)) == list(range(16))
    record = world.ledger.get_crl(world.authority.ca_id, 3)
    assert record is not None
    gauge = metrics.REGISTRY.get_sample_value(
        "padlock_crl_next_update_timestamp_seconds", {"shard": "3"}
    )
    assert gauge == record.next_update.timestamp()


async def test_repair_resigns_a_good_response_left_behind_by_a_revocation(world: World) -> None:
    leaf = world.leaves[0]
    await world.publication.after_issue(issued(leaf))
    # A CA that stopped between the ledger commit and the re-signing.
    world.ledger.revoke(world.authority.ca_id, leaf.serial_number, 4, "t")
    assert cached_status(world, leaf.serial_number) is c_ocsp.OCSPCertStatus.GOOD
    await world.publication.tick()
    assert cached_status(world, leaf.serial_number) is c_ocsp.OCSPCertStatus.REVOKED


async def test_timer_regenerates_the_shard_of_a_revocation_the_hook_missed(world: World) -> None:
    ca_id = world.authority.ca_id
    leaf = world.leaves[0]
    shard = authority_mod.crl_shard(leaf.serial_number)
    await world.publication.tick()
    first = world.ledger.get_crl(ca_id, shard)
    assert first is not None
    world.ledger.revoke(ca_id, leaf.serial_number, 5, "t")  # no after_revoke hook ran
    await world.publication.tick()
    record = world.ledger.get_crl(ca_id, shard)
    assert record is not None and record.crl_number > first.crl_number
    revoked = x509.load_der_x509_crl(record.crl_der).get_revoked_certificate_by_serial_number(
        leaf.serial_number
    )
    assert revoked is not None
    # Nothing new: the next tick leaves the shard alone.
    await world.publication.tick()
    assert world.ledger.get_crl(ca_id, shard) == record


async def test_concurrent_revocations_share_crl_regenerations(world: World) -> None:
    ca_id = world.authority.ca_id
    inter = world.authority.certificate
    for n in range(38):
        public = software.generate("leaf", KeyAlgorithm.EC_P256).public_key()
        leaf = _cert(profiles.TLS_SERVER, "", public, inter, world.issuer_key)
        world.ledger.record_issuance(
            ca_id, leaf, cert_type=records.CertType.TLS_SERVER, requester=f"t{n}"
        )
        world.leaves.append(leaf)
    await world.publication.tick()
    before = crl_numbers(world)
    serials = [leaf.serial_number for leaf in world.leaves]
    for serial in serials:
        world.ledger.revoke(ca_id, serial, 1, "t")
    await asyncio.gather(*(world.publication.after_revoke(s) for s in serials))
    published = crl_numbers(world) - before
    for serial in serials:
        record = world.ledger.get_crl(ca_id, authority_mod.crl_shard(serial))
        assert record is not None
        crl = x509.load_der_x509_crl(record.crl_der)
        assert crl.get_revoked_certificate_by_serial_number(serial) is not None
    # Without sharing, 40 revocations would publish 40 CRLs.
    assert published < len(serials) / 2, published


async def test_a_revoked_answer_never_predates_its_revocation(world: World) -> None:
    """RFC 6960 §4.2.1: thisUpdate of a revoked answer is not before revocationTime, even
    though good answers are backdated a minute for slow client clocks."""
    leaf = world.leaves[0]
    ca_id = world.authority.ca_id
    world.ledger.revoke(ca_id, leaf.serial_number, 1, "t")
    await world.publication.after_revoke(leaf.serial_number)
    entry = world.ledger.get_ocsp_response(ca_id, leaf.serial_number)
    assert entry is not None
    parsed = c_ocsp.load_der_ocsp_response(entry.response_der)
    assert parsed.revocation_time_utc is not None
    assert parsed.this_update_utc >= parsed.revocation_time_utc.replace(microsecond=0)
