"""Chain building and verification: order a bag of certificates, then check every link.

Called by the CLI (`padlock inspect --verify`, `padlock ca init-intermediate` sanity checks),
the operator's Secret writer (leaf first, then the chain, RFC 8446 §4.4.2) and tests.
`verify_chain` runs `cryptography`'s RFC 5280 / Web PKI path validation and then padlock's own
per-link checks (`check_links`), whose messages name the certificate and the rule.
"""

from __future__ import annotations

import datetime
import enum
import ipaddress
import itertools
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import verification


class ChainError(ValueError):
    """A chain that cannot be built or does not verify; the message says which link and why."""


class Purpose(enum.Enum):
    """What the leaf is verified for (the EKU a relying party would require)."""

    SERVER = "server"
    """id-kp-serverAuth and a SAN matching `server_name`, as a TLS client checks."""
    CLIENT = "client"
    """id-kp-clientAuth, as a TLS server checks (SPIFFE SVIDs verify this way too)."""
    ANY = "any"
    """Path only: any EKU on the leaf (e.g. an OCSP responder certificate)."""


def describe(cert: x509.Certificate) -> str:
    """A short name for messages: the subject, or the first SAN for an empty subject."""
    if len(cert.subject):
        return cert.subject.rfc4514_string()
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return f"serial {cert.serial_number:x}"
    first = next(iter(san), None)
    return f"SAN {first.value}" if first is not None else f"serial {cert.serial_number:x}"


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def is_self_signed(cert: x509.Certificate) -> bool:
    """Self-issued (RFC 5280 §3.2) and the signature verifies with its own key."""
    if cert.subject != cert.issuer:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def order_chain(
    certs: Sequence[x509.Certificate], leaf: x509.Certificate | None = None
) -> list[x509.Certificate]:
    """Order a bag leaf → intermediates → root (if present), by name and signature.

    Without `leaf`, the leaf is the one certificate that issued no other in the bag.
    Duplicates are dropped; a certificate that is not on the path raises, since a bag with
    strangers in it (a Secret mixing two chains) is a mistake worth reporting.
    """
    unique = list({_der(c): c for c in certs}.values())
    if leaf is not None and _der(leaf) not in {_der(c) for c in unique}:
        unique.insert(0, leaf)
    if not unique:
        raise ChainError("no certificates to order")
    if leaf is None:
        leaves = [
            c
            for c in unique
            if not any(o is not c and not is_self_signed(o) and _issued_by(o, c) for o in unique)
        ]
        if len(leaves) != 1:
            names = ", ".join(describe(c) for c in leaves) or "none (issuance loop)"
            raise ChainError(f"cannot tell the leaf: candidates are {names}")
        leaf = leaves[0]
    chain = [leaf]
    remaining = [c for c in unique if _der(c) != _der(leaf)]
    current = leaf
    while not is_self_signed(current):
        issuers = [c for c in remaining if c.subject == current.issuer and _issued_by(current, c)]
        if not issuers:
            break
        current = issuers[0]
        chain.append(current)
        remaining = [c for c in remaining if _der(c) != _der(current)]
    if remaining:
        raise ChainError(
            "certificates not on the leaf's path: " + ", ".join(describe(c) for c in remaining)
        )
    return chain


def _basic_constraints(cert: x509.Certificate) -> x509.BasicConstraints | None:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return None


def _key_usage(cert: x509.Certificate) -> x509.KeyUsage | None:
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None


def check_links(
    chain: Sequence[x509.Certificate], now: datetime.datetime, *, require_root: bool = True
) -> None:
    """padlock's own per-link checks of an ordered chain (leaf first); ChainError on the first
    failure. RFC 5280 §6.1.3 (signature, validity, name chaining) and §6.1.4 (issuer is a CA,
    pathLenConstraint, keyCertSign). With `require_root` the last certificate must be a
    self-signed root; without it, the caller has already decided the last one is trusted."""
    if not chain:
        raise ChainError("empty chain")
    for cert in chain:
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise ChainError(
                f"{describe(cert)} is not valid at {now.isoformat()} (valid "
                f"{cert.not_valid_before_utc.isoformat()} to "
                f"{cert.not_valid_after_utc.isoformat()})"
            )
    for depth, (cert, issuer) in enumerate(itertools.pairwise(chain), start=1):
        if cert.issuer != issuer.subject:
            raise ChainError(
                f"{describe(cert)} names issuer {cert.issuer.rfc4514_string()!r} but the next "
                f"certificate is {issuer.subject.rfc4514_string()!r} (RFC 5280 §6.1.3 (a)(4))"
            )
        if not _issued_by(cert, issuer):
            raise ChainError(
                f"signature of {describe(cert)} does not verify with the key of {describe(issuer)}"
            )
        bc = _basic_constraints(issuer)
        if bc is None or not bc.ca:
            raise ChainError(
                f"{describe(issuer)} issued {describe(cert)} but is not a CA "
                "(basicConstraints cA=FALSE or absent, RFC 5280 §6.1.4 (k))"
            )
        # Intermediates below `issuer`, not counting the leaf (RFC 5280 §6.1.4 (l)-(m)).
        below = depth - 1
        if bc.path_length is not None and below > bc.path_length:
            raise ChainError(
                f"{describe(issuer)} has pathLenConstraint {bc.path_length} but {below} "
                "CA certificates follow it (RFC 5280 §4.2.1.9)"
            )
        ku = _key_usage(issuer)
        if ku is not None and not ku.key_cert_sign:
            raise ChainError(
                f"{describe(issuer)} issued {describe(cert)} without keyCertSign in its "
                "keyUsage (RFC 5280 §4.2.1.3)"
            )
    if require_root and not is_self_signed(chain[-1]):
        raise ChainError(f"chain ends at {describe(chain[-1])}, which is not a self-signed root")


def _server_subject(name: str) -> verification.Subject:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def verify_chain(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    *,
    now: datetime.datetime,
    purpose: Purpose = Purpose.ANY,
    server_name: str | None = None,
) -> list[x509.Certificate]:
    """Verify `leaf` up to one of `roots` at `now`; return the chain, leaf first, root last.

    Path validation is `cryptography.x509.verification` (RFC 5280 + CABF profile checks); the
    chain it found is then re-checked link by link with `check_links`. A trusted root need
    not be self-signed: pinning the intermediate as the trust anchor is legitimate (RFC 5280
    §6.1.1 (d) takes the trust anchor as an input, not as a certificate in the path).
    """
    if not roots:
        raise ChainError("no trusted roots given")
    builder = verification.PolicyBuilder().store(verification.Store(list(roots))).time(now)
    try:
        if purpose is Purpose.SERVER:
            if server_name is None:
                raise ChainError("Purpose.SERVER needs a server_name to match")
            chain = builder.build_server_verifier(_server_subject(server_name)).verify(
                leaf, list(intermediates)
            )
        elif purpose is Purpose.CLIENT:
            chain = builder.build_client_verifier().verify(leaf, list(intermediates)).chain
        else:
            builder = builder.extension_policies(
                ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
                ee_policy=verification.ExtensionPolicy.permit_all(),
            )
            chain = builder.build_client_verifier().verify(leaf, list(intermediates)).chain
    except verification.VerificationError as exc:
        raise ChainError(f"{describe(leaf)} does not verify for {purpose.value}: {exc}") from None
    check_links(chain, now, require_root=False)
    return chain
