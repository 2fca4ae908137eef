"""Segment files: the built-in library, a user's file over it, and every mistake located.

Each broken file is written to disk and loaded as narrowcast loads it; the
error must name the file and the line, say what is wrong, and list every
problem of the file at once.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from narrowcast.segments import Compiler, RuleError, SegmentCycle
from narrowcast.segments.definitions import DefinitionError, load_definitions
from narrowcast.store import Store


def write(folder: Path, text: str, name: str = "segments.toml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        load_definitions(path)
    return caught.value.problems


def test_the_built_in_library_loads_when_there_is_no_file(tmp_path: Path) -> None:
    definitions = load_definitions(tmp_path / "segments.toml")
    assert {"vip", "cart_abandoners", "nps_promoters", "hot_intent", "lost"} <= set(
        definitions.segments
    )
    assert all(d.builtin and d.description for d in definitions.segments.values())
    assert definitions.source is None


def test_a_named_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="no such segments file"):
        load_definitions(tmp_path / "nope.toml", required=True)


def test_every_built_in_segment_checks_and_runs(store: Store) -> None:
    definitions = load_definitions(Path("/nonexistent/segments.toml"))
    from datetime import UTC, datetime

    with store.connect() as conn:
        assert definitions.problems(conn) == []
        catalog = definitions.catalog(conn)
        compiler = Compiler(datetime(2026, 1, 1, tzinfo=UTC), definitions.scores)
        for name in definitions.segments:
            assert conn.execute(compiler.query(definitions.rule(name, catalog))).all() == []


def test_a_file_adds_segments_and_overrides_built_in_ones(tmp_path: Path, store: Store) -> None:
    write(
        tmp_path,
        """
        [segments.vip]
        description = "Our own VIPs"
        where = "lifetime_value > 1000"

        [segments.madrid_vips]
        where = \"\"\"
            segment('vip')  # the macro-segment first
            and in_geo('ES/Madrid')
        \"\"\"

        [attributes]
        lifetime_value = "number"
        """,
    )
    definitions = load_definitions(tmp_path / "segments.toml")
    assert definitions.segments["vip"].builtin is False
    assert definitions.segments["vip"].description == "Our own VIPs"
    # The rule starts on the line after the opening quotes.
    assert definitions.segments["madrid_vips"].origin == f"{tmp_path / 'segments.toml'}:7"
    assert definitions.segments["lost"].builtin  # the rest of the library stays
    with store.connect() as conn:
        assert definitions.problems(conn) == []  # lifetime_value is declared, not imported


def test_builtins_false_hides_the_library(tmp_path: Path) -> None:
    write(tmp_path, "builtins = false\n[segments.mine]\nwhere = \"country == 'ES'\"\n")
    assert set(load_definitions(tmp_path / "segments.toml").segments) == {"mine"}


def test_included_files_add_segments_and_duplicates_are_refused(tmp_path: Path) -> None:
    write(tmp_path, 'include = ["more.toml"]\n[segments.a]\nwhere = "country == \'ES\'"\n')
    write(tmp_path, "[segments.b]\nwhere = \"country == 'PT'\"\n", "more.toml")
    assert {"a", "b"} <= set(load_definitions(tmp_path / "segments.toml").segments)

    write(tmp_path, "# more\n\n[segments.a]\nwhere = \"country == 'FR'\"\n", "more.toml")
    (problem,) = problems(tmp_path / "segments.toml")
    assert problem.startswith(f"{tmp_path / 'more.toml'}:3: segment 'a' is already defined at ")
    assert f"{tmp_path / 'segments.toml'}:3" in problem


def test_broken_toml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[segments.a]\nwhere = \"country == 'ES'\n")
    (problem,) = problems(path)
    assert problem.startswith(f"{path}: not valid TOML: ")
    assert "line 2" in problem


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [segments.ok]
        where = "country == 'ES'"

        [segments.typo]
        wher = "country == 'ES'"

        [scores.intent]
        hot = "7 days"

        [[scores.lead_score.rules]]
        event = "page_view"
        points = 10

        [[scores.lead_score.rules]]
        event = "page_view"
        pionts = 5
        """,
    )
    found = problems(path)
    assert f"{path}:5: unknown key 'segments.typo.wher' — did you mean 'where'?" in found
    assert f"{path}:4: 'segments.typo.where' is required" in found
    assert any(
        p.startswith(f"{path}:8: 'scores.intent.hot': '7 days' is not a duration") for p in found
    ), found
    assert (
        f"{path}:16: unknown key 'scores.lead_score.rules[1].pionts' — did you mean 'points'?"
        in found
    )
    assert len(found) == 5, found  # also: rules[1].points is required


