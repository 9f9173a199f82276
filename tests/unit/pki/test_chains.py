"""Chain ordering and verification: each rule refuses with its own message."""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import random
import re

import pytest
from cryptography import x509

from padlock.pki import chains, profiles
from tests.unit.pki.conftest import NOW, Issued, issue, name

DAY = datetime.timedelta(days=1)


def sub_ca(issuer: Issued, profile: profiles.Profile = profiles.INTERMEDIATE_CA) -> Issued:
    return issue(profile, issuer, subject=name("padlock sub CA"), sans=())


def test_order_chain_sorts_a_shuffled_bag(
    root: Issued, intermediate: Issued, leaves: dict[str, Issued]
) -> None:
    leaf = leaves["tls-server"].cert
    bag = [root.cert, leaf, intermediate.cert, intermediate.cert]
    random.Random(4).shuffle(bag)
    assert chains.order_chain(bag) == [leaf, intermediate.cert, root.cert]


def test_order_chain_without_root_stops_at_the_top_intermediate(
    intermediate: Issued, leaves: dict[str, Issued]
) -> None:
    leaf = leaves["svid"].cert
    assert chains.order_chain([intermediate.cert, leaf]) == [leaf, intermediate.cert]


def test_order_chain_refuses_two_leaves(intermediate: Issued, leaves: dict[str, Issued]) -> None:
    bag = [leaves["tls-server"].cert, leaves["svid"].cert, intermediate.cert]
    with pytest.raises(chains.ChainError, match="cannot tell the leaf: candidates are CN=api"):
        chains.order_chain(bag)


def test_order_chain_refuses_strangers(intermediate: Issued, leaves: dict[str, Issued]) -> None:
    bag = [leaves["tls-server"].cert, intermediate.cert, leaves["svid"].cert]
    with pytest.raises(
        chains.ChainError,
        match=re.escape(
            "certificates not on the leaf's path: SAN spiffe://cluster.local/ns/default/sa/api"
        ),
    ):
        chains.order_chain(bag, leaf=leaves["tls-server"].cert)


@pytest.mark.parametrize(
    ("leaf", "purpose", "server_name"),
    [
        ("tls-server", chains.Purpose.SERVER, "api.padlock.test"),
        ("tls-server", chains.Purpose.SERVER, "x.api.padlock.test"),
        ("tls-server-rsa", chains.Purpose.SERVER, "rsa.padlock.test"),
        ("tls-client", chains.Purpose.CLIENT, None),
        ("svid", chains.Purpose.CLIENT, None),
        ("svid", chains.Purpose.SERVER, None),
        ("ocsp-responder", chains.Purpose.ANY, None),
    ],
)
def test_every_leaf_profile_verifies_to_the_root(
    root: Issued,
    intermediate: Issued,
    leaves: dict[str, Issued],
    leaf: str,
    purpose: chains.Purpose,
    server_name: str | None,
) -> None:
    cert = leaves[leaf].cert
    if leaf == "svid" and purpose is chains.Purpose.SERVER:
        # An SVID is matched by SPIFFE ID, not a host name: the TLS-server check must refuse.
        with pytest.raises(chains.ChainError, match=r"Purpose\.SERVER needs a server_name"):
            chains.verify_chain(cert, [intermediate.cert], [root.cert], now=NOW, purpose=purpose)
        return
    chain = chains.verify_chain(
        cert, [intermediate.cert], [root.cert], now=NOW, purpose=purpose, server_name=server_name
    )
    assert chain == [cert, intermediate.cert, root.cert]


def test_wrong_server_name_is_refused(
    root: Issued, intermediate: Issued, leaves: dict[str, Issued]
) -> None:
    with pytest.raises(
        chains.ChainError, match=r"CN=api\.padlock\.test does not verify for server"
    ):
        chains.verify_chain(
            leaves["tls-server"].cert,
            [intermediate.cert],
            [root.cert],
            now=NOW,
            purpose=chains.Purpose.SERVER,
            server_name="other.padlock.test",
        )


def test_client_purpose_refuses_a_server_only_leaf(
    root: Issued, intermediate: Issued, leaves: dict[str, Issued]
) -> None:
    with pytest.raises(chains.ChainError, match="required EKU not found"):
        chains.verify_chain(
            leaves["tls-server"].cert,
            [intermediate.cert],
            [root.cert],
            now=NOW,
            purpose=chains.Purpose.CLIENT,
        )


def test_expired_leaf_is_refused(
    root: Issued, intermediate: Issued, leaves: dict[str, Issued]
) -> None:
    later = NOW + 60 * DAY
    leaf = leaves["tls-client"].cert
    with pytest.raises(chains.ChainError, match="cert is not valid at validation time"):
        chains.verify_chain(
            leaf, [intermediate.cert], [root.cert], now=later, purpose=chains.Purpose.CLIENT
        )
    with pytest.raises(
        chains.ChainError, match=r"SAN client.padlock.test is not valid at 2026-07-31"
    ):
        chains.check_links([leaf, intermediate.cert, root.cert], later)


