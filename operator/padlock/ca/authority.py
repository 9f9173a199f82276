"""The issuing CA as the pipeline sees it: its certificate, chain, root and ledger id.

Called once at start-up by `padlock.services.ca_http` (and by tests): reads the `chain.pem`
that `padlock ca init-intermediate` wrote, registers root and intermediate in the ledger
(idempotent by public key), and derives the URLs the profile puts into every leaf.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from padlock.ca import config as ca_config
from padlock.ledger import ledger as ledger_mod
from padlock.ledger import records
from padlock.pki import profiles

CRL_SHARDS = 16
"""CRL shards per CA; a certificate's shard is `serial % CRL_SHARDS` (DESIGN.md, Revocation
responder). The CRL publisher must use the same rule: `crl_shard()` is the one definition."""


def crl_shard(serial: int) -> int:
    return serial % CRL_SHARDS


@dataclasses.dataclass(frozen=True)
class Authority:
    """The in-cluster intermediate CA."""

    name: str
    ca_id: int
    certificate: x509.Certificate
    intermediates: tuple[x509.Certificate, ...]
    """The chain sent with every leaf: the issuing CA first, root excluded (RFC 8446 §4.4.2)."""
    root: x509.Certificate
    urls: ca_config.UrlConfig

    @property
    def chain_pem(self) -> str:
        return "".join(_pem(c) for c in self.intermediates)

    @property
    def root_pem(self) -> str:
        return _pem(self.root)

    def endpoints(self, serial: int) -> profiles.Endpoints:
        """AIA (RFC 5280 §4.2.2.1) and CDP (§4.2.1.13) URLs for the leaf with `serial`."""
        crl: tuple[str, ...] = ()
        if self.urls.crl_base:
            crl = (f"{self.urls.crl_base.rstrip('/')}/{crl_shard(serial)}.crl",)
        return profiles.Endpoints(
            ocsp_urls=(self.urls.ocsp,) if self.urls.ocsp else (),
            ca_issuers_urls=(self.urls.ca_issuers,) if self.urls.ca_issuers else (),
            crl_urls=crl,
        )

    def crl_url(self) -> str | None:
        return f"{self.urls.crl_base.rstrip('/')}/" if self.urls.crl_base else None


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _is_self_signed(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def load_chain(path: Path) -> tuple[x509.Certificate, tuple[x509.Certificate, ...]]:
    """(root, intermediates issuing-CA-first) from a PEM bundle in any order.

    ValueError names the file when it holds no root, no intermediate, or cannot be parsed.
    """
    try:
        certs = x509.load_pem_x509_certificates(path.read_bytes())
    except OSError as exc:
        raise ValueError(f"cannot read the CA chain {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ValueError(f"CA chain {path} is not a PEM certificate bundle: {exc}") from None
    roots = [c for c in certs if _is_self_signed(c)]
    others = [c for c in certs if not _is_self_signed(c)]
    if len(roots) != 1 or not others:
        raise ValueError(
            f"CA chain {path} must hold the root and at least one intermediate certificate "
            f"(found {len(roots)} self-signed and {len(others)} other certificates)"
        )
    # Order issuing-CA first: the certificate nobody else in the bundle names as issuer.
    issuers = {c.issuer for c in others}
    leafmost = [c for c in others if c.subject not in issuers]
    ordered: list[x509.Certificate] = leafmost[:1]
    while ordered and ordered[-1].issuer != roots[0].subject:
        parent = [c for c in others if c.subject == ordered[-1].issuer]
        if not parent:
            raise ValueError(f"CA chain {path} is broken above {ordered[-1].subject}")
        ordered.append(parent[0])
    return roots[0], tuple(ordered)


def load(config: ca_config.CAConfig, ledger: ledger_mod.Ledger) -> Authority:
    """Read the chain file and register root and issuing CA in the ledger."""
    root, intermediates = load_chain(config.chain_file)
    root_id = ledger.register_ca(root, ca_type=records.CAType.ROOT, actor="padlock-ca")
    parent = root_id
    ca_id = root_id
    for cert in reversed(intermediates):
        ca_id = ledger.register_ca(
            cert,
            ca_type=records.CAType.INTERMEDIATE,
            parent_ca_id=parent,
            hsm_slot_id=config.pkcs11.token_label,
            actor="padlock-ca",
        )
        parent = ca_id
    return Authority(
        name=config.name,
        ca_id=ca_id,
        certificate=intermediates[0],
        intermediates=intermediates,
        root=root,
        urls=config.urls,
    )
