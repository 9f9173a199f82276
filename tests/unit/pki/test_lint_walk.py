"""padlock.pki.lint_walk against stock pkilint: the same validators run on the same nodes in
the same order with the same findings, on a corpus of padlock, defective and real-world style
certificates (tests/unit/pki/lint_corpus.py), for the RFC 5280 and the CABF TLS BR trees."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import inspect
import logging
import re
import textwrap
from typing import Any

import pytest
from pkilint import document, validation
from pkilint.cabf import serverauth
from pkilint.cabf.serverauth.serverauth_constants import CertificateType
from pkilint.pkix import general_name
from pyasn1.type import univ
from pyasn1_alt_modules import rfc5280

from padlock.pki import lint, lint_walk
from tests.unit.pki import lint_corpus

Trace = list[tuple[Any, str, tuple[tuple[str, str, str | None], ...]]]


def trace(results: list[Any]) -> Trace:
    """Every ValidationResult, empty ones included: (validator object, node path, findings)."""
    return [
        (
            r.validator,
            r.node.path,
            tuple(
                (d.finding.code, d.finding.severity.name, d.message) for d in r.finding_descriptions
            ),
        )
        for r in results
    ]


def both(container: Any, der: bytes) -> tuple[Trace, Trace]:
    """(stock pkilint's walk, padlock's walk), each on a freshly decoded document."""
    stock = trace(container.validate(lint._load(der).root))
    fast = trace(lint_walk.Walker(container).validate(lint._load(der).root))
    return stock, fast


def cabf_tree(der: bytes) -> Any:
    """The CABF tree for the certificate type pkilint detects (as `lint_cabf_serverauth`)."""
    return lint._cabf_validator(serverauth.determine_certificate_type(lint._load(der)))[0]


def dv_tree() -> Any:
    """The CABF tree the lint gate uses for padlock's tls-server leaves."""
    return lint._cabf_validator(CertificateType.DV_FINAL_CERTIFICATE)[0]


def mismatches(trees: Any, ders: dict[str, bytes]) -> tuple[list[str], int]:
    """Names of the certificates where the walks differ, and the number of findings seen."""
    mismatched, findings = [], 0
    for name, der in ders.items():
        stock, fast = both(trees(der), der)
        findings += sum(len(f) for _, _, f in stock)
        if stock != fast:
            mismatched.append(name)
    return mismatched, findings


def test_corpus_covers_every_padlock_profile_defects_and_real_world_shapes() -> None:
    names = set(lint_corpus.corpus())
    assert {"root", "intermediate", "tls-server", "tls-client", "svid", "ocsp-responder"} <= names
    assert {"ku-no-bits", "eku-absent", "no-san-cn-only", "weak-rsa-1024", "spiffe-broken"} <= names
    assert {"ev-subscriber", "dv-precertificate", "malformed-key-usage-and-san"} <= names


def test_walker_matches_stock_pkilint_with_the_rfc5280_tree() -> None:
    mismatched, findings = mismatches(lambda _: lint._pkix_validator(), lint_corpus.corpus())
    assert mismatched == []
    assert findings > 40  # the corpus really provokes findings


def test_walker_matches_stock_pkilint_with_the_cabf_tree_on_every_certificate() -> None:
    """The DV subscriber tree (the one the gate runs) on every shape, CAs and EV included:
    building a CABF tree costs ~0.35 s (pkilint parses the public suffix list five times), so
    the per-type trees are in the slow test below."""
    mismatched, findings = mismatches(lambda _: dv_tree(), lint_corpus.corpus())
    assert mismatched == []
    assert findings > 200


@pytest.mark.slow
def test_walker_matches_stock_pkilint_with_every_cabf_certificate_type() -> None:
    corpus = lint_corpus.corpus()
    mismatched, _ = mismatches(cabf_tree, corpus)  # each certificate's detected type
    assert mismatched == []
    for certificate_type in CertificateType:
        tree = lint._cabf_validator(certificate_type)[0]
        few = {k: corpus[k] for k in ("tls-server", "ev-subscriber", "every-general-name-and-more")}
        assert mismatches(lambda _, t=tree: t, few)[0] == [], certificate_type


