"""Renewal times and retry back-off: pure arithmetic over a given clock."""

from __future__ import annotations

import datetime

from padlock.api.certificate import CertificateSpec
from padlock.controllers import renewal

START = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
END = START + datetime.timedelta(days=90)


def _spec(**extra: object) -> CertificateSpec:
    return CertificateSpec.from_dict(
        {"secretName": "s", "issuerRef": {"name": "ca"}, "dnsNames": ["a.test"], **extra}
    )


def test_default_window_is_a_third_of_the_lifetime_minus_at_most_ten_percent() -> None:
    window = datetime.timedelta(days=30)
    for n in range(200):
        when = renewal.renewal_time(_spec(), f"uid-{n}", START, END)
        assert END - window - window / 10 <= when <= END - window


def test_jitter_is_deterministic_per_uid_and_spreads_across_uids() -> None:
    first = renewal.renewal_time(_spec(), "uid-a", START, END)
    assert renewal.renewal_time(_spec(), "uid-a", START, END) == first
    spread = {renewal.renewal_time(_spec(), f"uid-{n}", START, END) for n in range(1000)}
    assert len(spread) > 900, "a thousand certificates must not renew in the same second"


def test_renew_before_and_percentage_set_the_window() -> None:
    when = renewal.renewal_time(_spec(renewBefore="240h"), "u", START, END)
    assert END - datetime.timedelta(hours=264) <= when <= END - datetime.timedelta(hours=240)
    when = renewal.renewal_time(_spec(renewBeforePercentage=50), "u", START, END)
    assert START + datetime.timedelta(days=40) <= when <= START + datetime.timedelta(days=45)


def test_a_renew_before_as_long_as_the_granted_lifetime_falls_back_to_two_thirds() -> None:
    short_end = START + datetime.timedelta(hours=3)
    when = renewal.renewal_time(_spec(renewBefore="240h"), "u", START, short_end)
    assert (
        START + datetime.timedelta(hours=1, minutes=54)
        <= when
        <= START + datetime.timedelta(hours=2)
    )


def test_jitter_never_eats_more_than_half_the_time_before_the_window() -> None:
    end = START + datetime.timedelta(hours=1)
    for n in range(200):
        when = renewal.renewal_time(_spec(duration="1h", renewBefore="59m"), f"u{n}", START, end)
        assert (
            START + datetime.timedelta(seconds=30) <= when <= START + datetime.timedelta(minutes=1)
        )


def test_backoff_doubles_and_is_capped_at_five_minutes() -> None:
    delays = [renewal.backoff_seconds(n) for n in range(1, 12)]
    assert delays[:4] == [5.0, 10.0, 20.0, 40.0]
    assert max(delays) == 300.0
    assert delays == sorted(delays)
