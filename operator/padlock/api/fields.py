"""Field metadata for the CRD models: the one place a field's wire name, description and
OpenAPI constraints are written.

Called by the model modules (`padlock.api.certificate`, `.issuer`, `.revocation`, ...) to
declare their fields, by `padlock.api.wire` to map snake_case attributes to camelCase keys,
and by `padlock.api.crdgen` to emit the OpenAPI v3 schema. Because the CRD YAML is generated
from these declarations, the models and the API server's validation cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

# The key under which a `Meta` is stored in `dataclasses.field(metadata=...)`.
META_KEY = "padlock.api"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Rule:
    """One CEL rule, emitted as an `x-kubernetes-validations` entry.

    `rule` is evaluated by the API server with `self` bound to the object the rule sits on
    (Kubernetes "Validation rules", CustomResourceDefinition `x-kubernetes-validations`).
    `message` is what the user sees when the rule is false. `field_path` (a JSONPath such as
    `.renewBefore`) points the error at one field.
    """

    rule: str
    message: str
    field_path: str | None = None

    def to_openapi(self) -> dict[str, str]:
        out = {"rule": self.rule, "message": self.message}
        if self.field_path is not None:
            out["fieldPath"] = self.field_path
        return out


@dataclasses.dataclass(frozen=True, kw_only=True)
class Meta:
    """What a field declares besides its Python type."""

    description: str
    wire: str | None = None
    default: Any = None
    pattern: str | None = None
    format: str | None = None
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None
    min_items: int | None = None
    max_items: int | None = None
    # Constraints on each element of a list field (the list itself takes the ones above).
    item_pattern: str | None = None
    item_format: str | None = None
    item_max_length: int | None = None
    # CEL rules on this field's value (for a list field: on the list; use `item_rules` for
    # rules on each element).
    rules: Sequence[Rule] = ()
    item_rules: Sequence[Rule] = ()
    # True for a list that is a set of unique scalars (`x-kubernetes-list-type: set`).
    list_set: bool = False
    # For a list of objects keyed by these fields (`x-kubernetes-list-type: map`), e.g.
    # conditions keyed by type.
    list_map_keys: Sequence[str] = ()
    # For an enum field: the subset of the enum's values the schema allows (default: all).
    choices: Sequence[str] | None = None


def spec_field(
    description: str,
    *,
    wire: str | None = None,
    default: Any = None,
    pattern: str | None = None,
    format: str | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
    max_length: int | None = None,
    min_items: int | None = None,
    max_items: int | None = None,
    item_pattern: str | None = None,
    item_format: str | None = None,
    item_max_length: int | None = None,
    rules: Sequence[Rule] = (),
    item_rules: Sequence[Rule] = (),
    list_set: bool = False,
    list_map_keys: Sequence[str] = (),
    choices: Sequence[str] | None = None,
    required: bool = False,
    empty: Any = None,
) -> Any:
    """Declare a model field.

    `default` is the OpenAPI default the API server fills in (in wire form); the Python
    attribute stays `empty` (None, or `()` for lists) when the key is absent, so a model
    round-trips exactly what the user wrote. `required=True` makes the field mandatory in
    the schema and in `from_dict`.
    """
    meta = Meta(
        description=description,
        wire=wire,
        default=default,
        pattern=pattern,
        format=format,
        minimum=minimum,
        maximum=maximum,
        max_length=max_length,
        min_items=min_items,
        max_items=max_items,
        item_pattern=item_pattern,
        item_format=item_format,
        item_max_length=item_max_length,
        rules=tuple(rules),
        item_rules=tuple(item_rules),
        list_set=list_set,
        list_map_keys=tuple(list_map_keys),
        choices=None if choices is None else tuple(choices),
    )
    metadata = {META_KEY: meta}
    if required:
        return dataclasses.field(metadata=metadata)
    return dataclasses.field(default=empty, metadata=metadata)


def list_field(description: str, **kwargs: Any) -> Any:
    """A list field: absent on the wire is the empty tuple in Python."""
    return spec_field(description, empty=(), **kwargs)


def meta_of(field: dataclasses.Field[Any]) -> Meta:
    """The `Meta` of a model field; TypeError if the field was not declared with spec_field."""
    meta = field.metadata.get(META_KEY)
    if not isinstance(meta, Meta):
        raise TypeError(f"field {field.name!r} was not declared with padlock.api.fields")
    return meta


def wire_name(field: dataclasses.Field[Any]) -> str:
    """The camelCase key of a field: its `wire=` override, else snake_case → camelCase."""
    meta = meta_of(field)
    if meta.wire is not None:
        return meta.wire
    head, *rest = field.name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def is_required(field: dataclasses.Field[Any]) -> bool:
    """A field is required when it has no default (declared with `required=True`)."""
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
