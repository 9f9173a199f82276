"""pkilint on one DER certificate, with padlock's documented waivers for a private PKI.

Called by the CA's lint gate (`padlock.ca.lintgate`, on every certificate before the ledger
commit), by the interop tests and by `padlock inspect --lint`. Pure: DER bytes in, findings
out. pkilint is a pure-Python dependency, so it is allowed in `padlock.pki`.

Two linters:

- `pkix`: pkilint's RFC 5280 validators (what `lint_pkix_cert` runs).
- `cabf-serverauth`: the CA/Browser Forum TLS Baseline Requirements validators (what
  `lint_cabf_serverauth_cert --detect` runs), for `tls-server` leaves when asked.

Waivers: a few ERROR findings are wrong for padlock's certificates, and each is re-checked
here rather than dropped blindly. A waived finding keeps its severity and code, gets
`waiver` set to the reason, and does not block:

- `pkix.invalid_uri_syntax` on a URI padlock's own RFC 3986 / SPIFFE ID check accepts:
  pkilint validates URIs with `validators.url`, which knows only web schemes and so refuses
  every `spiffe://` ID (RFC 5280 §4.2.1.6 allows any scheme).
- `pkix.invalid_domain_name_syntax` on a DNS name padlock's own check accepts: pkilint refuses
  wildcards (`*.example.com`, which RFC 5280 §4.2.1.6 leaves to the application; the CABF
  linter filters this same finding) and single-label cluster names (`my-svc`).
- `cabf.internal_domain_name` and `cabf.serverauth.*.certificate_policies_extension_absent`:
  a private CA issues internal names by design and must not assert the CABF policy OIDs.

pkilint's validator objects are driven by `padlock.pki.lint_walk`, which runs exactly the
validators pkilint's own `ValidatorContainer.validate` would, on the same nodes in the same
order, but skips the ~4,000 `match()` calls per certificate that cannot succeed (half of
pkilint's CPU). `stock=True` runs pkilint's own walk, for the differential test
(`tests/unit/pki/test_lint_walk.py`) and `bench/bench_pkilint.py`.

padlock's walk runs on its own copies of pkilint's trees, whose decoders reuse the decoded
pyasn1 value of an embedded value (extnValue, name attribute value, algorithm parameters)
seen before in this process (`padlock.pki.lint_decode`, `DECODE_CACHE`): a CA's certificates
of one profile and issuer share most extension values. `stock=True` uses pkilint's trees
unchanged; `decode_cache=False` turns the memo off for the tests and the benchmark
(`tests/unit/pki/test_lint_decode.py`).
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Callable, Iterable
from typing import Any

from padlock.pki import lint_decode, names
from padlock.pki.errors import PolicyError

BLOCKING_SEVERITIES = frozenset({"FATAL", "ERROR"})

DECODE_CACHE = lint_decode.DecodeCache()
"""This process's memo of decoded extension values, name attribute values and algorithm
parameters, shared by padlock's RFC 5280 and CABF trees (`padlock.pki.lint_decode`)."""

# pkilint does not promise that one validator tree may run in two threads at once; it is
# pure-Python and CPU-bound, so under the GIL a lock costs no throughput. For parallelism,
# call from several processes (as the CA's lint gate does).
_LOCK = threading.Lock()

_PRIVATE_PKI_CABF_WAIVERS = {
    "cabf.internal_domain_name": "private PKI: internal names are what this CA is for",
    "cabf.serverauth.subscriber.certificate_policies_extension_absent": (
        "private PKI: asserting CABF policy OIDs would claim Baseline Requirements compliance"
    ),
    "cabf.serverauth.ca.certificate_policies_extension_absent": (
        "private PKI: asserting CABF policy OIDs would claim Baseline Requirements compliance"
    ),
}


@dataclasses.dataclass(frozen=True)
class Finding:
    """One pkilint finding. `severity` is pkilint's (FATAL, ERROR, WARNING, NOTICE, INFO)."""

    linter: str
    """`pkix` or `cabf-serverauth`."""
    severity: str
    code: str
    message: str
    path: str
    """Where in the certificate, e.g. `certificate.tbsCertificate.extensions.5.extnValue...`."""
    waiver: str | None = None
    """Why padlock does not block on this finding, or None."""

    @property
    def blocking(self) -> bool:
        return self.severity in BLOCKING_SEVERITIES and self.waiver is None

    def as_dict(self) -> dict[str, str | None]:
        return dataclasses.asdict(self)


def blocking(findings: Iterable[Finding]) -> list[Finding]:
    """The findings that refuse a certificate (ERROR or FATAL, not waived)."""
    return [f for f in findings if f.blocking]


def _accepted_by(check: Callable[[str], object], value: str) -> bool:
    try:
        return check(value) == value
    except PolicyError:
        return False


def _text(pdu: Any) -> str:
    """The node's value as text. Only for the few findings a waiver re-checks: pyasn1's str()
    pretty-prints, and doing it for every validated node cost a quarter of pkilint's time."""
    return str(pdu) if pdu.isValue else ""


def _waiver(code: str, pdu: Any) -> str | None:
    if code == "pkix.invalid_uri_syntax" and _accepted_by(names.normalize_uri, _text(pdu)):
        return "pkilint knows only web URI schemes; padlock's RFC 3986/SPIFFE ID check passes"
    if code == "pkix.invalid_domain_name_syntax" and _accepted_by(
        names.normalize_dns_name, _text(pdu)
    ):
        return "wildcard or single-label name; padlock's RFC 1034/IDNA check passes"
    return _PRIVATE_PKI_CABF_WAIVERS.get(code)


