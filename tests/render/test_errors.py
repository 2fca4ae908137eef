"""Bad templates: every error names the template file and line, and checks collect them all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from narrowcast.errors import NarrowcastError
from narrowcast.render import (
    InvalidPart,
    MissingPart,
    Renderer,
    RenderError,
    SandboxViolation,
    TemplateFailed,
    TemplateNotFound,
    Templates,
    TemplateSyntax,
    UndefinedVariable,
    distinct,
)

from .conftest import CAMPAIGN, Write, customer


def _push(renderer: Renderer, body: str, write: Write, **kwargs: Any) -> dict[str, Any]:
    write({"spring/push.body.j2": body})
    return renderer.render("push", customer(), campaign=CAMPAIGN, **kwargs)


def _error(renderer: Renderer, body: str, write: Write, **kwargs: Any) -> RenderError:
    with pytest.raises(RenderError) as info:
        _push(renderer, body, write, **kwargs)
    return info.value


def test_every_error_is_a_narrowcast_error() -> None:
    for kind in (TemplateNotFound, MissingPart, TemplateSyntax, UndefinedVariable):
        assert issubclass(kind, NarrowcastError)
    for kind in (SandboxViolation, TemplateFailed, InvalidPart):
        assert issubclass(kind, RenderError)


def test_syntax_error(renderer: Renderer, write: Write, root: Path) -> None:
    error = _error(renderer, "Hello\n{% if customer.vip %}\nVIP\n", write)
    assert isinstance(error, TemplateSyntax)
    assert (error.template, error.line) == (f"{root}/spring/push.body.j2", 3)
    assert str(error).startswith(f"{root}/spring/push.body.j2:3: Unexpected end of template.")


def test_unclosed_expression(renderer: Renderer, write: Write, root: Path) -> None:
    error = _error(renderer, "a\nb\nHi {{ customer.first_name }\n", write)
    assert isinstance(error, TemplateSyntax)
    assert str(error).startswith(f"{root}/spring/push.body.j2:3: ")


def test_undefined_key_suggests_the_customer_s_keys(
    renderer: Renderer, write: Write, root: Path
) -> None:
    error = _error(renderer, "Hi\n{{ customer.frist_name }}!", write)
    assert isinstance(error, UndefinedVariable)
    assert error.name == "customer.frist_name"
    assert str(error) == (
        f"{root}/spring/push.body.j2:2: undefined variable 'customer.frist_name' — "
        "did you mean 'first_name'?"
    )


def test_undefined_attribute_key(renderer: Renderer, write: Write) -> None:
    error = _error(renderer, "{{ customer.lifestile }}", write)
    assert str(error).endswith("'customer.lifestile' — did you mean 'lifestyle'?")


def test_undefined_top_level_name(renderer: Renderer, write: Write, root: Path) -> None:
    error = _error(renderer, "\n\n{{ custmer.first_name }}", write)
    assert isinstance(error, UndefinedVariable)
    assert str(error) == (
        f"{root}/spring/push.body.j2:3: undefined variable 'custmer' — did you mean 'customer'?"
    )


def test_undefined_in_a_segment_mapping(renderer: Renderer, write: Write) -> None:
    error = _error(renderer, "{{ segment.lead_scor }}", write, segment={"lead_score": 3})
    assert str(error).endswith("'segment.lead_scor' — did you mean 'lead_score'?")


def test_undefined_in_a_condition(renderer: Renderer, write: Write, root: Path) -> None:
    error = _error(renderer, "x\n{% if segment.vip %}VIP{% endif %}", write)
    assert str(error).startswith(f"{root}/spring/push.body.j2:2: undefined variable")


def test_undefined_link(renderer: Renderer, write: Write) -> None:
    error = _error(renderer, "{{ links.unsubcribe }}", write)
    assert str(error).endswith("— did you mean 'unsubscribe'?")


@pytest.mark.parametrize(
    ("expression", "refused"),
    [
        ("''.__class__.__mro__", "__class__"),
        ("customer.__class__", "__class__"),
        ("track.__func__.__globals__", "__func__"),
        ("links._links", "_links"),
        ("range.__globals__", "__globals__"),
        ("segment.pop('name')", "pop"),
        ("segment.update({'x': 1})", "update"),
        ("[1].append(2)", "append"),
        ("'a' * 1000000", "100,000"),
        ("10 ** 1000", "exponent"),
    ],
)
def test_sandbox_violation(
    renderer: Renderer, write: Write, root: Path, expression: str, refused: str
) -> None:
    error = _error(renderer, f"one\ntwo\n{{{{ {expression} }}}}", write, segment={"name": "s"})
    assert isinstance(error, SandboxViolation)
    assert str(error).startswith(f"{root}/spring/push.body.j2:3: refused by the sandbox: ")
    assert refused in str(error)


def test_an_unsafe_call_is_never_executed(renderer: Renderer, write: Write) -> None:
    segment = {"name": "hot", "lead_score": 80}
    with pytest.raises(SandboxViolation):
        _push(renderer, "{{ segment.clear() }}", write, segment=segment)
    assert segment == {"name": "hot", "lead_score": 80}


def test_a_template_cannot_change_the_context_for_the_next_part(
    renderer: Renderer, write: Write
) -> None:
    write(
        {
            "spring/push.title.j2": "{% set customer = 'x' %}T",
            "spring/push.body.j2": "{{ customer.first_name }}",
        }
    )
    assert renderer.render("push", customer(), campaign=CAMPAIGN)["body"] == "Ana"


def test_runtime_error_names_the_line(renderer: Renderer, write: Write, root: Path) -> None:
    error = _error(renderer, "a\n{{ 1 // 0 }}", write)
    assert isinstance(error, TemplateFailed)
    assert (
        str(error)
        == f"{root}/spring/push.body.j2:2: ZeroDivisionError: integer division or modulo by zero"
    )


def test_error_in_an_included_template_names_that_file(
    renderer: Renderer, write: Write, root: Path
) -> None:
    write({"shared/sign.j2": "Thanks,\n{{ customer.nickname }}"})
    error = _error(renderer, "Body\n{% include 'shared/sign.j2' %}", write)
    assert str(error).startswith(f"{root}/shared/sign.j2:2: undefined variable 'customer.nickname'")


def test_include_of_a_missing_template(renderer: Renderer, write: Write, root: Path) -> None:
    error = _error(renderer, "{% include 'shared/nope.j2' %}", write)
    assert isinstance(error, TemplateNotFound)
    assert "shared/nope.j2" in str(error)


def test_unreadable_template(renderer: Renderer, write: Write, root: Path) -> None:
    write({"spring/push.body.j2": b"caf\xe9 latte"})
    with pytest.raises(TemplateNotFound) as info:
        renderer.render("push", customer(), campaign=CAMPAIGN)
    assert str(info.value) == (
        f"{root}/spring/push.body.j2: cannot read the template: it is not UTF-8 text "
        "(byte 0xe9 at offset 3)"
    )


def test_check_syntax_reports_every_problem(write: Write, root: Path) -> None:
    write(
        {
            "spring/push.body.j2": "Hi {{ custmer.first_name }}",
            "spring/email.subject.j2": "ok {{ customer.first_name }}",
            "spring/email.html.j2": "<p>\n{% for x in segment.items %}\n</p>",
            "spring/web.body.j2": "{{ 'a' }\n",
            "shared/footer.j2": "{{ whatever_the_includer_sets }}",
            "other/push.body.es.j2": b"\xff",
        }
    )
    problems = Templates(root).check_syntax()
    assert [str(p) for p in problems] == [
        f"{root}/other/push.body.es.j2: cannot read the template: it is not UTF-8 text "
        "(byte 0xff at offset 0)",
        f"{root}/spring/email.html.j2:3: Unexpected end of template. Jinja was looking for the "
        "following tags: 'endfor' or 'else'. The innermost block that needs to be closed is 'for'.",
        f"{root}/spring/push.body.j2:1: undefined variable 'custmer' — did you mean 'customer'? "
        "(templates see customer, segment, campaign, variant, links, track)",
        f"{root}/spring/web.body.j2:1: unexpected '}}'",
    ]


def test_check_syntax_of_named_templates(write: Write, root: Path) -> None:
    write({"a/push.body.j2": "{{ x", "b/push.body.j2": "fine"})
    assert len(Templates(root).check_syntax(["b/push.body.j2"])) == 0


def test_renderer_problems_collects_every_part(
    renderer: Renderer, write: Write, root: Path
) -> None:
    write(
        {
            "spring/email.subject.j2": "{{ customer.frist_name }}",
            "spring/email.preheader.j2": "{{ ''.__class__ }}",
            "spring/email.html.j2": "<p>{{ segment.cart.value | money('EURO') }}</p>",
        }
    )
    problems = renderer.problems(
        "email", customer(), campaign=CAMPAIGN, segment={"cart": {"value": 3}}
    )
    assert [type(p) for p in problems] == [
        UndefinedVariable,
        SandboxViolation,
        TemplateFailed,
        TemplateFailed,  # the text derived from the html fails the same way
    ]
    assert str(problems[3]).startswith(f"{root}/spring/email.html.j2:1: money: unknown currency")
    assert "(in the plain text derived from this html)" in str(problems[3])


def test_renderer_problems_include_missing_parts(renderer: Renderer, write: Write) -> None:
    write({"spring/email.preheader.j2": "{{ nope }}"})
    problems = renderer.problems("email", customer(), campaign=CAMPAIGN)
    assert [type(p) for p in problems] == [MissingPart, MissingPart, UndefinedVariable]


def test_distinct(renderer: Renderer, write: Write) -> None:
    write({"spring/push.body.j2": "{{ customer.frist_name }}"})
    found = []
    for name in ("Ana", "Bo", "Cy"):
        found += renderer.problems("push", customer(first_name=name), campaign=CAMPAIGN)
    assert len(found) == 3 and len(distinct(found)) == 1
