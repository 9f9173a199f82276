"""Child process of the crash test: records issuances forever, printing each committed serial.

Run as `python -m tests.integration.ledger.issue_until_killed URL`. A serial is printed only
after `record_issuance` returned, i.e. after the CA would have handed the certificate out.
"""

from __future__ import annotations

import sys

from cryptography import x509

from padlock.ledger import Ledger, records
from tests.integration.ledger import certs


def main(url: str) -> None:
    ca = certs.SoftwareCA("crash-test CA")
    with Ledger(url) as ledger:
        ca_id = ledger.register_ca(ca.certificate, ca_type=records.CAType.INTERMEDIATE)
        print(f"ca {ca_id}", flush=True)
        while True:
            serial = x509.random_serial_number()
            ledger.record_issuance(
                ca_id,
                ca.issue(serial),
                cert_type=records.CertType.TLS_SERVER,
                requester="crash-test",
                idempotency_key=f"crash/{serial:x}",
            )
            print(f"{serial:x}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
