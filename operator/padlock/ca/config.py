"""The CA's configuration: one typed object, loaded from the `ca.yaml` that
`padlock ca init-intermediate` writes and `padlock ca sign` / `padlock ca serve` take as
`--config` (the Helm chart renders the same file).

Every field has a default that serves the embedded set-up (`make up`, SoftHSM, SQLite).
Relative paths in the file are resolved against the file's own directory, so a config and its
chain/PIN files can move together.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

DEFAULT_SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"


class ConfigError(ValueError):
    """The config file is missing, unreadable or has a wrong field; the message names it."""


@dataclasses.dataclass(frozen=True)
class Pkcs11Config:
    """Where the intermediate key lives: any PKCS#11 module, a token label and a PIN file."""

    module: str = DEFAULT_SOFTHSM_MODULE
    token_label: str = "padlock"  # noqa: S105 - a token label, not a secret
    pin_file: Path = Path("pin.txt")
    key_label: str = "padlock-intermediate"
    # A delegated OCSP responder key (RFC 6960 §4.2.2.2), also generated inside the token.
    ocsp_key_label: str = "padlock-ocsp"


@dataclasses.dataclass(frozen=True)
class LedgerSettings:
    """The issuance database: SQLite by default, PostgreSQL by URL.

    `url_file` names a file holding the URL (a mounted Secret, so a PostgreSQL password never
    sits in the config); when set it wins over `url`.
    """

    url: str = "sqlite:///ledger.db"
    url_file: Path | None = None


@dataclasses.dataclass(frozen=True)
class ListenConfig:
    """Where `padlock ca serve` listens: a unix socket, and optionally loopback TCP + mTLS."""

    socket: Path | None = Path("ca.sock")
    tcp_host: str | None = None
    tcp_port: int | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_client_ca_file: Path | None = None
    # Prometheus scrape port: serves GET /metrics only (never /v1/*), plain HTTP. None = off;
    # the metrics stay reachable on the unix socket either way.
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    # One log line per API request (aiohttp's access log). Off by default: it cost ~5 % of
    # the CA's CPU per certificate; padlock_ca_requests_total counts every request anyway.
    access_log: bool = False


@dataclasses.dataclass(frozen=True)
class UrlConfig:
    """URLs published in issued certificates (RFC 5280 §4.2.2.1 AIA, §4.2.1.13 CDP)."""

    ocsp: str | None = None
    ca_issuers: str | None = None
    # CRLs are sharded; each certificate's CDP is `<crl_base>/<shard>.crl`.
    crl_base: str | None = None


@dataclasses.dataclass(frozen=True)
class PolicyConfig:
    """Who may get what: the issuer-wide part of the issuance policy."""

    max_lifetime_seconds: int = 90 * 24 * 3600
    allowed_dns_suffixes: tuple[str, ...] = ()
    excluded_dns_suffixes: tuple[str, ...] = ()
    allowed_ip_networks: tuple[str, ...] = ()
    allowed_uri_prefixes: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class LintConfig:
    """The lint gate: own structural checks plus pkilint on every certificate."""

    enabled: bool = True
    cabf_serverauth: bool = False
    # pkilint runs in this many processes in total (0: in a thread of each CA process). With
    # `workers` > 1 they are divided among the workers, rounded up
    # (`CAConfig.per_worker_lint_processes`).
    processes: int = 2


@dataclasses.dataclass(frozen=True)
class RateLimitConfig:
    """Per-requester token bucket for `POST /v1/sign`."""

    requests_per_second: float = 200.0
    burst: int = 400


