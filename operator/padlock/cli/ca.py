"""`padlock ca ...`: the offline ceremony (init-root, init-intermediate), one-off signing
(sign) and the CA sidecar (serve).

Registered by `padlock.cli`. The ceremony logic lives in `padlock.ca.ceremony`; this module
only reads flags, passphrases and PIN files and prints what was made. Key, ledger and HSM code
is imported inside the commands that use it, so `padlock operator` never loads it.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path

from padlock.ca import config as ca_config
from padlock.cli.errors import CommandError
from padlock.pki.algorithms import KeyAlgorithm

PASSPHRASE_ENV = "PADLOCK_ROOT_PASSPHRASE"  # noqa: S105 - the variable name
_ALGORITHMS = [a.value for a in KeyAlgorithm]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ca = subparsers.add_parser("ca", help="the CA: offline ceremony, signing, the sidecar")
    ca_sub = ca.add_subparsers(dest="ca_command", required=True, metavar="COMMAND")

    root = ca_sub.add_parser("init-root", help="make the offline root CA (software key)")
    root.add_argument("--dir", type=Path, required=True, help="directory for root.pem + key")
    _passphrase_flags(root)
    root.add_argument("--common-name", default="padlock Root CA")
    root.add_argument("--organization", default="padlock")
    root.add_argument("--algorithm", choices=_ALGORITHMS, default=KeyAlgorithm.EC_P384.value)
    root.add_argument("--days", type=int, default=20 * 365, help="validity in days")
    root.set_defaults(func=_init_root)

    inter = ca_sub.add_parser(
        "init-intermediate", help="generate the intermediate key in the HSM and sign it"
    )
    inter.add_argument("--root-dir", type=Path, required=True)
    _passphrase_flags(inter)
    inter.add_argument("--pkcs11-module", default=ca_config.DEFAULT_SOFTHSM_MODULE)
    inter.add_argument("--token-label", required=True)
    inter.add_argument("--pin-file", type=Path, required=True)
    inter.add_argument("--key-label", default=ca_config.Pkcs11Config().key_label)
    inter.add_argument("--ocsp-key-label", default=ca_config.Pkcs11Config().ocsp_key_label)
    inter.add_argument("--out", type=Path, required=True, help="directory for chain + ca.yaml")
    inter.add_argument("--common-name", default="padlock Intermediate CA")
    inter.add_argument("--organization", default="padlock")
    inter.add_argument("--algorithm", choices=_ALGORITHMS, default=KeyAlgorithm.EC_P256.value)
    inter.add_argument("--days", type=int, default=5 * 365)
    inter.add_argument("--ocsp-url", help="AIA OCSP URL put in issued certificates")
    inter.add_argument("--ca-issuers-url", help="AIA caIssuers URL (the intermediate, DER)")
    inter.add_argument("--crl-base-url", help="CRL shards are <base>/<shard>.crl")
    inter.add_argument("--ledger-url", help="ledger URL (default: SQLite beside ca.yaml)")
    inter.set_defaults(func=_init_intermediate)

    sign = ca_sub.add_parser("sign", help="sign one CSR through the policy and the HSM")
    sign.add_argument("--config", type=Path, required=True)
    sign.add_argument("--csr", type=Path, required=True)
    sign.add_argument("--profile", default="tls-server")
    sign.add_argument("--days", type=float, default=90.0, help="requested lifetime in days")
    sign.add_argument("--out", type=Path, required=True, help="leaf certificate PEM")
    sign.add_argument("--chain-out", type=Path, help="also write leaf + chain here")
    sign.add_argument("--requester", default=f"cli:{os.environ.get('USER', 'unknown')}")
    sign.set_defaults(func=_sign)

    serve = ca_sub.add_parser("serve", help="run the CA sidecar (HTTP on a unix socket)")
    serve.add_argument("--config", type=Path, required=True)
    serve.set_defaults(func=_serve)


def _passphrase_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--passphrase-file",
        type=Path,
        help=f"file holding the root key passphrase (default: ${PASSPHRASE_ENV})",
    )


def _passphrase(args: argparse.Namespace) -> bytes:
    text: str
    if args.passphrase_file is not None:
        try:
            text = args.passphrase_file.read_text().rstrip("\n")
        except OSError as exc:
            raise CommandError(f"cannot read {args.passphrase_file}: {exc.strerror}") from None
    else:
        text = os.environ.get(PASSPHRASE_ENV, "")
        if not text:
            raise CommandError(f"give --passphrase-file or set {PASSPHRASE_ENV}")
    return text.encode()


def _init_root(args: argparse.Namespace) -> int:
    from padlock.ca import ceremony

    try:
        result = ceremony.init_root(
            args.dir,
            _passphrase(args),
            common_name=args.common_name,
            organization=args.organization or None,
            algorithm=KeyAlgorithm(args.algorithm),
            lifetime=datetime.timedelta(days=args.days),
        )
    except ceremony.CeremonyError as exc:
        raise CommandError(str(exc)) from None
    cert = result.certificate
    print(f"root CA: {cert.subject.rfc4514_string()}")
    print(f"  certificate: {result.cert_path}")
    print(f"  key (encrypted PKCS#8, keep offline): {result.key_path}")
    print(f"  valid until: {cert.not_valid_after_utc.isoformat()}")
    return 0


def _init_intermediate(args: argparse.Namespace) -> int:
    from padlock.ca import ceremony
    from padlock.keys import base as keys_base

    pkcs11 = ca_config.Pkcs11Config(
        module=args.pkcs11_module,
        token_label=args.token_label,
        pin_file=args.pin_file.resolve(),
        key_label=args.key_label,
        ocsp_key_label=args.ocsp_key_label,
    )
    urls = ca_config.UrlConfig(
        ocsp=args.ocsp_url, ca_issuers=args.ca_issuers_url, crl_base=args.crl_base_url
    )
    try:
        result = ceremony.init_intermediate(
            args.root_dir,
            _passphrase(args),
            args.out,
            pkcs11=pkcs11,
            common_name=args.common_name,
            organization=args.organization or None,
            algorithm=KeyAlgorithm(args.algorithm),
            lifetime=datetime.timedelta(days=args.days),
            urls=urls,
            ledger_url=args.ledger_url,
        )
    except (ceremony.CeremonyError, keys_base.KeyBackendError) as exc:
        raise CommandError(str(exc)) from None
    cert = result.certificate
    print(f"intermediate CA: {cert.subject.rfc4514_string()} (key in token {args.token_label!r})")
    print(f"  chain: {args.out / ceremony.CHAIN_FILE}")
    print(f"  OCSP responder: {args.out / ceremony.OCSP_CERT_FILE}")
    print(f"  config: {result.config_path}")
    return 0


def _load_config(path: Path) -> ca_config.CAConfig:
    try:
        return ca_config.load(path)
    except ca_config.ConfigError as exc:
        raise CommandError(str(exc)) from None


def _sign(args: argparse.Namespace) -> int:
    from padlock.ca import oneshot

    config = _load_config(args.config)
    try:
        csr_pem = args.csr.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read CSR {args.csr}: {exc}") from None
    try:
        issued = oneshot.sign(
            config,
            csr_pem=csr_pem,
            profile=args.profile,
            lifetime_seconds=int(args.days * 86400),
            requester=args.requester,
        )
    except oneshot.SignRefused as exc:
        raise CommandError(str(exc)) from None
    args.out.write_text(issued.certificate)
    if args.chain_out is not None:
        args.chain_out.write_text(issued.certificate + issued.chain)
    print(f"signed serial {issued.serial} -> {args.out}", file=sys.stderr)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from padlock.services import ca_http

    config = _load_config(args.config)
    return ca_http.run(config)
