"""Certificate serial numbers: 20 random octets, positive, non-zero.

Called by the CA pipeline before it builds a TBS certificate, and by the ceremony CLI for the
root and intermediate. Uniqueness per CA is the ledger's job (a UNIQUE constraint); this module
only guarantees the shape and the entropy.

RFC 5280 §4.1.2.2: the serial is a positive integer of at most 20 octets (DER, so including a
leading 0x00 when the top bit is set). CA/Browser Forum BR §7.1: at least 64 bits of CSPRNG
output, non-sequential. We draw 160 bits from `secrets` and clear the top bit so the DER
INTEGER never needs a 21st padding octet: 159 bits of entropy, far above the 64-bit floor.
"""

from __future__ import annotations

import secrets

SERIAL_OCTETS = 20
"""RFC 5280 §4.1.2.2: conforming CAs MUST NOT use serial numbers longer than 20 octets."""

MIN_ENTROPY_BITS = 64
"""CA/Browser Forum BR §7.1: at least 64 bits of output from a CSPRNG."""

_MAX_SERIAL = (1 << (8 * SERIAL_OCTETS - 1)) - 1


def new_serial() -> int:
    """A fresh serial: uniform in [1, 2**159 - 1], so positive, non-zero and ≤ 20 DER octets."""
    while True:
        # Clearing the top bit keeps the DER encoding at 20 octets (no 0x00 sign padding).
        serial = secrets.randbits(8 * SERIAL_OCTETS - 1)
        if serial != 0:  # RFC 5280 §4.1.2.2: positive; zero is refused by many clients.
            return serial


def check_serial(serial: int) -> None:
    """Raise ValueError unless `serial` is a legal RFC 5280 serial (positive, ≤ 20 octets)."""
    if serial <= 0:
        raise ValueError(f"serial number must be positive, got {serial}")
    if serial > _MAX_SERIAL:
        raise ValueError(
            f"serial number {serial:#x} does not fit in {SERIAL_OCTETS} DER octets "
            "(RFC 5280 §4.1.2.2)"
        )


def serial_to_bytes(serial: int) -> bytes:
    """The 20-octet big-endian form the ledger stores (fixed width, so it sorts and compares)."""
    check_serial(serial)
    return serial.to_bytes(SERIAL_OCTETS, "big")


def serial_from_bytes(raw: bytes) -> int:
    """Inverse of `serial_to_bytes`; ValueError if the stored value is not a legal serial."""
    if len(raw) > SERIAL_OCTETS:
        raise ValueError(f"serial number is {len(raw)} octets, more than {SERIAL_OCTETS}")
    serial = int.from_bytes(raw, "big")
    check_serial(serial)
    return serial


def serial_hex(serial: int) -> str:
    """Upper-case hex without separators, as `openssl x509 -serial` and OCSP tools print it."""
    check_serial(serial)
    text = f"{serial:X}"
    return text if len(text) % 2 == 0 else "0" + text