def test_bad_segment_names_and_empty_rules(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [segments."Big Spenders"]
        where = "country == 'ES'"

        [segments.empty]
        where = "   "
        """,
    )
    found = problems(path)
    assert found[0].startswith(f"{path}:1: segment name 'Big Spenders' must be lower-case")
    assert found[1] == f"{path}:4: segment 'empty' has an empty 'where' rule"


def test_wrong_types_name_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "[attributes]\nlifetime_value = 'money'\n[segments.a]\nwhere = 3\n")
    found = problems(path)
    assert any(
        p.startswith(f"{path}:2: 'attributes.lifetime_value': Input should be") for p in found
    )
    assert f"{path}:4: 'segments.a.where': Input should be a valid string" in found


def test_rule_errors_name_the_file_and_the_line_of_the_rule(tmp_path: Path, store: Store) -> None:
    write(
        tmp_path,
        """
        [segments.fine]
        where = "country == 'ES'"

        [segments.misspelt]
        description = "x"
        where = "contry == 'ES'"

        [segments.multi]
        where = '''
            ever('order')
            and count('ordr') > 2
        '''

        [segments.loop_a]
        where = "segment('loop_b')"

        [segments.loop_b]
        where = "segment('loop_a') and segment('misspelt')"
        """,
    )
    definitions = load_definitions(tmp_path / "segments.toml")
    with store.connect() as conn:
        found = definitions.problems(conn)
    messages = {str(e.message).split("\n")[0] for e in found}
    path = tmp_path / "segments.toml"
    assert f"{path}:6, column 1: unknown attribute 'contry' — did you mean 'country'?" in messages
    # The second line of the rule is line 11 of the file; the column is within that line.
    assert f"{path}:11, column 9: unknown event type 'ordr' — did you mean 'order'?" in messages
    cycles = [e for e in found if isinstance(e, SegmentCycle)]
    # Each loop is reported where the reference that closes it is written.
    assert {c.message.split("\n")[0] for c in cycles} == {
        f"{path}:18, column 1: segments refer to each other in a loop: loop_a → loop_b → loop_a",
        f"{path}:15, column 1: segments refer to each other in a loop: loop_b → loop_a → loop_b",
    }
    assert len(found) == 4  # fine is fine; the others each once


def test_an_unknown_segment_name_suggests_the_closest(store: Store) -> None:
    definitions = load_definitions(Path("/nonexistent/segments.toml"))
    with store.connect() as conn, pytest.raises(RuleError) as caught:
        definitions.rule("vips", definitions.catalog(conn))
    assert "unknown segment 'vips' — did you mean 'vip'?" in caught.value.message


def test_the_readme_examples_load_and_check(tmp_path: Path, store: Store) -> None:
    """The segments.toml examples in README.md work as shown."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Named segments", 1)[1].split("### How rules run", 1)[0]
    blocks = [part.split("```", 1)[0] for part in section.split("```toml\n")[1:]]
    assert len(blocks) == 2
    (tmp_path / "more-segments.toml").write_text("", encoding="utf-8")
    path = write(tmp_path, "\n".join(blocks))
    definitions = load_definitions(path)
    assert definitions.scores.intent.hot == "3d"
    assert definitions.scores.lead_score.half_life == "30d"
    with store.connect() as conn:
        assert definitions.problems(conn) == []
