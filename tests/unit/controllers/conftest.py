"""Fixtures for the operator's unit tests: kmock as the API server, an in-memory CA.

`kmock` (a Kubernetes API emulator by kopf's author) serves the objects over real HTTP, so
padlock.kube's client is exercised as it is against a real API server. `InMemoryCA` signs for
real (padlock.pki profiles, software P-256 keys) and keeps the CA sidecar's contract:
the same idempotency key with the same public key answers the same certificate; with another
key it is refused (`idempotency-conflict`, the real CA's code). It can be switched down, made
to refuse, or made to "lose" an answer after committing (a timeout after the CA did the work).
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from padlock.api import group
from padlock.ca.client import CAInfo, CARefused, CAUnavailable, SignResult
from padlock.ca.errors import IdempotencyConflict
from padlock.controllers.context import Deps
from padlock.controllers.scheduler import RenewalScheduler
from padlock.kube import paths
from padlock.kube.client import Credentials, KubeClient
from padlock.pki import profiles, serials

NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=datetime.UTC)
NAMESPACE = "apps"


class Clock:
    """The controllers' clock seam: set or advance `now` instead of sleeping."""

    def __init__(self, now: datetime.datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, delta: datetime.timedelta) -> None:
        self.now += delta


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class InMemoryCA:
    """A real signing CA in the test process, shaped like `padlock.ca.client.CAClient`."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        start = clock() - datetime.timedelta(days=1)
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = profiles.build_certificate(
            profiles.ROOT_CA,
            subject=_name("test root"),
            public_key=self.root_key.public_key(),
            sans=[],
            issuer=None,
            issuer_key=self.root_key,
            serial=serials.new_serial(),
            not_before=start,
            not_after=start + datetime.timedelta(days=3650),
        )
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.intermediate = profiles.build_certificate(
            profiles.INTERMEDIATE_CA,
            subject=_name("test intermediate"),
            public_key=self.key.public_key(),
            sans=[],
            issuer=self.root,
            issuer_key=self.root_key,
            serial=serials.new_serial(),
            not_before=start,
            not_after=start + datetime.timedelta(days=1825),
        )
        self.down = False
        self.refusal: str | None = None
        self.lose_next_answer = False
        self.sign_calls: list[dict[str, Any]] = []
        self.issued: dict[str, tuple[bytes, SignResult]] = {}

    @staticmethod
    def pem(cert: x509.Certificate) -> str:
        return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")

    async def sign(
        self,
        csr_pem: str,
        profile: str,
        lifetime_seconds: int,
        idempotency_key: str,
        requester: str,
    ) -> SignResult:
        self.sign_calls.append(
            {"profile": profile, "lifetime": lifetime_seconds, "key": idempotency_key}
        )
        if self.down:
            raise CAUnavailable("cannot reach the CA at /run/padlock/ca.sock: refused")
        if self.refusal:
            raise CARefused("policy_violation", self.refusal, 422)
        csr = x509.load_pem_x509_csr(csr_pem.encode("ascii"))
        spki = csr.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if idempotency_key in self.issued:
            known_spki, result = self.issued[idempotency_key]
            if known_spki != spki:
                raise CARefused(IdempotencyConflict.code, "key reused with another CSR", 409)
            return result
        sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        now = self.clock()
        cert = profiles.build_certificate(
            profiles.get_profile(profile),
            subject=csr.subject,
            public_key=csr.public_key(),
            sans=list(sans),
            issuer=self.intermediate,
            issuer_key=self.key,
            serial=serials.new_serial(),
            not_before=now,
            not_after=now + datetime.timedelta(seconds=lifetime_seconds),
        )
        result = SignResult(
            certificate=self.pem(cert),
            chain=self.pem(self.intermediate),
            serial=serials.serial_hex(cert.serial_number).lower(),
        )
        self.issued[idempotency_key] = (spki, result)
        if self.lose_next_answer:
            self.lose_next_answer = False
            raise CAUnavailable("CA at /run/padlock/ca.sock did not answer POST /v1/sign in time")
        return result

    async def info(self) -> CAInfo:
        if self.down:
            raise CAUnavailable("cannot reach the CA at /run/padlock/ca.sock: refused")
        return CAInfo(
            name="test intermediate",
            chain=self.pem(self.intermediate),
            root=self.pem(self.root),
            ocsp_url=None,
            crl_url=None,
        )

    async def close(self) -> None:
        return None


@dataclasses.dataclass
class Env:
    """One test's world: the API emulator, the client, the CA, the clock, the deps."""

    kmock: Any
    kube: KubeClient
    ca: InMemoryCA
    clock: Clock
    deps: Deps
    due: list[tuple[tuple[str, str], datetime.datetime]]
    _uids: itertools.count[int] = dataclasses.field(default_factory=lambda: itertools.count(1))

    async def create(
        self, resource: paths.Resource, body: Mapping[str, Any], namespace: str | None = NAMESPACE
    ) -> dict[str, Any]:
        """Create an object as the API server would (uid, resourceVersion, generation)."""
        number = next(self._uids)
        meta = {
            "uid": f"00000000-0000-0000-0000-{number:012d}",
            "resourceVersion": str(number),
            "generation": 1,
            **body["metadata"],
        }
        if resource.namespaced:
            meta["namespace"] = namespace
        full = {"apiVersion": resource.api_version, **body, "metadata": meta}
        return await self.kube.create(resource.path(namespace), full)

    async def get(
        self, resource: paths.Resource, name: str, namespace: str | None = NAMESPACE
    ) -> dict[str, Any]:
        return await self.kube.get(resource.path(namespace, name))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ca(clock: Clock) -> InMemoryCA:
    return InMemoryCA(clock)


@pytest.fixture
async def env(kmock: Any, ca: InMemoryCA, clock: Clock) -> AsyncIterator[Env]:
    kube = KubeClient(Credentials(server=str(kmock.url).rstrip("/")))
    due: list[tuple[tuple[str, str], datetime.datetime]] = []

    async def record(key: tuple[str, str], when: datetime.datetime) -> None:
        due.append((key, when))

    deps = Deps(kube=kube, ca=ca, scheduler=RenewalScheduler(record, clock=clock), clock=clock)
    yield Env(kmock=kmock, kube=kube, ca=ca, clock=clock, deps=deps, due=due)
    await kube.close()


def issuer_body(name: str = "ca", **spec: Any) -> dict[str, Any]:
    return {
        "kind": group.Kind.ISSUER.value,
        "metadata": {"name": name},
        "spec": spec or {"ca": {}},
    }


def certificate_body(name: str = "web", **spec: Any) -> dict[str, Any]:
    return {
        "kind": group.Kind.CERTIFICATE.value,
        "metadata": {"name": name},
        "spec": {
            "secretName": f"{name}-tls",
            "issuerRef": {"name": "ca"},
            "dnsNames": [f"{name}.apps.svc", f"{name}.example.test"],
            "duration": "720h",
            **spec,
        },
    }
