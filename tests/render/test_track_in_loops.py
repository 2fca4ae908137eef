"""``track()`` inside loops: Jinja passes the loop's variables to every call there."""

from __future__ import annotations

from narrowcast.render import Renderer

from .conftest import CAMPAIGN, Write, customer


def test_track_in_a_loop_signs_each_item(renderer: Renderer, write: Write) -> None:
    html = """<ul>
{% for item in segment.items %}
  {% set label = item | upper %}
  <li><a href="{{ track('https://shop.example.com/p/' ~ item) }}">{{ label }}</a></li>
{% endfor %}
</ul>"""
    write({"spring/email.subject.j2": "Hi", "spring/email.html.j2": html})
    message = renderer.render(
        "email", customer(), campaign=CAMPAIGN, segment={"items": ["boots", "hat"]}, outbox_id=4
    )
    signer = renderer.links.signer
    urls = [line.split('"')[1] for line in message["html"].splitlines() if "href" in line]
    clicks = [signer.verify_click(url.rsplit("/", 1)[1]) for url in urls]
    assert [(c.outbox_id, c.url) for c in clicks] == [
        (4, "https://shop.example.com/p/boots"),
        (4, "https://shop.example.com/p/hat"),
    ]
    assert message["text"] == f"- BOOTS ({urls[0]})\n- HAT ({urls[1]})"