def test_check_links_refuses_broken_name_chaining(root: Issued, leaves: dict[str, Issued]) -> None:
    with pytest.raises(
        chains.ChainError,
        match=r"names issuer 'CN=padlock test intermediate,O=padlock test' but the next "
        r"certificate is 'CN=padlock test root,O=padlock test' \(RFC 5280 §6.1.3 \(a\)\(4\)\)",
    ):
        chains.check_links([leaves["tls-client"].cert, root.cert], NOW)


def test_check_links_refuses_a_forged_signature(root: Issued, intermediate: Issued) -> None:
    # Same subject name as the real intermediate, different key: names chain, signature not.
    impostor = issue(profiles.INTERMEDIATE_CA, root, subject=intermediate.cert.subject, sans=())
    leaf = issue(profiles.TLS_CLIENT, impostor, sans=[x509.DNSName("x.padlock.test")]).cert
    with pytest.raises(
        chains.ChainError,
        match=re.escape(
            "signature of SAN x.padlock.test does not verify with the key of "
            "CN=padlock test intermediate"
        ),
    ):
        chains.check_links([leaf, intermediate.cert, root.cert], NOW)


def test_check_links_refuses_a_leaf_acting_as_issuer(
    root: Issued, intermediate: Issued, leaves: dict[str, Issued]
) -> None:
    client = leaves["tls-client"]
    fake = issue(profiles.TLS_CLIENT, client, sans=[x509.DNSName("y.padlock.test")]).cert
    with pytest.raises(
        chains.ChainError,
        match=r"SAN client.padlock.test issued SAN y.padlock.test but is not a CA",
    ):
        chains.check_links([fake, client.cert, intermediate.cert, root.cert], NOW)


def test_check_links_enforces_path_length(root: Issued, intermediate: Issued) -> None:
    sub = sub_ca(intermediate)
    leaf = issue(profiles.TLS_CLIENT, sub, sans=[x509.DNSName("z.padlock.test")]).cert
    with pytest.raises(
        chains.ChainError,
        match=r"CN=padlock test intermediate,O=padlock test has pathLenConstraint 0 but 1 CA "
        r"certificates follow it \(RFC 5280 §4.2.1.9\)",
    ):
        chains.check_links([leaf, sub.cert, intermediate.cert, root.cert], NOW)
    with pytest.raises(chains.ChainError, match="does not verify for any"):
        chains.verify_chain(leaf, [sub.cert, intermediate.cert], [root.cert], now=NOW)


def test_check_links_requires_key_cert_sign(root: Issued) -> None:
    no_cert_sign = dataclasses.replace(
        profiles.INTERMEDIATE_CA, key_usages=frozenset({"crl_sign", "digital_signature"})
    )
    ca = sub_ca(root, no_cert_sign)
    leaf = issue(profiles.TLS_CLIENT, ca, sans=[x509.DNSName("k.padlock.test")]).cert
    with pytest.raises(chains.ChainError, match="without keyCertSign in its keyUsage"):
        chains.check_links([leaf, ca.cert, root.cert], NOW)


def test_check_links_requires_a_root_at_the_end(
    intermediate: Issued, leaves: dict[str, Issued]
) -> None:
    with pytest.raises(chains.ChainError, match="which is not a self-signed root"):
        chains.check_links([leaves["tls-client"].cert, intermediate.cert], NOW)


def test_verify_chain_refuses_an_untrusted_root(
    intermediate: Issued, leaves: dict[str, Issued]
) -> None:
    other_root = issue(profiles.INTERMEDIATE_CA, intermediate, subject=name("other"), sans=())
    with pytest.raises(chains.ChainError, match="does not verify for any"):
        chains.verify_chain(leaves["tls-client"].cert, [], [other_root.cert], now=NOW)


def test_an_intermediate_may_be_the_trust_anchor(
    intermediate: Issued, leaves: dict[str, Issued]
) -> None:
    leaf = leaves["tls-client"].cert
    assert chains.verify_chain(leaf, [], [intermediate.cert], now=NOW) == [leaf, intermediate.cert]


def test_server_purpose_matches_an_ip_address_san(root: Issued, intermediate: Issued) -> None:
    leaf = issue(
        profiles.TLS_SERVER,
        intermediate,
        sans=[x509.IPAddress(ipaddress.ip_address("10.0.0.7"))],
    ).cert
    chain = chains.verify_chain(
        leaf,
        [intermediate.cert],
        [root.cert],
        now=NOW,
        purpose=chains.Purpose.SERVER,
        server_name="10.0.0.7",
    )
    assert chain[0] == leaf
    with pytest.raises(chains.ChainError, match="does not verify for server"):
        chains.verify_chain(
            leaf,
            [intermediate.cert],
            [root.cert],
            now=NOW,
            purpose=chains.Purpose.SERVER,
            server_name="10.0.0.8",
        )
