"""padlock's walk over pkilint's validator trees: the same validators on the same nodes in the
same order, with the same results, for far fewer `match()` calls.

Called by `padlock.pki.lint` (and so by the CA's lint gate, on every certificate) in place of
`ValidatorContainer.validate`. pkilint itself is used unchanged: this module only decides, as
pkilint would, which of pkilint's own validator objects run on which node, and runs them.

How stock pkilint walks (`pkilint.validation.ValidatorContainer._validate_rec`): depth first,
for each node, for each validator in order, `if v.match(node): v.validate_wrapper(node)`; then
the node's children, read after the validators ran (decoding validators add children).
`NodeVisitor.match` (`pkilint.document`) tests, in this order: `_path` (equal), `_path_re`
(`re.match`), `_pdu_class` (`isinstance`), `_pdu_supertype.isSuperTypeOf(pdu)`, `_predicate`.
For a padlock leaf that is ~280 node visits (each nested container walks its own subtree
again) against 80-120 validators: ~4,200 `match()` calls per certificate for RFC 5280 alone,
nearly all of them False, about half of pkilint's CPU time.

The first three tests depend only on the node's path and its PDU's class (a `pdu_class`
whose metaclass defines `__instancecheck__` is not pre-filtered), and those repeat from one
certificate to the next. So each container keeps, per (path, PDU class), the list of
validators whose static tests pass (its "steps"); per node only what may differ between nodes
of that shape is evaluated, in pkilint's order:

- a plain `NodeVisitor.match` with neither supertype nor predicate: nothing (always runs);
- with only a predicate: the predicate (`match` would return exactly its truth value);
- with a `pdu_supertype` (its tag set and constraints belong to the value, not the class):
  the full `match()`;
- a validator class that overrides `match`: the full `match()`, and only on nodes that pass
  the static tests if the override is one of `_PREFIX_MATCHES`, read in pkilint
  `VETTED_PKILINT_VERSION` to begin with `super().match(node)` (False there means False);
  otherwise on every node, as pkilint does.

Nested `ValidatorContainer`s get their own walker (and cache) and go through a copy of
`Validator.validate_wrapper` (an exception inside the nested walk, a predicate's included,
becomes that container's single `base.unhandled_exception` finding, and what it had found so
far is dropped, as in pkilint). A container whose class or instance replaces `validate`,
`_validate_rec` or `validate_wrapper` is run by pkilint itself.

Assumption: a validator tree is built once and not changed afterwards (padlock.pki.lint caches
its trees); the walker reads each validator's match attributes when it is built.
`tests/unit/pki/test_lint_walk.py` runs stock pkilint and this walker side by side.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from typing import Any

from pkilint import document, validation

VETTED_PKILINT_VERSION = "0.13.3"
"""The pkilint release whose `match` overrides in `_PREFIX_MATCHES` were read."""

# (module, qualname) of `match` overrides that begin with `super().match(node)` and return
# False when it is False, so they can be skipped on nodes that fail the static tests.
_PREFIX_MATCHES = frozenset(
    {
        ("pkilint.validation", "TypeMatchingValidator.match"),
        ("pkilint.pkix.extension", "ExtensionCriticalityValidator.match"),
        (
            "pkilint.pkix.certificate.certificate_extension",
            "ExtendedKeyUsageCriticalityValidator.match",
        ),
        ("pkilint.cabf.cabf_name", "ValidCountryCodeValidatorBase.match"),
        ("pkilint.cabf.serverauth.serverauth_extension", "EvCpsUriPresenceValidator.match"),
    }
)

MAX_SHAPES = 4096
"""Cached (path, PDU class) entries per container; the cache starts over past this (a
certificate with thousands of SANs must not grow it without bound)."""

Check = Callable[[Any], object]
Run = Callable[[Any], Any]
Step = tuple[Check | None, Run]


def _pkilint_version() -> str:
    try:
        return importlib.metadata.version("pkilint")
    except importlib.metadata.PackageNotFoundError:
        return ""


_VETTED = _pkilint_version() == VETTED_PKILINT_VERSION


def _plain_class(cls: Any) -> bool:
    """True if `isinstance(x, cls)` depends on `type(x)` alone (no `__instancecheck__`)."""
    classes = cls if isinstance(cls, tuple) else (cls,)
    return all(_instancecheck_owner(type(c)) is type for c in classes)


def _instancecheck_owner(metaclass: type) -> type:
    return next(k for k in metaclass.__mro__ if "__instancecheck__" in vars(k))


def _match_chain(validator: Any) -> list[Any]:
    """The `match` functions along the validator's class MRO, most derived first."""
    return [vars(k)["match"] for k in type(validator).__mro__ if "match" in vars(k)]


