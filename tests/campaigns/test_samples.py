"""The sample campaigns shipped in campaigns/ and templates/, checked on a demo shop.

A small demo store with two segment snapshots (so that ``on_enter`` triggers
have entries), and a config.toml pointing at the repository's campaigns and
templates: ``validate`` passes, every sample dry-runs and renders its samples,
the scheduled ones (and the cart reminder) plan messages, and Spanish
customers get the Spanish copy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from narrowcast.cli import cli
from narrowcast.demo import generate_demo
from narrowcast.segments.definitions import load_definitions
from narrowcast.segments.membership import snapshot
from narrowcast.store import Store
from narrowcast.store.schema import customers

REPO = Path(__file__).resolve().parents[2]
CAMPAIGNS = REPO / "campaigns"
TEMPLATES = REPO / "templates"
AT = "2026-12-01T12:00:00Z"
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
SECRET_ENV = "NARROWCAST_SAMPLES_TEST_SECRET"

TRIGGERED = ("cart_abandoner", "nps_detractor_recovery", "nps_promoter_review")
SCHEDULED = (
    "winback_lost",
    "vip_early_access",
    "frequent_buyer_thanks",
    "coupon_offers",
    "hot_intent_discount",
    "new_visitor_guide",
    "returning_visitor_content",
    "recommendation_clickers",
    "b2b_lead_nurturing",
)
SAMPLES = tuple(sorted((*TRIGGERED, *SCHEDULED)))

# Parts that carry no words: the same file serves every language.
LANGUAGE_FREE_PARTS = {"link", "image", "data", "cta_url", "placement", "survey"}


@dataclass(frozen=True)
class Shop:
    config: Path
    db: Path

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(
            cli,
            ["--config", str(self.config), *args],
            env={
                SECRET_ENV: "a test secret of more than thirty-two bytes",
                "NARROWCAST_DATABASE_URL": None,
            },
            catch_exceptions=False,
        )

    def locales(self, ids: list[str]) -> dict[str, str | None]:
        store = Store(f"sqlite:///{self.db}")
        try:
            with store.connect() as conn:
                rows = conn.execute(
                    select(customers.c.id, customers.c.locale).where(customers.c.id.in_(ids))
                )
                return {row.id: row.locale for row in rows}
        finally:
            store.dispose()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    folder = tmp_path_factory.mktemp("samples")
    db = folder / "narrowcast.db"
    store = Store(f"sqlite:///{db}")
    store.upgrade()
    generate_demo(store, customers=600, seed=3, now=NOW)
    definitions = load_definitions(CAMPAIGNS / "segments.toml")
    snapshot(store, definitions, datetime(2026, 11, 20, 12, tzinfo=UTC))
    snapshot(store, definitions, datetime(2026, 12, 1, 11, tzinfo=UTC))
    store.dispose()
    config = folder / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{db}"\n'
        f'[campaigns]\ndir = "{CAMPAIGNS}"\ntemplates = "{TEMPLATES}"\n'
        f'[links]\nsecret_env = "{SECRET_ENV}"\n',
        encoding="utf-8",
    )
    yield Shop(config, db)


def dry_run(shop: Shop, name: str, *args: str) -> dict[str, Any]:
    result = shop.run("dry-run", name, "--at", AT, "--json", *args)
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_every_sample_is_shipped() -> None:
    assert sorted(p.stem for p in CAMPAIGNS.glob("*.toml")) == list(SAMPLES)
    for name in SAMPLES:
        assert (TEMPLATES / name).is_dir(), f"templates/{name}/ is missing"


def test_every_worded_template_has_a_spanish_translation() -> None:
    missing = []
    for template in sorted(TEMPLATES.rglob("*.j2")):
        pieces = template.name.split(".")
        if len(pieces) != 3:  # channel.part.j2: the default (English) template
            continue
        if pieces[1] in LANGUAGE_FREE_PARTS:
            continue
        spanish = template.with_name(f"{pieces[0]}.{pieces[1]}.es.j2")
        if not spanish.exists():
            missing.append(str(spanish.relative_to(REPO)))
    assert missing == []


def test_validate_passes_on_every_sample(shop: Shop) -> None:
    result = shop.run("validate", "--at", AT, "--json")
    report = json.loads(result.stdout)
    assert report["problems"] == [] and report["ok"], result.output
    assert result.exit_code == 0
    assert sorted(report["campaigns"]) == list(SAMPLES)
    assert report["rendered"] >= len(SAMPLES)


@pytest.mark.parametrize("name", SAMPLES)
def test_dry_run_renders_its_samples(shop: Shop, name: str) -> None:
    report = dry_run(shop, name, "--limit", "5")
    assert report["campaign"] == name
    assert [s for s in report["samples"] if s["error"]] == []
    assert len(report["samples"]) == min(5, report["planned"])
    for sample in report["samples"]:
        parts = sample["parts"]
        if sample["channel"] == "email":
            assert parts["subject"] and parts["html"] and parts["text"]
            assert "/u/" in parts["html"]
            assert "{{" not in parts["text"] and "<" not in parts["text"]
        else:
            assert parts["body"]


@pytest.mark.parametrize("name", [*SCHEDULED, "cart_abandoner"])
def test_dry_run_plans_messages(shop: Shop, name: str) -> None:
    report = dry_run(shop, name, "--limit", "0")
    assert report["planned"] >= 1, report["dropped"]


def test_web_samples_carry_their_placement_and_survey(shop: Shop) -> None:
    guide = dry_run(shop, "new_visitor_guide", "--limit", "1")["samples"][0]["parts"]
    assert guide["placement"] == "banner" and guide["survey"] is None
    assert guide["targeting"] == {"visitor": "new", "referrer": ["search"], "path": "*"}
    content = dry_run(shop, "returning_visitor_content", "--limit", "1")["samples"][0]["parts"]
    assert content["placement"] == "modal" and content["survey"] == "nps"
    assert content["targeting"]["visitor"] == "returning"


def _by_language(shop: Shop, name: str, limit: int = 40) -> dict[str, list[dict[str, Any]]]:
    samples = [s for s in dry_run(shop, name, "--limit", str(limit))["samples"]]
    locales = shop.locales([s["customer_id"] for s in samples])
    out: dict[str, list[dict[str, Any]]] = {"es": [], "other": []}
    for sample in samples:
        locale = locales[sample["customer_id"]] or ""
        out["es" if locale.startswith("es") else "other"].append(sample)
    return out


def test_spanish_customers_get_the_spanish_subject(shop: Shop) -> None:
    samples = _by_language(shop, "winback_lost")
    spanish = [s for s in samples["es"] if s["channel"] == "email"]
    others = [s for s in samples["other"] if s["channel"] == "email"]
    assert spanish and others
    for sample in spanish:
        subject = sample["parts"]["subject"]
        assert re.search(r"\b[Tt]e echamos de menos: un 15 % de descuento para volver$", subject)
        assert "Hola" in sample["parts"]["text"] and "Darte de baja" in sample["parts"]["text"]
    for sample in others:
        assert sample["parts"]["subject"].endswith("missed you: 15% off your next order")


def test_each_variant_has_its_own_subject_in_each_language(shop: Shop) -> None:
    samples = _by_language(shop, "coupon_offers")
    expected = {
        ("es", "direct"): "Un 20 % de descuento esta semana: tu código está dentro",
        ("other", "direct"): "20% off this week: your code is inside",
        ("es", "personal"): "te hemos guardado las mejores ofertas de la semana",
        ("other", "personal"): "we saved this week's best deals for you",
    }
    seen = set()
    for language, found in samples.items():
        for sample in found:
            subject = sample["parts"]["subject"]
            assert subject.endswith(expected[(language, sample["variant"])]), subject
            seen.add((language, sample["variant"]))
    assert seen == set(expected)