def test_lint_certificate_reports_exactly_what_stock_pkilint_reports() -> None:
    """The public API end to end (waivers, CABF filters): padlock's walk == pkilint's walk.
    CABF as the gate runs it: on the certificates pkilint detects as DV subscribers."""
    severities: set[str] = set()
    for name, der in lint_corpus.corpus().items():
        cabf = (
            serverauth.determine_certificate_type(lint._load(der))
            is CertificateType.DV_FINAL_CERTIFICATE
        )
        fast = lint.lint_certificate(der, cabf_serverauth=cabf)
        assert fast == lint.lint_certificate(der, cabf_serverauth=cabf, stock=True), name
        severities |= {f.severity for f in fast}
    assert {"FATAL", "ERROR", "WARNING", "NOTICE", "INFO"} <= severities


# --- match() variants and exception handling, on synthetic validators ----------------------

FOUND = validation.ValidationFinding(validation.ValidationFindingSeverity.WARNING, "test.found")


class Finds(validation.Validator):  # type: ignore[misc]
    """Raises a finding naming the node, wherever it matches."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validations=[FOUND], **kwargs)

    def validate(self, node: Any) -> None:
        raise validation.ValidationFindingEncountered(FOUND, node.path)


class Boom(validation.Validator):  # type: ignore[misc]
    def validate(self, node: Any) -> None:
        raise RuntimeError(f"boom at {node.path}")


class OwnMatch(Finds):
    """A `match` override padlock has not vetted: must be asked on every node."""

    def match(self, node: Any) -> bool:
        return bool(node.name == "extnID" and node.parent.name == "0")


class OwnValidate(validation.ValidatorContainer):  # type: ignore[misc]
    """A container that replaces `validate`: the walker must leave it to pkilint."""

    def validate(self, node: Any) -> list[Any]:
        return [*super().validate(node), validation.ValidationResult(self, node, [])]


def raises_on_critical(node: Any) -> bool:
    if node.name == "critical":
        raise KeyError(f"predicate failed at {node.path}")
    return bool(node.name.startswith("e"))


def synthetic_tree() -> Any:
    return validation.ValidatorContainer(
        validators=[
            Finds(path="certificate.tbsCertificate.version"),
            Boom(pdu_class=univ.Integer, predicate=lambda n: n.name == "serialNumber"),
            Finds(path_re=re.compile(r".*\.extnID$")),
            Finds(pdu_supertype=univ.Boolean()),
            OwnMatch(),
            validation.Validator(),  # no criteria: every node, empty results
            validation.ValidatorContainer(
                path="certificate.tbsCertificate.extensions",
                validators=[
                    Finds(pdu_class=rfc5280.Extension),
                    Finds(predicate=raises_on_critical),
                ],
            ),
            validation.ValidatorContainer(
                pdu_class=rfc5280.Name,
                validators=[
                    Finds(pdu_class=rfc5280.AttributeTypeAndValue),
                    Boom(path_re=re.compile(r".*\.0\.0$")),
                ],
            ),
            OwnValidate(
                path="certificate.tbsCertificate.validity",
                validators=[Finds(pdu_class=univ.Choice)],
            ),
            general_name.GeneralNameValidatorContainer(),
        ]
    )


def test_match_variants_and_exceptions_are_handled_exactly_as_pkilint_does(
    caplog: pytest.LogCaptureFixture,
) -> None:
    container = synthetic_tree()
    der = lint_corpus.corpus()["every-general-name-and-more"]
    with caplog.at_level(logging.ERROR, logger="pkilint.validation"):
        stock_results = container.validate(lint._load(der).root)
        stock_logs = [r.getMessage() for r in caplog.records]
        caplog.clear()
        fast_results = lint_walk.Walker(container).validate(lint._load(der).root)
        fast_logs = [r.getMessage() for r in caplog.records]
    assert trace(fast_results) == trace(stock_results)
    assert fast_logs == stock_logs
    codes = [
        (r.validator.name, d.finding.code, d.message)
        for r in fast_results
        for d in r.finding_descriptions
    ]
    # The scenarios this test is about really happened: a nested container whose predicate
    # raised gives one FATAL finding (its partial results dropped); a leaf's exception too.
    assert (
        "ValidatorContainer",
        "base.unhandled_exception",
        "'predicate failed at certificate.tbsCertificate.extensions.0.critical'",
    ) in codes
    assert any(c[:2] == ("Boom", "base.unhandled_exception") for c in codes)
    assert any(c[0] == "OwnMatch" for c in codes)
    assert any(r.validator.name == "OwnValidate" for r in fast_results)


def test_a_predicate_raising_in_the_top_container_propagates_like_pkilint() -> None:
    container = validation.ValidatorContainer(validators=[Finds(predicate=raises_on_critical)])
    der = lint_corpus.corpus()["tls-server"]
    with pytest.raises(KeyError) as stock:
        container.validate(lint._load(der).root)
    with pytest.raises(KeyError) as fast:
        lint_walk.Walker(container).validate(lint._load(der).root)
    assert str(fast.value) == str(stock.value)


def test_the_shape_cache_stays_bounded_and_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lint_walk, "MAX_SHAPES", 7)
    walker = lint_walk.Walker(lint._pkix_validator())
    der = lint_corpus.corpus()["every-general-name-and-more"]
    fast = trace(walker.validate(lint._load(der).root))
    assert fast == trace(lint._pkix_validator().validate(lint._load(der).root))
    assert 0 < len(walker._steps) <= 7


def test_a_container_that_replaces_validate_is_not_walked_by_padlock() -> None:
    with pytest.raises(TypeError, match="not a plain pkilint ValidatorContainer"):
        lint_walk.Walker(OwnValidate(validators=[]))


# --- the vetted match() overrides ----------------------------------------------------------


def _validators(container: Any) -> list[Any]:
    found = []
    for v in container.validators:
        found.append(v)
        if isinstance(v, validation.ValidatorContainer):
            found += _validators(v)
    return found


def _starts_with_super_match(func: Any) -> bool:
    """The body's first statement is `return super().match(node) and ...` or
    `if not super().match(node): return False`."""
    body = ast.parse(textwrap.dedent(inspect.getsource(func))).body[0].body  # type: ignore[attr-defined]
    first = body[0]
    guard = "super().match(node)"
    if isinstance(first, ast.Return) and isinstance(first.value, ast.BoolOp):
        return isinstance(first.value.op, ast.And) and ast.unparse(first.value.values[0]) == guard
    return (
        isinstance(first, ast.If)
        and ast.unparse(first.test) == f"not {guard}"
        and ast.unparse(first.body[0]) == "return False"
    )


def test_vetted_match_overrides_test_super_match_first() -> None:
    assert importlib.metadata.version("pkilint") == lint_walk.VETTED_PKILINT_VERSION, (
        "pkilint changed: re-read the match() overrides in lint_walk._PREFIX_MATCHES, "
        "then bump VETTED_PKILINT_VERSION"
    )
    for module, qualname in lint_walk._PREFIX_MATCHES:
        owner, method = qualname.split(".")
        func = getattr(getattr(importlib.import_module(module), owner), method)
        assert _starts_with_super_match(func), qualname


def test_every_match_override_in_padlocks_trees_is_prefiltered() -> None:
    """All overrides padlock's trees contain are vetted, so none is asked on every node."""
    trees = [lint._pkix_validator(), dv_tree()]
    overriding = {
        type(v).__name__: lint_walk.prefix_override(v)
        for tree in trees
        for v in _validators(tree)
        if type(v).match is not document.NodeVisitor.match
    }
    assert overriding and all(overriding.values()), overriding
