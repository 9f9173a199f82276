"""Status conditions as plain dicts for status patches (`metav1.Condition` shape).

Called by the certificate and issuer controllers. `lastTransitionTime` changes only when the
status flips, as the Kubernetes API conventions ask.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Any

from padlock.api.wire import format_time


def get(conditions: Iterable[Mapping[str, Any]] | None, type_: str) -> Mapping[str, Any] | None:
    for condition in conditions or ():
        if condition.get("type") == type_:
            return condition
    return None


def put(
    conditions: Iterable[Mapping[str, Any]] | None,
    type_: str,
    status: str,
    reason: str,
    message: str,
    now: datetime.datetime,
    generation: int | None = None,
) -> list[dict[str, Any]]:
    """The condition list with `type_` set; other types are kept as they are."""
    out: list[dict[str, Any]] = []
    previous = get(conditions, type_)
    changed = previous is None or previous.get("status") != status
    entry: dict[str, Any] = {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message[:32768],
        "lastTransitionTime": format_time(now)
        if changed or previous is None
        else previous.get("lastTransitionTime", format_time(now)),
    }
    if generation is not None:
        entry["observedGeneration"] = generation
    for condition in conditions or ():
        if condition.get("type") != type_:
            out.append(dict(condition))
    out.append(entry)
    return sorted(out, key=lambda c: str(c.get("type")))