def prefix_override(validator: Any) -> bool:
    """True if the validator's `match` is a vetted override of `NodeVisitor.match` that tests
    `super().match(node)` first, and `super()` there is `NodeVisitor.match` itself."""
    chain = _match_chain(validator)
    return (
        _VETTED
        and len(chain) == 2
        and chain[1] is document.NodeVisitor.match
        and (chain[0].__module__, chain[0].__qualname__) in _PREFIX_MATCHES
    )


def _fast_container(validator: Any) -> bool:
    """True if pkilint would walk this container with the stock ValidatorContainer code."""
    cls = type(validator)
    return (
        isinstance(validator, validation.ValidatorContainer)
        and cls.validate is validation.ValidatorContainer.validate
        and cls._validate_rec is validation.ValidatorContainer._validate_rec
        and cls.validate_wrapper is validation.Validator.validate_wrapper
        and not {"validate", "_validate_rec", "validate_wrapper"} & vars(validator).keys()
    )


class _Entry:
    """One validator of a container: how to pre-filter it, check it per node, and run it."""

    __slots__ = ("check", "path", "path_re", "pdu_class", "run", "static")

    def __init__(self, validator: Any) -> None:
        self.path = validator._path
        self.path_re = validator._path_re
        self.pdu_class = validator._pdu_class
        own_match = "match" in vars(validator)
        standard = not own_match and _match_chain(validator) == [document.NodeVisitor.match]
        self.static = (standard or (not own_match and prefix_override(validator))) and (
            self.pdu_class is None or _plain_class(self.pdu_class)
        )
        self.check: Check | None
        if not (self.static and standard) or validator._pdu_supertype is not None:
            self.check = validator.match
        else:
            self.check = validator._predicate
        self.run: Run = (
            Walker(validator).validate_wrapper
            if _fast_container(validator)
            else validator.validate_wrapper
        )

    def passes_static(self, path: str, pdu: Any) -> bool:
        """NodeVisitor.match's first three tests, or True when they cannot be relied on."""
        if not self.static:
            return True
        if self.path is not None and self.path != path:
            return False
        if self.path_re is not None and self.path_re.match(path) is None:
            return False
        return self.pdu_class is None or isinstance(pdu, self.pdu_class)


class Walker:
    """Validates a document node with one pkilint ValidatorContainer, as its `validate` would."""

    def __init__(self, container: Any) -> None:
        if not _fast_container(container):
            raise TypeError(
                f"{type(container).__name__} is not a plain pkilint ValidatorContainer; "
                "run its own validate()"
            )
        self.container = container
        self._entries = tuple(_Entry(v) for v in container.validators)
        self._steps: dict[tuple[str, type], tuple[Step, ...]] = {}

    def validate(self, node: Any) -> list[Any]:
        """The ValidationResults pkilint's `container.validate(node)` returns."""
        results: list[Any] = []
        self._walk(node, results)
        return results

    def validate_wrapper(self, node: Any) -> Any:
        """`pkilint.validation.Validator.validate_wrapper`, line for line, around our walk."""
        container = self.container
        try:
            results = self.validate(node)
            if results is None:
                return validation.ValidationResult(container, node, [])
            else:
                return results
        except validation.ValidationFindingEncountered as e:
            finding = validation.ValidationFindingDescription(e.finding, e.message)
        except Exception as e:
            validation.logger.exception(
                "Unhandled exception occurred when executing validator %s on node %s",
                container.name,
                node.path,
            )
            finding = validation.ValidationFindingDescription(
                container.VALIDATION_FINDING_UNHANDLED_EXCEPTION, str(e)
            )
        return validation.ValidationResult(container, node, [finding])

    def _walk(self, node: Any, results: list[Any]) -> None:
        pdu = node.pdu
        key = (node.path, type(pdu))
        steps = self._steps.get(key)
        if steps is None:
            steps = self._plan(key, pdu)
        for check, run in steps:
            if check is None or check(node):
                result = run(node)
                if isinstance(result, list):
                    results += result
                else:
                    results.append(result)
        for child in node.children.values():
            self._walk(child, results)

    def _plan(self, key: tuple[str, type], pdu: Any) -> tuple[Step, ...]:
        steps = tuple((e.check, e.run) for e in self._entries if e.passes_static(key[0], pdu))
        if len(self._steps) >= MAX_SHAPES:
            self._steps.clear()
        self._steps[key] = steps
        return steps
