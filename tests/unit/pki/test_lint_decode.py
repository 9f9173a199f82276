"""padlock.pki.lint_decode against stock pkilint: with decoded values memoised across
certificates, every validator runs on the same nodes with the same findings as pkilint's own
walk on freshly decoded documents, over the corpus (tests/unit/pki/lint_corpus.py) linted
several times in varying orders, defective certificates and decode failures included; the
memoised pyasn1 values are never changed by linting."""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

import pyasn1_fasder  # type: ignore[import-untyped]
import pytest
from pkilint import document, validation
from pkilint.cabf import serverauth
from pkilint.cabf.serverauth.serverauth_constants import CertificateType
from pyasn1.type import base
from pyasn1_alt_modules import rfc5280

from padlock.pki import lint, lint_decode
from tests.unit.pki import lint_corpus

DV = CertificateType.DV_FINAL_CERTIFICATE

Trace = list[tuple[tuple[int, ...], str, tuple[tuple[str, str, str | None], ...]]]


def positions(container: Any, prefix: tuple[int, ...] = ()) -> dict[int, tuple[int, ...]]:
    """id(validator) → its position in the tree, so two trees built alike compare."""
    found = {id(container): prefix}
    for i, v in enumerate(container.validators):
        found[id(v)] = (*prefix, i)
        if isinstance(v, validation.ValidatorContainer):
            found.update(positions(v, (*prefix, i)))
    return found


def trace(container: Any, results: list[Any]) -> Trace:
    """Every ValidationResult, empty ones included: (validator position, node path, findings)."""
    where = positions(container)
    return [
        (
            where[id(r.validator)],
            r.node.path,
            tuple(
                (d.finding.code, d.finding.severity.name, d.message) for d in r.finding_descriptions
            ),
        )
        for r in results
    ]


def stock(container: Any, der: bytes) -> Trace:
    return trace(container, container.validate(lint._load(der).root))


def memoised(container: Any, der: bytes) -> Trace:
    return trace(container, lint._walker(container).validate(lint._load(der).root))


def orders(names: list[str]) -> Iterable[str]:
    """The corpus forward, backward, then shuffled twice (seeded), so that each memoised
    value is first decoded for one certificate and reused for others."""
    shuffled = random.Random(4)
    yield from names
    yield from reversed(names)
    for _ in range(2):
        yield from shuffled.sample(names, len(names))


SCHEMA_ATTRIBUTES = (
    "tagSet",
    "subtypeSpec",
    "sizeSpec",
    "componentType",
    "namedValues",
    "_readOnly",  # the schema's keyword arguments
)


