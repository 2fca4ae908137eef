"""``explain``: rule text that parses back to the same rule, and verdicts for one customer."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from sqlalchemy import create_engine

from narrowcast.segments import load_catalog, parse_rule
from narrowcast.segments.definitions import Definitions, SegmentDefinition
from narrowcast.segments.evaluation import Evaluation
from narrowcast.segments.explain import explain, render
from narrowcast.store import Store
from narrowcast.store.schema import metadata
from tests.segments.reference import World
from tests.segments.test_compiler_matches_reference import EVENT_TYPES, SEGMENTS, rules

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=rules())
def test_rendered_rules_parse_back_to_the_same_rule(text: str) -> None:
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.connect() as conn:
        catalog = load_catalog(conn, SEGMENTS)
    engine.dispose()
    # The property test's world: its attributes and the properties of its events.
    properties = {"page": "text", "category": "text", "device": "text", "value": "number"}
    catalog = replace(
        catalog,
        attributes={**catalog.attributes, "score": "number", "lifestyle": "text", "vip": "bool"},
        properties={**catalog.properties, **dict.fromkeys(EVENT_TYPES, properties)},
    )
    tree = parse_rule(text, catalog)
    assert parse_rule(render(tree), catalog) == tree


def test_explain_shows_every_condition_and_value_for_a_customer(store: Store) -> None:
    world = World()
    world.customer("ana", country="ES")
    world.customer("ben", country="PT")
    world.event("ana", "order", NOW - timedelta(days=2), value=40.0)
    world.event("ana", "order", NOW - timedelta(days=40), value=10.0)
    with store.begin() as conn:
        world.write(conn)
    definitions = Definitions(
        {
            "spain": SegmentDefinition("spain", "country == 'ES'", "", "t:1", False),
            "recent": SegmentDefinition(
                "recent", "segment('spain') and count('order', within='30d') >= 2", "", "t:2", False
            ),
        }
    )
    with store.connect() as conn:
        evaluation = Evaluation(definitions, conn, NOW)
        rule = evaluation.rule("recent")
        out = explain(evaluation, rule, "ana")
        assert out.member is False
        text = out.text()
        assert "customer 'ana' is NOT in the segment" in text
        assert "✗ segment('spain') and count('order', within='30d') >= 2" in text
        assert "✓ segment('spain')" in text
        assert "✓ country == 'ES'" in text
        assert "country = 'ES'" in text
        assert "✗ count('order', within='30d') >= 2" in text
        assert "count('order', within='30d') = 1" in text
        assert "SELECT customers.id" in out.sql and "'order'" in out.sql
        generic = explain(evaluation, rule).text()
        assert "conditions:" in generic and "✓" not in generic
        missing = explain(evaluation, evaluation.rule(where="avg('order', 'value') > 1"), "ben")
        assert "avg('order', 'value') = missing" in missing.text()
