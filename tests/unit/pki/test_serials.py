"""Serial numbers: positive, non-zero, ≤ 20 DER octets, ≥ 64 bits of entropy, non-sequential."""

from __future__ import annotations

import pytest

from padlock.pki import serials


def test_serials_are_positive_and_fit_twenty_der_octets() -> None:
    for _ in range(2000):
        serial = serials.new_serial()
        assert serial > 0
        # DER INTEGER content octets: a set top bit would need a 21st (0x00) octet.
        der_len = (serial.bit_length() + 8) // 8
        assert der_len <= serials.SERIAL_OCTETS


def test_serials_use_the_top_bits_so_entropy_is_far_above_64_bits() -> None:
    drawn = [serials.new_serial() for _ in range(2000)]
    assert len(set(drawn)) == len(drawn)
    # Uniform over 159 bits: about half have bit 158 set; none is a small counter.
    high = sum(1 for s in drawn if s >> 158)
    assert 800 < high < 1200
    assert min(s.bit_length() for s in drawn) > serials.MIN_ENTROPY_BITS


def test_check_serial_refuses_zero_negative_and_oversized() -> None:
    with pytest.raises(ValueError, match="must be positive, got 0"):
        serials.check_serial(0)
    with pytest.raises(ValueError, match="must be positive, got -5"):
        serials.check_serial(-5)
    with pytest.raises(ValueError, match=r"does not fit in 20 DER octets \(RFC 5280"):
        serials.check_serial(1 << 159)
    serials.check_serial((1 << 159) - 1)


def test_serial_bytes_round_trip_at_fixed_width() -> None:
    serial = serials.new_serial()
    raw = serials.serial_to_bytes(serial)
    assert len(raw) == 20
    assert serials.serial_from_bytes(raw) == serial
    with pytest.raises(ValueError, match="must be positive"):
        serials.serial_from_bytes(bytes(20))


def test_serial_hex_is_even_length_upper_case() -> None:
    assert serials.serial_hex(0xABC) == "0ABC"
    assert serials.serial_hex(0x1F) == "1F"
