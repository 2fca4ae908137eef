"""Campaign files: what loads, and every mistake reported with its file, line and field."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from narrowcast.campaigns import (
    CampaignError,
    UnknownCampaign,
    campaign_paths,
    load_campaigns,
    next_occurrence,
    occurrences,
)
from narrowcast.campaigns.model import reentry_period

GOOD = """
name = "winback"
description = "Bring lost customers back"
segment = "lost"
cron = "0 9 * * MON"
timezone = "Europe/Madrid"
channel = ["email", "push"]
holdout = 0.1

[[variants]]
name = "coupon"
weight = 2

[[variants]]
name = "plain"
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def problems_of(folder: Path, text: str) -> list[str]:
    path = write(folder, "broken.toml", text)
    return load_campaigns([path]).problems


def test_a_good_file_loads_with_its_defaults(tmp_path: Path) -> None:
    loaded = load_campaigns([write(tmp_path, "winback.toml", GOOD)])
    assert loaded.problems == []
    campaign = loaded.get("winback").campaign
    assert campaign.channel == ("email", "push")
    assert campaign.purpose == "marketing" and campaign.enabled and campaign.priority == 0
    assert campaign.send_time == "now" and campaign.max_per_customer == "once"
    assert [v.name for v in campaign.variants] == ["coupon", "plain"]
    assert campaign.schedule_kind == "cron" and not campaign.triggered


def test_segments_toml_is_not_a_campaign(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", GOOD)
    write(tmp_path, "segments.toml", "[segments.x]\nwhere = 'True'\n")
    write(tmp_path, "more.toml", "[segments.y]\nwhere = 'True'\n")
    assert campaign_paths(tmp_path, {tmp_path / "more.toml"}) == [tmp_path / "a.toml"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'name = "x"\nsegment = "lost"\ncron = "0 9 * * MON"\nchanel = ["email"]\n',
            ":4: unknown key 'chanel' — did you mean 'channel'?",
        ),
        ('name = "x"\nsegment = "lost"\n', ":1: give exactly one schedule"),
        (
            'name = "x"\nsegment = "lost"\ncron = "0 9 * * MON"\nevery = "6h"\n',
            "give exactly one schedule: cron, every, at, on_enter or on_event (found cron, every)",
        ),
        (
            'name = "x"\nsegment = "lost"\ncron = "0 25 * * *"\n',
            ":3: 'cron': '0 25 * * *' is not a cron expression",
        ),
        (
            'name = "x"\nsegment = "lost"\nevery = "6 hours"\n',
            ":3: 'every': '6 hours' is not a duration",
        ),
        ('name = "x"\nsegment = "lost"\nevery = "6h"\nsend_time = "9:30pm"\n', ":4: 'send_time'"),
        (
            'name = "x"\nsegment = "lost"\nevery = "6h"\nwindow = "09:00-09:00"\n',
            "is empty: start and end are the same time",
        ),
        (
            'name = "x"\nsegment = "lost"\nevery = "6h"\nholdout = 0.7\n',
            ":4: 'holdout': Input should be less than or equal to 0.5",
        ),
        (
            'name = "x"\nsegment = "lost"\nevery = "6h"\n[[variants]]\nname = "a"\nweight = 0\n',
            ":6: 'variants[0].weight': Input should be greater than 0",
        ),
        (
            'name = "x"\nsegment = "lost"\nevery = "6h"\nchannel = ["emial"]\n',
            ":4: 'channel': unknown channel 'emial' — did you mean 'email'?",
        ),
        (
            'name = "x"\nsegment = "lost"\nevery = "6h"\ntimezone = "Madrid"\n',
            "'Madrid' is not an IANA time zone",
        ),
        (
            'name = "x"\nsegment = "lost"\nevery = "6h"\nmax_per_customer = "twice"\n',
            'write "once" or "every 30d"',
        ),
        (
            'name = "x"\nsegment = "lost"\nevery = "6h"\ndelay = "1h"\n',
            "delay and unless belong to triggers",
        ),
        ('name = "Win Back"\nsegment = "lost"\nevery = "6h"\n', ":1: 'name'"),
        (
            'name = "x"\nsegment = "lost"\nat = 2026-12-24T09:00:00\n',
            "give the time zone, e.g. 2026-12-24T09:00:00+01:00",
        ),
        (
            'name = "x"\nsegment = "lost"\nevery = "6h"\nholdout = "ten"\n',
            ":4: 'holdout': Input should be a valid number",
        ),
        (
            'name = "x"\nsegment = "lost"\nevery = "6h"\n[[variants]]\nname = "a"\n[[variants]]\n'
            'name = "a"\n',
            "two variants have the same name",
        ),
        (
            'name = "x"\nsegment = "lost"\nevery = "6h"\n[templates.emial]\nsubject = "x.j2"\n',
            "'templates': unknown channel 'emial' — did you mean 'email'?",
        ),
        ('name = "x"\nsegment = "lost"\nwhere = "True"\nevery = "6h"\n', "not both"),
        ('name = "x"\nevery = "6h"\n', "only triggered campaigns may leave it out"),
        (
            'name = "x"\nsegment = "lost"\nevery = "6h"\nattribution_window = "3d"\n',
            "attribution_window needs a goal",
        ),
        (
            'name = "x"\nsegment = "lost"\nevery = "6h"\nstart = 2026-01-02T00:00:00Z\n'
            "end = 2026-01-01T00:00:00Z\n",
            "start must be before end",
        ),
        ('name = "x"\nsegment = "lost\n', "not valid TOML"),
    ],
)
def test_mistakes_name_the_file_line_and_field(tmp_path: Path, text: str, expected: str) -> None:
    found = problems_of(tmp_path, text)
    assert found, "the file should have been refused"
    assert all(p.startswith(str(tmp_path / "broken.toml")) for p in found), found
    assert any(expected in p for p in found), found