@functools.cache
def _pkix_validator(decode_cache: bool = False) -> Any:
    """pkilint's RFC 5280 tree; with `decode_cache`, padlock's own copy whose decoders
    memoise (`padlock.pki.lint_decode`), never the one `stock=True` runs."""
    from pkilint.pkix import certificate, extension, name

    container = certificate.create_pkix_certificate_validator_container(
        certificate.create_decoding_validators(
            name.ATTRIBUTE_TYPE_MAPPINGS, extension.EXTENSION_MAPPINGS
        ),
        [
            certificate.create_issuer_validator_container([]),
            certificate.create_validity_validator_container(),
            certificate.create_subject_validator_container([]),
            certificate.create_extensions_validator_container([]),
            certificate.create_spki_validator_container([]),
        ],
    )
    if decode_cache:
        lint_decode.install(container, DECODE_CACHE)
    return container


@functools.cache
def _cabf_validator(certificate_type: Any, decode_cache: bool = False) -> tuple[Any, Any]:
    from pkilint.cabf import serverauth
    from pkilint.pkix import certificate

    validator = certificate.create_pkix_certificate_validator_container(
        serverauth.create_decoding_validators(), serverauth.create_validators(certificate_type)
    )
    if decode_cache:
        lint_decode.install(validator, DECODE_CACHE)
    return validator, serverauth.create_serverauth_finding_filters(certificate_type)


def warm_up(*, cabf_serverauth: bool = False) -> None:
    """Import pkilint and build the RFC 5280 validators and their walker now (e.g. in a fresh
    worker process), so the first certificate does not pay for it. With `cabf_serverauth`,
    also the CABF tree for DV subscriber certificates (what padlock's tls-server leaves are
    detected as): building one costs ~0.35 s of CPU, as pkilint parses the public suffix list
    five times."""
    _walker(_pkix_validator(True))
    if cabf_serverauth:
        from pkilint.cabf.serverauth import serverauth_constants

        dv = serverauth_constants.CertificateType.DV_FINAL_CERTIFICATE
        _walker(_cabf_validator(dv, True)[0])


@functools.cache
def _loader() -> Any:
    from pkilint import loader

    return loader.RFC5280CertificateDocumentLoader()


def _load(der: bytes) -> Any:
    return _loader().load_der_document(der, "certificate")


@functools.cache
def _walker(container: Any) -> Any:
    from padlock.pki import lint_walk

    return lint_walk.Walker(container)


def _validate(container: Any, root: Any, stock: bool) -> list[Any]:
    """pkilint's ValidationResults for a document: padlock's walk, or pkilint's own."""
    return container.validate(root) if stock else _walker(container).validate(root)  # type: ignore[no-any-return]


def _findings(linter: str, results: Iterable[Any]) -> list[Finding]:
    found = []
    for result in results:
        for description in result.finding_descriptions:
            code = description.finding.code
            found.append(
                Finding(
                    linter=linter,
                    severity=description.finding.severity.name,
                    code=code,
                    message=description.message or "",
                    path=result.node.path,
                    waiver=_waiver(code, result.node.pdu),
                )
            )
    return found


def lint_pkix(der: bytes, *, stock: bool = False, decode_cache: bool = True) -> list[Finding]:
    """pkilint's RFC 5280 findings for one DER certificate (all severities)."""
    with _LOCK:
        tree = _pkix_validator(True) if decode_cache and not stock else _pkix_validator()
        return _findings("pkix", _validate(tree, _load(der).root, stock))


def lint_cabf_serverauth(
    der: bytes, *, stock: bool = False, decode_cache: bool = True
) -> list[Finding]:
    """pkilint's CABF TLS BR findings, certificate type detected as `--detect` does, with the
    CABF linter's own filters applied (as the CLI does without `--report-all`)."""
    from pkilint import finding_filter
    from pkilint.cabf import serverauth

    with _LOCK:
        document = _load(der)
        certificate_type = serverauth.determine_certificate_type(document)
        validator, filters = (
            _cabf_validator(certificate_type, True)
            if decode_cache and not stock
            else _cabf_validator(certificate_type)
        )
        results, _ = finding_filter.filter_results(
            filters, _validate(validator, document.root, stock)
        )
        return _findings("cabf-serverauth", results)


def lint_certificate(
    der: bytes, *, cabf_serverauth: bool = False, stock: bool = False, decode_cache: bool = True
) -> list[Finding]:
    """Every finding for one DER certificate: RFC 5280 always, CABF TLS BR when asked.

    `stock=True` walks the validators with pkilint's own code and pkilint's own trees (same
    findings, about twice the CPU): only for the differential tests and the benchmark.
    `decode_cache=False` (only with padlock's walk) decodes every embedded value afresh, as
    pkilint does, for the same tests and benchmark.
    Raises ValueError if pkilint cannot decode the DER at all.
    """
    findings = lint_pkix(der, stock=stock, decode_cache=decode_cache)
    if cabf_serverauth:
        findings += lint_cabf_serverauth(der, stock=stock, decode_cache=decode_cache)
    return findings