def fingerprint(value: Any) -> Any:
    """A pyasn1 value's whole state: its attributes, components recursively (schema objects
    by identity, as they are shared with pkilint's schema instances), so any change shows."""
    if isinstance(value, base.Asn1Item) or type(value).__qualname__.endswith("DynamicNames"):
        if value is base.noValue:
            return "noValue"
        return (
            type(value).__qualname__,
            tuple(
                (k, id(v) if k in SCHEMA_ATTRIBUTES else fingerprint(v))
                for k, v in sorted(vars(value).items())
            ),
        )
    if isinstance(value, dict):
        return tuple(sorted((repr(k), fingerprint(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(fingerprint(v) for v in value)
    if value is None or isinstance(value, bytes | str | int | bool | float):
        return repr(value)
    return (type(value).__qualname__, id(value))


@pytest.fixture
def cache() -> lint_decode.DecodeCache:
    """The process's memo, emptied, so all reuse happens within the test."""
    lint.DECODE_CACHE.clear()
    lint.DECODE_CACHE.hits = lint.DECODE_CACHE.misses = 0
    return lint.DECODE_CACHE


def test_memoised_rfc5280_walk_matches_stock_pkilint_over_the_corpus_in_varying_orders(
    cache: lint_decode.DecodeCache,
) -> None:
    corpus = lint_corpus.corpus()
    tree, fast_tree = lint._pkix_validator(), lint._pkix_validator(True)
    assert sorted(positions(tree).values()) == sorted(positions(fast_tree).values())
    expected = {name: stock(tree, der) for name, der in corpus.items()}
    mismatched = [n for n in orders(list(corpus)) if memoised(fast_tree, corpus[n]) != expected[n]]
    assert mismatched == []
    assert cache.hits > 3 * len(corpus)  # values really were reused across certificates


def test_memoised_cabf_walk_matches_stock_pkilint_over_the_corpus_in_varying_orders(
    cache: lint_decode.DecodeCache,
) -> None:
    corpus = lint_corpus.corpus()
    tree, fast_tree = lint._cabf_validator(DV)[0], lint._cabf_validator(DV, True)[0]
    expected = {name: stock(tree, der) for name, der in corpus.items()}
    mismatched = [n for n in orders(list(corpus)) if memoised(fast_tree, corpus[n]) != expected[n]]
    assert mismatched == []
    assert cache.hits > 3 * len(corpus)


def test_lint_certificate_with_the_memo_reports_exactly_what_stock_pkilint_reports(
    cache: lint_decode.DecodeCache,
) -> None:
    """The public API as the gate calls it (waivers, CABF filters), memo on by default."""
    corpus = lint_corpus.corpus()
    dv = {
        name
        for name, der in corpus.items()
        if serverauth.determine_certificate_type(lint._load(der)) is DV
    }
    expected = {
        name: lint.lint_certificate(der, cabf_serverauth=name in dv, stock=True)
        for name, der in corpus.items()
    }
    for name in orders(list(corpus)):
        assert lint.lint_certificate(corpus[name], cabf_serverauth=name in dv) == expected[name]
    assert cache.hits > 0


def test_a_failed_decode_is_not_memoised_and_gives_pkilints_fatal_finding_every_time(
    cache: lint_decode.DecodeCache,
) -> None:
    """KeyUsage `30 00` fails while the same bytes as BasicConstraints decode: the failure
    must come from pkilint's decode each time, never from the memo."""
    der = lint_corpus.corpus()["same-bytes-three-schemas"]
    expected = lint.lint_certificate(der, stock=True)
    fatal = [(f.code, f.path) for f in expected if f.severity == "FATAL"]
    assert ("itu.invalid_asn1_syntax", "certificate.tbsCertificate.extensions.1") in fatal
    for _ in range(3):
        assert lint.lint_certificate(der) == expected
    memoised_schemas = {type(schema).__name__ for schema, _ in cache._entries.values()}
    assert "BasicConstraints" in memoised_schemas
    assert "KeyUsage" not in memoised_schemas


class Recording(lint_decode.DecodeCache):
    """A memo that fingerprints each value when it is stored, i.e. right after pkilint's
    PDUNode constructor walked it and before any validator saw it."""

    def __init__(self) -> None:
        super().__init__()
        self.stored: dict[tuple[int, bytes], Any] = {}

    def decode_substrate(
        self, source_document: Any, substrate: Any, pdu_instance: Any, parent_node: Any
    ) -> Any:
        misses = self.misses
        node = super().decode_substrate(source_document, substrate, pdu_instance, parent_node)
        if self.misses > misses:
            self.stored[(id(pdu_instance), bytes(substrate))] = fingerprint(node.pdu)
        return node


def test_memoised_values_are_not_changed_by_linting() -> None:
    recording = Recording()
    tree = lint._pkix_validator.__wrapped__()  # a fresh copy of the RFC 5280 tree
    lint_decode.install(tree, recording)
    corpus = lint_corpus.corpus()
    for name in orders(list(corpus)):
        lint._walker(tree).validate(lint._load(corpus[name]).root)
    assert recording.hits > 3 * len(corpus)
    now = {key: fingerprint(pdu) for key, (_, pdu) in recording._entries.items()}
    assert len(now) > 20
    assert now == {key: recording.stored[key] for key in now}


def test_the_fingerprint_sees_pyasn1s_lazy_instantiation() -> None:
    """The check above can fail: reading an absent OPTIONAL component changes the state. And
    it shows why memoising is exact: PDUNode's constructor makes that change before the value
    is memoised, and building the nodes again changes nothing more."""
    decoded, _ = pyasn1_fasder.decode_der(b"\x30\x00", asn1Spec=rfc5280.BasicConstraints())
    fresh = fingerprint(decoded)
    document.PDUNode(None, "basicConstraints", decoded, None)
    walked = fingerprint(decoded)
    assert walked != fresh
    document.PDUNode(None, "basicConstraints", decoded, None)
    assert fingerprint(decoded) == walked


def test_stock_trees_keep_pkilints_own_decoders() -> None:
    def decoders(container: Any) -> list[Any]:
        return lint_decode._decoders(container)

    for tree in (lint._pkix_validator(), lint._cabf_validator(DV)[0]):
        assert not [d for d in decoders(tree) if "decode_value" in vars(d)]
    for tree in (lint._pkix_validator(True), lint._cabf_validator(DV, True)[0]):
        patched = [d for d in decoders(tree) if "decode_value" in vars(d)]
        assert len(patched) >= 5  # names, extensions, algorithms, SPKI parameters, nested
        # pkilint's SubjectPublicKeyDecoder maps a BIT STRING itself: left alone.
        assert all(type(d).decode_value is document.ValueDecoder.decode_value for d in patched)


def test_the_memo_stays_bounded_and_exact() -> None:
    small = lint_decode.DecodeCache(max_entries=3)
    tree = lint._pkix_validator.__wrapped__()  # a fresh copy of the RFC 5280 tree
    assert lint_decode.install(tree, small) >= 5
    corpus = lint_corpus.corpus()
    reference = lint._pkix_validator()
    for name in orders(list(corpus)):
        assert memoised(tree, corpus[name]) == stock(reference, corpus[name]), name
    assert 0 < len(small) <= 3
    assert small.hits > 0


def test_the_memo_is_used_only_with_the_vetted_pkilint_and_pyasn1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert lint_decode.vetted(), "pkilint or pyasn1 changed: re-read lint_decode's reasoning"
    monkeypatch.setattr(lint_decode, "VETTED_PYASN1_SERIES", "9.9.")
    tree = lint._pkix_validator.__wrapped__()
    assert lint_decode.install(tree, lint_decode.DecodeCache()) == 0
    assert not [d for d in lint_decode._decoders(tree) if "decode_value" in vars(d)]
