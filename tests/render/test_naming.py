"""Which file renders a part: locale fallback, A/B variant folders, explicit paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from narrowcast.render import MissingPart, Renderer, RenderError, TemplateNotFound, locale_chain
from narrowcast.render.naming import conventional_names, explicit_names, normalise_locale

from .conftest import CAMPAIGN, Write, customer


@pytest.mark.parametrize(
    ("locale", "chain"),
    [
        ("es-ES", ("es-ES", "es", None)),
        ("es_es", ("es-ES", "es", None)),
        ("es", ("es", None)),
        ("zh-hant-tw", ("zh-Hant-TW", "zh-Hant", "zh", None)),
        ("es-419", ("es-419", "es", None)),
        (None, (None,)),
        ("", (None,)),
        ("not a locale", (None,)),
    ],
)
def test_locale_chain(locale: str | None, chain: tuple[str | None, ...]) -> None:
    assert locale_chain(locale) == chain


def test_normalise_locale() -> None:
    assert normalise_locale("PL_pl") == "pl-PL"


def test_conventional_names() -> None:
    assert conventional_names("spring", "email", "subject", variant="b", locale="es-ES") == [
        "spring/b/email.subject.es-ES.j2",
        "spring/b/email.subject.es.j2",
        "spring/b/email.subject.j2",
        "spring/email.subject.es-ES.j2",
        "spring/email.subject.es.j2",
        "spring/email.subject.j2",
    ]


def test_explicit_names() -> None:
    assert explicit_names("shared/subject.j2", locale="es-MX") == [
        "shared/subject.es-MX.j2",
        "shared/subject.es.j2",
        "shared/subject.j2",
    ]
    assert explicit_names("plain", locale="pl") == ["plain.pl", "plain"]


def _body(renderer: Renderer, locale: str | None, variant: str | None = None) -> str:
    message = renderer.render("push", customer(locale=locale), campaign=CAMPAIGN, variant=variant)
    return str(message["body"])


def test_locale_fallback(renderer: Renderer, write: Write) -> None:
    write(
        {
            "spring/push.body.j2": "English",
            "spring/push.body.es.j2": "Español",
            "spring/push.body.es-MX.j2": "Español de México",
        }
    )
    assert _body(renderer, "es-MX") == "Español de México"
    assert _body(renderer, "es-ES") == "Español"
    assert _body(renderer, "es") == "Español"
    assert _body(renderer, "pl-PL") == "English"
    assert _body(renderer, None) == "English"


def test_variant_folder_beats_the_campaign(renderer: Renderer, write: Write) -> None:
    write(
        {
            "spring/push.title.j2": "Campaign title",
            "spring/push.body.j2": "Campaign body",
            "spring/push.body.es.j2": "Cuerpo de la campaña",
            "spring/b/push.body.j2": "Variant B body",
            "spring/b/push.body.es.j2": "Cuerpo de la variante B",
        }
    )
    message = renderer.render("push", customer(locale="en"), campaign=CAMPAIGN, variant="b")
    assert (message["title"], message["body"]) == ("Campaign title", "Variant B body")
    assert _body(renderer, "es-ES", "b") == "Cuerpo de la variante B"
    assert _body(renderer, "es-ES", "a") == "Cuerpo de la campaña"  # no folder for a
    assert _body(renderer, "es-ES") == "Cuerpo de la campaña"


def test_a_variant_overrides_every_translation(renderer: Renderer, write: Write) -> None:
    # The variant's plain file beats the campaign's Spanish one: it is the variant's content.
    write({"spring/push.body.es.j2": "Campaña", "spring/b/push.body.j2": "Variant B"})
    assert _body(renderer, "es-ES", "b") == "Variant B"


def test_explicit_paths(renderer: Renderer, write: Write) -> None:
    write(
        {
            "spring/push.body.j2": "conventional",
            "shared/offer.j2": "shared offer",
            "shared/offer.es.j2": "oferta compartida",
        }
    )
    paths = {"body": "shared/offer.j2"}
    for locale, expected in (("es-ES", "oferta compartida"), ("en-GB", "shared offer")):
        message = renderer.render("push", customer(locale=locale), campaign=CAMPAIGN, paths=paths)
        assert message["body"] == expected


def test_explicit_path_that_does_not_exist(renderer: Renderer, write: Write, root: Path) -> None:
    write({"spring/push.body.j2": "conventional"})
    with pytest.raises(TemplateNotFound) as info:
        renderer.render("push", customer(), campaign=CAMPAIGN, paths={"body": "shared/gone.j2"})
    assert str(info.value) == (
        "push body: the campaign names the template 'shared/gone.j2', which does not exist — "
        f"looked for {root}/shared/gone.es-ES.j2, {root}/shared/gone.es.j2, {root}/shared/gone.j2"
    )


@pytest.mark.parametrize("path", ["../secrets.j2", "/etc/passwd", "a//b.j2", "./x.j2"])
def test_explicit_paths_stay_inside_the_folder(renderer: Renderer, path: str) -> None:
    with pytest.raises(RenderError, match="relative to the templates folder|cannot contain"):
        renderer.render("push", customer(), campaign=CAMPAIGN, paths={"body": path})


def test_explicit_path_for_an_unknown_part(renderer: Renderer, write: Write) -> None:
    write({"spring/push.body.j2": "b"})
    with pytest.raises(RenderError, match=r"push has no part 'titel' — did you mean 'title'\?"):
        renderer.render("push", customer(), campaign=CAMPAIGN, paths={"titel": "x.j2"})


@pytest.mark.parametrize(("campaign", "variant"), [("../x", None), ("spring", "a/b")])
def test_folder_names_are_checked(renderer: Renderer, campaign: str, variant: str | None) -> None:
    with pytest.raises(RenderError, match="cannot be a template folder"):
        renderer.render("push", customer(), campaign={"name": campaign}, variant=variant)


def test_missing_required_part_lists_every_name_tried(
    renderer: Renderer, write: Write, root: Path
) -> None:
    write({"spring/email.html.j2": "<p>x</p>"})
    with pytest.raises(MissingPart) as info:
        renderer.render("email", customer(locale="es-ES"), campaign=CAMPAIGN, variant="b")
    assert str(info.value) == (
        "spring: email needs a subject template — looked for "
        f"{root}/spring/b/email.subject.es-ES.j2, {root}/spring/b/email.subject.es.j2, "
        f"{root}/spring/b/email.subject.j2, {root}/spring/email.subject.es-ES.j2, "
        f"{root}/spring/email.subject.es.j2, {root}/spring/email.subject.j2"
    )


def test_text_template_only_when_as_specific_as_the_html(renderer: Renderer, write: Write) -> None:
    write(
        {
            "spring/email.subject.j2": "s",
            "spring/email.html.j2": "<p>campaign html</p>",
            "spring/email.text.j2": "campaign text",
            "spring/email.html.es.j2": "<p>html en español</p>",
            "spring/b/email.html.j2": "<p>variant html</p>",
        }
    )

    def text(locale: str, variant: str | None = None) -> str:
        person = customer(locale=locale)
        message = renderer.render("email", person, campaign=CAMPAIGN, variant=variant)
        return str(message["text"])

    assert text("en-GB") == "campaign text"
    assert text("es-ES") == "html en español"  # the English text does not match it: derived
    assert text("en-GB", "b") == "variant html"


def test_text_is_derived_from_an_explicit_html_template(renderer: Renderer, write: Write) -> None:
    write(
        {
            "spring/email.subject.j2": "s",
            "spring/email.text.j2": "conventional text that does not match",
            "shared/fancy.j2": "<h1>Fancy</h1><p>{{ customer.first_name }} &amp; co</p>",
        }
    )
    message = renderer.render(
        "email", customer(), campaign=CAMPAIGN, paths={"html": "shared/fancy.j2"}
    )
    assert message["html"] == "<h1>Fancy</h1><p>Ana &amp; co</p>"
    assert message["text"] == "Fancy\n\nAna & co"
