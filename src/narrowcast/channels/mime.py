"""An email ``Message`` as an RFC 5322 message: what SMTP sends and ``.eml`` files hold.

One builder for the file adapter, the SMTP adapter and the planner's
``dry-run --out``, so what an operator previews is byte for byte what a relay
would get. It adds what inbox providers expect of bulk mail:

* ``multipart/alternative`` with the text part first and the HTML part last
  (RFC 2046 §5.1.4: the last part is the preferred one);
* a ``Message-ID`` derived from the outbox id, so a resend after a crash carries
  the same id and receiving systems can tell it is the same message;
* ``List-Unsubscribe`` and ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``
  (RFC 8058; required by Gmail and Yahoo for bulk senders since 2024);
* the preheader as hidden text at the top of the HTML body — the line mail
  clients show after the subject.

https://www.rfc-editor.org/rfc/rfc5322 · https://www.rfc-editor.org/rfc/rfc8058
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, parseaddr

from narrowcast.channels.base import Message

# RFC 5322's own line limit (998) instead of the 78-column default: a header with no
# place to fold, such as List-Unsubscribe with a long signed URL, would otherwise be
# RFC 2047-encoded, which mail clients do not decode in URL headers. Bodies are still
# wrapped by their quoted-printable encoding.
_POLICY = SMTP.clone(max_line_length=998)
_BODY_TAG = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
# Zero-width joiners after the preheader keep clients from pulling body text into the preview.
_PREHEADER_PADDING = "&#847;&zwnj;&nbsp;" * 40


@dataclass(frozen=True, slots=True)
class Sender:
    """Who email comes from: ``[channels.email] sender`` and ``reply_to``."""

    address: str
    name: str | None = None
    reply_to: str | None = None

    @classmethod
    def parse(cls, value: str, reply_to: str | None = None) -> Sender:
        """``"Shop <news@shop.example>"`` or ``"news@shop.example"``; ``ValueError`` if neither."""
        name, address = parseaddr(value)
        if "@" not in address or address.startswith("@") or address.endswith("@"):
            raise ValueError(f"{value!r} is not an email address (e.g. 'Shop <news@shop.example>')")
        return cls(address=address, name=name or None, reply_to=reply_to)

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]

    @property
    def header(self) -> str:
        return formataddr((self.name, self.address)) if self.name else self.address


def message_id(message: Message, domain: str) -> str:
    """The same ``Message-ID`` for every attempt at the same outbox row."""
    campaign = hashlib.sha256(message.campaign.encode()).hexdigest()[:10]
    return f"<nc.{message.outbox_id}.{campaign}@{domain}>"


def html_with_preheader(body: str, preheader: str | None) -> str:
    """``body`` with ``preheader`` as hidden text right after ``<body>`` (or at the start)."""
    if not preheader:
        return body
    hidden = (
        '<div style="display:none;font-size:1px;line-height:1px;max-height:0;max-width:0;'
        'opacity:0;overflow:hidden;mso-hide:all" aria-hidden="true">'
        f"{html.escape(preheader)}{_PREHEADER_PADDING}</div>"
    )
    match = _BODY_TAG.search(body)
    if match is None:
        return hidden + body
    return body[: match.end()] + hidden + body[match.end() :]


def build_email(
    message: Message,
    sender: Sender,
    *,
    date: datetime | None = None,
) -> EmailMessage:
    """The RFC 5322 message for an email ``Message`` (parts ``subject``, ``html``, ``text``).

    Raises ``ValueError`` when a required part is missing or a header value would
    be malformed; adapters turn that into a ``PermanentError``.
    """
    missing = message.missing("subject", "html", "text")
    if missing:
        raise ValueError(f"email message has no {', '.join(repr(m) for m in missing)} part")
    subject = str(message.parts["subject"])
    if "\n" in subject or "\r" in subject:
        raise ValueError("the subject contains a line break")
    email = EmailMessage(policy=_POLICY)
    email["From"] = sender.header
    email["To"] = _recipient(message.to)
    if sender.reply_to:
        email["Reply-To"] = sender.reply_to
    email["Subject"] = subject
    email["Date"] = format_datetime((date or datetime.now(UTC)).astimezone(UTC))
    email["Message-ID"] = message_id(message, sender.domain)
    if message.unsubscribe_url:
        email["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
        email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    # Correlation for bounces that come back by mail (DSNs quote the original headers).
    email["X-Narrowcast-Outbox-Id"] = str(message.outbox_id)
    email["X-Narrowcast-Campaign"] = message.campaign
    email.set_content(str(message.parts["text"]))
    preheader = message.parts.get("preheader")
    email.add_alternative(
        html_with_preheader(str(message.parts["html"]), str(preheader) if preheader else None),
        subtype="html",
    )
    if message.locale:  # after set_content, which clears every Content-* header
        email["Content-Language"] = message.locale
    return email


def _recipient(to: str) -> Address | str:
    name, address = parseaddr(to)
    if "@" not in address:
        raise ValueError(f"{to!r} is not an email address")
    local, _, domain = address.rpartition("@")
    return Address(display_name=name, username=local, domain=domain)
