"""The shortcuts rendering takes for the common case give what the long way gives."""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jinja2.runtime import Context

from narrowcast.render import PARTS, Templates, customer_context
from narrowcast.render.parts import _SPACES, finish, tidy_text
from narrowcast.render.sandbox import PartContext

from .conftest import CUSTOMER, Write

# Text made of what the finishing rules care about: spaces, tabs, breaks of every
# kind, no-break spaces, control characters, and a few letters.
awkward = st.text(
    alphabet=st.sampled_from(
        list(" \t\n\r\f\v\x1c\x1d\x1e\x1f\x85\u2028\u2029\xa0\u3000\x00\x07ab€")
    )
)


@given(st.one_of(awkward, st.text()))
def test_line_parts_finish_as_the_pattern_says(text: str) -> None:
    preheader = PARTS["email"][1]
    assert (preheader.kind, preheader.required) == ("line", False)
    assert finish(preheader, text, "t") == (_SPACES.sub(" ", text).strip() or None)


def _tidy_reference(text: str) -> str:
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    text = re.sub(r"(?m)^ (?=\S)", "", text)
    return text.strip()


@given(st.one_of(awkward, st.text()))
def test_tidy_text_as_the_patterns_say(text: str) -> None:
    assert tidy_text(text) == _tidy_reference(text)


def test_part_context_is_set_up_like_jinja_s(write: Write, root: Any) -> None:
    write({"a.html.j2": "{% block b %}x{% endblock %}", "a.j2": "y"})
    templates = Templates(root)
    for environment, name in ((templates.html, "a.html.j2"), (templates.plain, "a.j2")):
        template = environment.get_template(name)
        for extra in (None, {"g": 1}):
            ours = PartContext(environment, {"v": 1}, name, template.blocks, extra)
            theirs = Context(environment, {"v": 1}, name, template.blocks, extra)
            ours_vars, theirs_vars = vars(ours), vars(theirs)
            assert vars(ours_vars.pop("eval_ctx")) == vars(theirs_vars.pop("eval_ctx"))
            assert ours_vars == theirs_vars
        assert environment.context_class is PartContext


@pytest.mark.parametrize(
    "attributes",
    [{"lifestyle": "adventurer", "email": "shadowed@example.com"}, {}, None],
    ids=["dict", "empty", "none"],
)
def test_customer_context_from_a_dict_as_from_any_mapping(attributes: Any) -> None:
    row = {**CUSTOMER, "attributes": attributes}
    proxied = {
        **CUSTOMER,
        "attributes": MappingProxyType(attributes) if attributes is not None else None,
    }
    ours = customer_context(row)
    assert ours == {**customer_context(proxied), "attributes": attributes}
    assert ours["email"] == CUSTOMER["email"]  # columns win over attributes
