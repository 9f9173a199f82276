"""Sign one CSR without a running CA service: the `padlock ca sign` path.

Called by `padlock.cli.ca`. It opens the same pieces `padlock ca serve` does (token, ledger,
authority, lint gate, policy) and runs the very same `Pipeline.issue()`, so a certificate
signed here has passed the same policy, HSM path, lint gate and ledger (with its serial
uniqueness and audit trail) as one from `/v1/sign`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import uuid

from padlock.ca import authority as authority_mod
from padlock.ca import config as ca_config
from padlock.ca import errors, hsm, lintgate, pipeline
from padlock.keys import base as keys_base
from padlock.ledger import ledger as ledger_mod


class SignRefused(Exception):
    """The CSR was refused or the CA could not sign; the message says why."""


@dataclasses.dataclass(frozen=True)
class Signed:
    certificate: str
    chain: str
    serial: str


def sign(
    config: ca_config.CAConfig,
    *,
    csr_pem: str,
    profile: str,
    lifetime_seconds: int,
    requester: str,
    idempotency_key: str | None = None,
) -> Signed:
    """Issue one certificate through the full pipeline; SignRefused carries the reason."""
    request = pipeline.SignRequest(
        csr_pem=csr_pem,
        profile=profile,
        lifetime_seconds=lifetime_seconds,
        idempotency_key=idempotency_key or f"cli/{uuid.uuid4()}",
        requester=requester,
    )
    try:
        return asyncio.run(_sign(config, request))
    except errors.CAError as exc:
        raise SignRefused(str(exc)) from None
    except keys_base.KeyBackendError as exc:
        raise SignRefused(f"the HSM is unavailable: {exc}") from None


async def _sign(config: ca_config.CAConfig, request: pipeline.SignRequest) -> Signed:
    key = hsm.IssuingKey(
        hsm.token_opener(
            config.pkcs11.module,
            config.pkcs11.token_label,
            config.pkcs11.pin_file,
            config.pkcs11.key_label,
        )
    )
    key.open()
    gate = lintgate.LintGate(
        enabled=config.lint.enabled, cabf_serverauth=config.lint.cabf_serverauth, processes=0
    )
    with (
        ledger_mod.Ledger(config.ledger.url) as ledger,
        concurrent.futures.ThreadPoolExecutor(max_workers=1) as executor,
    ):
        try:
            authority = authority_mod.load(config, ledger)
            pipe = pipeline.Pipeline(
                authority=authority,
                key=key,
                ledger=ledger,
                lint=gate,
                policy=pipeline.issuance_policy(config.policy),
                executor=executor,
            )
            try:
                issued = await pipe.issue(request)
            finally:
                await pipe.close()  # stops its group-commit and key-lookup tasks
        finally:
            gate.close()
    return Signed(
        certificate=issued.certificate_pem,
        chain=authority.chain_pem + authority.root_pem,
        serial=f"{issued.serial:x}",
    )
