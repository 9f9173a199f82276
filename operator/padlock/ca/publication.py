"""Revocation status publication in the CA process: the hooks and the timer that keep the
pre-signed OCSP responses (`ocsp_signing`) and the CRL shards (`crl_publisher`) current.

Called by `padlock.services.ca_http.app`, which registers `after_issue` in the pipeline's
hook list, `after_revoke` in the revoker's, and runs `run_forever()` as a background task.

- After an issuance: pre-sign the certificate's "good" response (DESIGN.md, data flow).
- After a revocation: re-sign that certificate's response and regenerate its CRL shard at
  once, before `POST /v1/revoke` answers; a failure is logged and the timer retries.
  Concurrent revocations share the regeneration (one CRL per shard, not one per revocation).
- Every `interval` seconds: repair responses still saying good for revoked certificates,
  regenerate shards with revocations the hook missed, re-sign responses past half their
  validity, regenerate CRLs past two thirds of theirs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import datetime
import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from cryptography import x509

from padlock.ca import authority as authority_mod
from padlock.ca import ceremony, crl_publisher, hsm, ocsp_signing, pipeline
from padlock.ca import config as ca_config
from padlock.keys import base as keys_base
from padlock.ledger import ledger as ledger_mod
from padlock.ledger import records

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclasses.dataclass
class Publication:
    """OCSP pre-signing and CRL publication for one CA."""

    presigner: ocsp_signing.PreSigner | None
    """None when the CA has no delegated responder certificate (`ocsp.pem`): CRLs only."""
    crls: crl_publisher.CrlPublisher
    executor: concurrent.futures.Executor
    interval: float = 60.0
    now: Callable[[], datetime.datetime] = crl_publisher.utc_now
    _pending_shards: set[int] = dataclasses.field(default_factory=set, init=False)
    _crl_lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock, init=False)

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(func, *args))

    def presign_issued(self, serial: int) -> records.OcspCacheEntry | None:
        """The good response of a certificate about to be committed (the pipeline's
        `presign`, blocking: HSM); the pipeline stores it in the issuance transaction."""
        if self.presigner is None:
            return None
        return self.presigner.signer.presign(
            self.presigner.ca_id, serial, records.CertificateStatus(records.Status.GOOD), "issued"
        )

    async def after_issue(self, issued: pipeline.Issued) -> None:
        """Pre-sign the new certificate's good response (a pipeline `after_issue` hook),
        unless the pipeline already committed one with the certificate."""
        if self.presigner is not None and not issued.ocsp_presigned:
            await self._run(self.presigner.update, issued.serial, "issued")

    async def after_revoke(self, serial: int) -> None:
        """Re-sign the revoked certificate's response, then regenerate its CRL shard."""
        try:
            if self.presigner is not None:
                await self._run(self.presigner.update, serial, "revoked")
        except Exception:
            log.exception("re-signing the OCSP response of revoked %x failed; will retry", serial)
        await self._publish_shard(authority_mod.crl_shard(serial))

    async def _publish_shard(self, shard: int) -> None:
        """Regenerate `shard`, together with every shard other revocations are waiting for:
        revocations arriving together (an issuer-wide revoke-all runs its hooks at once) share
        one CRL per shard instead of one each. Returns once a CRL listing this caller's
        revocation (committed before the call) is stored, or the attempt failed (logged; the
        timer retries)."""
        self._pending_shards.add(shard)
        async with self._crl_lock:
            if shard not in self._pending_shards:
                return  # published by the previous holder, which listed after our commit
            shards, self._pending_shards = self._pending_shards, set()
            try:
                await self._run(self.crls.publish, shards)
            except Exception:
                log.exception("regenerating CRL shards %s failed; will retry", sorted(shards))

    async def tick(self) -> None:
        """One pass of the timer (see the module docstring)."""
        now = self.now()
        steps: list[tuple[str, Callable[[], object]]] = []
        if self.presigner is not None:
            steps.append(("repair revoked OCSP responses", self.presigner.repair_revoked))
            steps.append(
                ("refresh OCSP responses", functools.partial(self.presigner.refresh_due, now))
            )
        steps.append(("regenerate CRLs with new revocations", self.crls.publish_new_revocations))
        steps.append(("refresh CRLs", functools.partial(self.crls.publish_due, now)))
        for name, step in steps:
            try:
                await self._run(step)
            except Exception:
                log.exception("%s failed; retrying in %.0f s", name, self.interval)

    async def run_forever(self) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(self.interval)


def responder_certificate_file(config: ca_config.CAConfig) -> Path:
    """`ocsp.pem`, which `padlock ca init-intermediate` writes beside the chain file."""
    return config.chain_file.with_name(ceremony.OCSP_CERT_FILE)


def create(
    config: ca_config.CAConfig,
    *,
    authority: authority_mod.Authority,
    ledger: ledger_mod.Ledger,
    issuing_key: hsm.IssuingKey,
    responder_key: Callable[[], keys_base.Signer] | None,
    executor: concurrent.futures.Executor,
    interval: float = 60.0,
    now: Callable[[], datetime.datetime] = crl_publisher.utc_now,
) -> Publication:
    """The CA's publication (blocking: reads `ocsp.pem`). Without the responder certificate
    or key loader, OCSP pre-signing is off (logged) and only CRLs are published."""
    presigner = None
    cert_file = responder_certificate_file(config)
    if responder_key is None:
        log.warning("no OCSP responder key for this CA: OCSP pre-signing is off")
    elif not cert_file.exists():
        log.warning("%s is missing: OCSP pre-signing is off", cert_file)
    else:
        signer = ocsp_signing.ResponseSigner(
            issuer=authority.certificate,
            responder_certificate=x509.load_pem_x509_certificate(cert_file.read_bytes()),
            key=ocsp_signing.ResponderKey(responder_key),
            now=now,
        )
        presigner = ocsp_signing.PreSigner(ledger=ledger, ca_id=authority.ca_id, signer=signer)
    crls = crl_publisher.CrlPublisher(ledger=ledger, authority=authority, key=issuing_key, now=now)
    return Publication(presigner, crls, executor, interval, now)