def test_one_broken_file_does_not_hide_the_others(tmp_path: Path) -> None:
    good = write(tmp_path, "good.toml", GOOD)
    bad = write(tmp_path, "bad.toml", 'name = "bad"\n')
    twin = write(tmp_path, "twin.toml", GOOD)
    loaded = load_campaigns([bad, good, twin])
    assert list(loaded.files) == ["winback"]
    assert len(loaded.problems) == 2
    assert any("campaign 'winback' is already defined in" in p for p in loaded.problems)
    with pytest.raises(CampaignError):
        loaded.raise_problems()
    with pytest.raises(UnknownCampaign, match="no campaign named 'winbak' — did you mean"):
        loaded.get("winbak")


def test_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    latin = tmp_path / "latin.toml"
    latin.write_bytes('name = "caf\xe9"\n'.encode("latin-1"))
    loaded = load_campaigns([latin, tmp_path / "missing.toml"])
    assert any("not UTF-8" in p for p in loaded.problems)
    assert any("cannot read the campaign file" in p for p in loaded.problems)


def test_cron_occurrences_in_the_campaign_time_zone(tmp_path: Path) -> None:
    campaign = load_campaigns([write(tmp_path, "w.toml", GOOD)]).get("winback").campaign
    # Mondays 09:00 in Madrid: 08:00 UTC in winter, 07:00 UTC in summer.
    start = datetime(2026, 3, 20, tzinfo=UTC)
    found = list(occurrences(campaign, start, datetime(2026, 4, 7, tzinfo=UTC)))
    assert found == [
        datetime(2026, 3, 23, 8, tzinfo=UTC),
        datetime(2026, 3, 30, 7, tzinfo=UTC),
        datetime(2026, 4, 6, 7, tzinfo=UTC),
    ]


def test_standard_cron_sunday_is_zero(tmp_path: Path) -> None:
    text = 'name = "s"\nsegment = "lost"\ncron = "30 10 * * 0"\n'
    campaign = load_campaigns([write(tmp_path, "s.toml", text)]).get("s").campaign
    following = next_occurrence(campaign, datetime(2026, 12, 1, tzinfo=UTC))  # a Tuesday
    assert following == datetime(2026, 12, 6, 10, 30, tzinfo=UTC)  # Sunday


def test_every_and_at_and_bounds(tmp_path: Path) -> None:
    text = (
        'name = "e"\nsegment = "lost"\nevery = "6h"\n'
        "start = 2026-01-01T01:00:00Z\nend = 2026-01-02T00:00:00Z\n"
    )
    campaign = load_campaigns([write(tmp_path, "e.toml", text)]).get("e").campaign
    found = list(
        occurrences(campaign, datetime(2025, 12, 31, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
    )
    assert [f.hour for f in found] == [1, 7, 13, 19]  # counted from start, until end
    once = 'name = "o"\nsegment = "lost"\nat = 2026-12-24T09:00:00+01:00\n'
    campaign = load_campaigns([write(tmp_path, "o.toml", once)]).get("o").campaign
    assert next_occurrence(campaign, datetime(2026, 12, 1, tzinfo=UTC)) == datetime(
        2026, 12, 24, 8, tzinfo=UTC
    )
    assert next_occurrence(campaign, datetime(2026, 12, 25, tzinfo=UTC)) is None


def test_reentry_periods() -> None:
    assert reentry_period("once") is None
    assert reentry_period("every 30d").days == 30  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        reentry_period("every day")


def test_the_readme_campaign_example_loads(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### The file", 1)[1]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    loaded = load_campaigns([write(tmp_path, "winback_lost.toml", example)])
    assert loaded.problems == []
    campaign = loaded.get("winback_lost").campaign
    assert campaign.send_time == "auto" and campaign.max_per_customer == "every 30d"
    assert [v.weight for v in campaign.variants] == [1.0, 2.0]
