"""A bounded memo of pkilint's pyasn1 decodes of embedded values (extension values above
all), so a CA's lint worker decodes a byte-identical value once, not once per certificate.

Called by `padlock.pki.lint`, which builds its own copies of pkilint's validator trees for the
lint gate and points their decoders here (`install`); `stock=True` trees are never touched.

Why: pkilint's decoding validators (`pkilint.validation.DecodingValidator` with a
`pkilint.document.ValueDecoder`) decode each extnValue OCTET STRING (RFC 5280 §4.1.2.9),
each name attribute value (§4.1.2.4) and each algorithm's parameters with the schema its OID
maps to, through `pkilint.document.decode_substrate`, which decodes with `pyasn1_fasder` and
appends a new `PDUNode` built over the decoded value. In a CA, basicConstraints, keyUsage,
extKeyUsage, authorityKeyIdentifier, authorityInfoAccess, cRLDistributionPoints and the issuer
name are byte-identical across the certificates of one profile and issuer.

Why reusing the decoded pyasn1 value is exact (pkilint 0.13.3, pyasn1 0.6.x):

- The decoded value holds no per-document state: `decode_substrate` passes only the bytes
  and the schema to `pyasn1_fasder.decode_der`; the document, parent node and path live in
  the `PDUNode`s, and those are built afresh per document here, as pkilint builds them.
- Nothing in pkilint mutates a decoded value (no `setComponent*`, item assignment or
  `clear` on a PDU; nested decodes, e.g. an otherName or a policy qualifier, attach new child
  *nodes*, never components). The one mutation pyasn1 itself makes on reading, instantiating
  an absent OPTIONAL component of a SEQUENCE on `items()`, happens while `PDUNode`'s
  constructor builds the whole subtree, before any validator sees the value; building the
  nodes again over the same value instantiates nothing more, so every certificate sees the
  value in the same state as the first one did.
- A schema is keyed by identity (the instances in pkilint's type mappings live as long as
  the tree) and held by the entry, so an id is never reused for another schema.
- Only a successful decode is stored: a failure goes through pkilint's own code every time,
  so its FATAL `itu.invalid_asn1_syntax` finding and message are pkilint's.

That reading was done for pkilint `lint_walk.VETTED_PKILINT_VERSION` and pyasn1
`VETTED_PYASN1_SERIES`; with other versions `install` leaves pkilint's decoders alone (every
value decoded afresh), until someone re-reads them (a validator that indexed a non-chosen
CHOICE alternative or a SEQUENCE OF past its end would make pyasn1 change the value).
`tests/unit/pki/test_lint_decode.py` checks this: findings identical to stock pkilint over the
corpus run twice in varying orders, and the memoised values unchanged by linting.
"""

from __future__ import annotations

import collections
import importlib.metadata
from typing import Any

from pkilint import document, validation

from padlock.pki import lint_walk

VETTED_PYASN1_SERIES = "0.6."
"""The pyasn1 release series whose read paths (lazy instantiation on `items()`) were read."""

MAX_ENTRIES = 512
"""Decoded values kept (least recently used dropped first): a profile's shared values are
reused by every certificate and stay; the per-certificate ones (SAN, SKI) age out."""


class DecodeCache:
    """`pkilint.document.decode_substrate` with the decoded pyasn1 value memoised per
    (schema instance, substrate bytes). Not thread-safe: `padlock.pki.lint` holds its lock."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: collections.OrderedDict[tuple[int, bytes], tuple[Any, Any]] = (
            collections.OrderedDict()
        )
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def values(self) -> list[Any]:
        """The memoised decoded values (for tests)."""
        return [pdu for _, pdu in self._entries.values()]

    def decode_substrate(
        self, source_document: Any, substrate: Any, pdu_instance: Any, parent_node: Any
    ) -> Any:
        """What `document.decode_substrate(source_document, substrate, pdu_instance,
        parent_node)` returns, the decode itself skipped when these bytes were decoded with
        this schema before."""
        if parent_node is not None and any(parent_node.children):
            # pkilint returns the node decoded earlier (e.g. by `RFC5280Certificate.is_ca`).
            return document.decode_substrate(source_document, substrate, pdu_instance, parent_node)
        try:
            key = (id(pdu_instance), bytes(substrate))
        except Exception:
            # Not bytes-like (a schema without a value): pkilint's decode reports it.
            return document.decode_substrate(source_document, substrate, pdu_instance, parent_node)
        entry = self._entries.get(key)
        if entry is not None and entry[0] is pdu_instance:
            self._entries.move_to_end(key)
            self.hits += 1
            return document.create_and_append_node_from_pdu(source_document, entry[1], parent_node)
        node = document.decode_substrate(source_document, substrate, pdu_instance, parent_node)
        self.misses += 1
        self._entries[key] = (pdu_instance, node.pdu)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return node


class _CachedDecodeValue:
    """`ValueDecoder.decode_value`, line for line, with `DecodeCache.decode_substrate`."""

    def __init__(self, decoder: Any, cache: DecodeCache) -> None:
        self.decoder = decoder
        self.cache = cache

    def __call__(self, node: Any, type_node: Any, value_node: Any, pdu_type: Any) -> Any:
        substrate = self.decoder.retrieve_substrate(value_node)
        return self.cache.decode_substrate(value_node.document, substrate, pdu_type, value_node)


def _decoders(container: Any) -> list[Any]:
    found = []
    for v in container.validators:
        if isinstance(v, validation.DecodingValidator):
            found.append(v.decode_func)
        if isinstance(v, validation.ValidatorContainer):
            found += _decoders(v)
    return found


def vetted() -> bool:
    """True if the installed pkilint and pyasn1 are the releases this module's reasoning read."""
    try:
        pyasn1 = importlib.metadata.version("pyasn1")
        pkilint = importlib.metadata.version("pkilint")
    except importlib.metadata.PackageNotFoundError:
        return False
    return pkilint == lint_walk.VETTED_PKILINT_VERSION and pyasn1.startswith(VETTED_PYASN1_SERIES)


def install(container: Any, cache: DecodeCache) -> int:
    """Point every plain `ValueDecoder` in this validator tree at the cache; returns how many
    (0, leaving pkilint's decoding as it is, if the pkilint or pyasn1 release is not vetted).
    A decoder whose class replaces `decode_value` (e.g. `SubjectPublicKeyDecoder`, which maps
    a BIT STRING without decoding) keeps pkilint's. The tree must be padlock's own copy."""
    if not vetted():
        return 0
    count = 0
    for decoder in _decoders(container):
        if (
            isinstance(decoder, document.ValueDecoder)
            and type(decoder).decode_value is document.ValueDecoder.decode_value
            and "decode_value" not in vars(decoder)
        ):
            decoder.decode_value = _CachedDecodeValue(decoder, cache)
            count += 1
    return count