@dataclasses.dataclass(frozen=True)
class CAConfig:
    """Everything `padlock ca serve` needs. Built by `load()`; every field has a default."""

    name: str = "padlock"
    chain_file: Path = Path("chain.pem")
    pkcs11: Pkcs11Config = dataclasses.field(default_factory=Pkcs11Config)
    ledger: LedgerSettings = dataclasses.field(default_factory=LedgerSettings)
    listen: ListenConfig = dataclasses.field(default_factory=ListenConfig)
    urls: UrlConfig = dataclasses.field(default_factory=UrlConfig)
    policy: PolicyConfig = dataclasses.field(default_factory=PolicyConfig)
    lint: LintConfig = dataclasses.field(default_factory=LintConfig)
    rate_limit: RateLimitConfig = dataclasses.field(default_factory=RateLimitConfig)
    # Signing runs off the event loop in this many threads (per worker process).
    signing_threads: int = 2
    # CA worker processes serving the same sockets (padlock.services.ca_http.supervisor).
    # 1: today's single process. N > 1: a supervisor binds the sockets once and runs N
    # workers, each with its own event loop, thread pool, ledger connection, HSM session,
    # pipeline and `lint.processes` pkilint processes; the rate limit stays the configured
    # total across them (docs/design/20261127.ca-workers.md).
    workers: int = 1

    def per_worker_lint_processes(self) -> int:
        """pkilint processes of one worker: `lint.processes` divided among `workers`, rounded
        up (so every worker keeps at least one when the total is positive)."""
        return -(-self.lint.processes // self.workers)

    def to_dict(self, *, omit_none: bool = True) -> dict[str, Any]:
        """The YAML form: paths as strings, tuples as lists, None fields omitted (or kept as
        null with `omit_none=False`: an exact copy, e.g. `listen.socket: null` for TCP only)."""
        plain: dict[str, Any] = _plain(dataclasses.asdict(self), omit_none)
        return plain


def load(path: Path) -> CAConfig:
    """Read and check a ca.yaml; relative paths are resolved against its directory."""
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read CA config {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"CA config {path} is not valid YAML: {exc}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"CA config {path} must be a mapping at the top level")
    config = _build(CAConfig, raw, "")
    config = _resolve_paths(config, path.parent.resolve())
    _check(config)
    return config


def dump(config: CAConfig, path: Path) -> None:
    """Write a config as YAML (used by the ceremony CLI)."""
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


def _build(cls: type[Any], raw: Mapping[str, Any], where: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"unknown field {where}{unknown[0]} (known: {', '.join(fields)})")
    kwargs: dict[str, Any] = {}
    for name, value in raw.items():
        ftype = fields[name].type
        sub = _NESTED.get(name) if cls is CAConfig else None
        if sub is not None:
            if not isinstance(value, Mapping):
                raise ConfigError(f"field {where}{name} must be a mapping")
            kwargs[name] = _build(sub, value, f"{where}{name}.")
        else:
            kwargs[name] = _coerce(value, str(ftype), f"{where}{name}")
    return cls(**kwargs)


def _coerce(value: Any, ftype: str, where: str) -> Any:
    if value is None:
        if "None" in ftype:
            return None
        raise ConfigError(f"field {where} must not be empty")
    if ftype.startswith("Path"):
        if not isinstance(value, str):
            raise ConfigError(f"field {where} must be a path string")
        return Path(value)
    if ftype.startswith("tuple"):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"field {where} must be a list of strings")
        return tuple(value)
    expected: dict[str, type | tuple[type, ...]] = {
        "str": str,
        "int": int,
        "float": (int, float),
        "bool": bool,
    }
    base = ftype.split(" ")[0]
    if base in expected:
        if isinstance(value, bool) and base != "bool":
            raise ConfigError(f"field {where} must be {base}, not a boolean")
        if not isinstance(value, expected[base]):
            raise ConfigError(f"field {where} must be {base}, got {type(value).__name__}")
        return float(value) if isinstance(value, int | float) and base == "float" else value
    return value


_NESTED: dict[str, type[Any]] = {
    "pkcs11": Pkcs11Config,
    "ledger": LedgerSettings,
    "listen": ListenConfig,
    "urls": UrlConfig,
    "policy": PolicyConfig,
    "lint": LintConfig,
    "rate_limit": RateLimitConfig,
}


def _resolve_paths(config: CAConfig, base: Path) -> CAConfig:
    def absolute(p: Path | None) -> Path | None:
        return None if p is None else (p if p.is_absolute() else base / p)

    listen = config.listen
    ledger_url = config.ledger.url
    url_file = absolute(config.ledger.url_file)
    if url_file is not None:
        try:
            ledger_url = url_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"ledger.url_file {url_file}: {exc.strerror}") from None
        if not ledger_url:
            raise ConfigError(f"ledger.url_file {url_file} is empty")
    prefix = "sqlite:///"
    if ledger_url.startswith(prefix) and not ledger_url.startswith(prefix + "/"):
        rest = ledger_url.removeprefix(prefix)
        if rest and rest != ":memory:":
            ledger_url = prefix + str(base / rest)
    return dataclasses.replace(
        config,
        chain_file=absolute(config.chain_file) or config.chain_file,
        pkcs11=dataclasses.replace(
            config.pkcs11, pin_file=absolute(config.pkcs11.pin_file) or config.pkcs11.pin_file
        ),
        ledger=dataclasses.replace(config.ledger, url=ledger_url, url_file=url_file),
        listen=dataclasses.replace(
            listen,
            socket=absolute(listen.socket),
            tls_cert_file=absolute(listen.tls_cert_file),
            tls_key_file=absolute(listen.tls_key_file),
            tls_client_ca_file=absolute(listen.tls_client_ca_file),
        ),
    )


def _check(config: CAConfig) -> None:
    listen = config.listen
    if listen.socket is None and listen.tcp_port is None:
        raise ConfigError("listen: set a unix socket, a tcp_port, or both")
    if listen.tcp_port is not None:
        if listen.tcp_host is None:
            raise ConfigError("listen.tcp_host is required with listen.tcp_port")
        if not _is_loopback(listen.tcp_host) and (
            listen.tls_cert_file is None or listen.tls_client_ca_file is None
        ):
            raise ConfigError(
                "listen: TCP on a non-loopback address needs mTLS "
                "(tls_cert_file, tls_key_file, tls_client_ca_file)"
            )
    if config.policy.max_lifetime_seconds <= 0:
        raise ConfigError("policy.max_lifetime_seconds must be positive")
    if config.rate_limit.requests_per_second <= 0 or config.rate_limit.burst < 1:
        raise ConfigError("rate_limit: requests_per_second must be > 0 and burst >= 1")
    if config.signing_threads < 1:
        raise ConfigError("signing_threads must be >= 1")
    if config.workers < 1:
        raise ConfigError(f"workers must be >= 1, got {config.workers}")
    if config.lint.processes < 0:
        raise ConfigError("lint.processes must be >= 0")
    for net in config.policy.allowed_ip_networks:
        try:
            ipaddress.ip_network(net)
        except ValueError:
            raise ConfigError(f"policy.allowed_ip_networks: {net!r} is not a network") from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _plain(value: Any, omit_none: bool = True) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v, omit_none) for k, v in value.items() if v is not None or not omit_none}
    if isinstance(value, (list, tuple)):
        return [_plain(v, omit_none) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
