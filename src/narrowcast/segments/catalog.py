"""What a rule may refer to, read from the store: attributes, event types, properties.

Customer columns and derived attributes are always known; imported attribute
keys and event properties come from the catalogue tables the importers fill;
the standard event vocabulary is known even before any such event arrives.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Connection, select

from narrowcast.ingest.events import VOCABULARY
from narrowcast.segments.compiler import COLUMN_ATTRIBUTES, DERIVED_ATTRIBUTES
from narrowcast.segments.language import Catalog, ValueType
from narrowcast.segments.scores import SCORE_TYPES
from narrowcast.store.schema import attribute_keys, event_properties

_STORED_TYPES: dict[str, ValueType] = {
    "number": "number",
    "text": "text",
    "bool": "bool",
    "date": "date",
    "list": "any",
    "object": "any",
}
# The checks in the importer's vocabulary, by what they produce.
_VOCABULARY_TYPES: dict[str, ValueType] = {
    "_text": "text",
    "_currency": "text",
    "_non_negative": "number",
    "_count": "number",
    "_score": "number",
}


def load_catalog(conn: Connection, segments: Mapping[str, str] | None = None) -> Catalog:
    attributes: dict[str, ValueType] = {
        **COLUMN_ATTRIBUTES,  # type: ignore[dict-item]
        **DERIVED_ATTRIBUTES,  # type: ignore[dict-item]
    }
    for key, kind in conn.execute(select(attribute_keys.c.key, attribute_keys.c.value_type)):
        attributes.setdefault(key, _STORED_TYPES.get(kind, "any"))
    properties: dict[str, dict[str, ValueType]] = {
        kind: {name: _VOCABULARY_TYPES.get(check.__name__, "any") for name, check in checks.items()}
        for kind, checks in VOCABULARY.items()
    }
    rows = conn.execute(
        select(event_properties.c.type, event_properties.c.property, event_properties.c.value_type)
    )
    for kind, name, value_type in rows:
        properties.setdefault(kind, {}).setdefault(name, _STORED_TYPES.get(value_type, "any"))
    return Catalog(
        attributes=attributes,
        event_types=frozenset(properties),
        properties=properties,
        segments=dict(segments or {}),
        scores=SCORE_TYPES,
    )
