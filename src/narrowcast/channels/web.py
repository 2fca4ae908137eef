"""The ``web`` adapter: targeted web messages, for the browser snippet to fetch and show.

A message is for one customer (shown once the snippet knows who the visitor
is) or, with an empty ``customer_id``, for any visitor its targeting matches:
new or returning visitor, referrer class (search, social, email, direct; an
empty list is any), and a page path glob. ``placement`` is banner, modal or
toast; ``survey`` is ``None`` or ``"nps"``. See ``stored`` for the
exactly-once write.
"""

from __future__ import annotations

from typing import Any

from narrowcast.channels.base import Message, missing_parts
from narrowcast.channels.errors import PermanentError
from narrowcast.channels.stored import StoredChannel, content
from narrowcast.store.schema import PLACEMENTS, SURVEYS, VISITORS, web_messages

REFERRERS = ("search", "social", "email", "direct")


class WebChannel(StoredChannel):
    """Store targeted web messages."""

    name = "web"
    channels = frozenset({"web"})
    table = web_messages

    def row(self, message: Message) -> dict[str, Any] | PermanentError:
        missing = missing_parts(message, "title", "body")
        if missing is not None:
            return missing
        parts = message.parts
        targeting = parts.get("targeting") or {}
        placement = parts.get("placement") or "banner"
        survey = parts.get("survey")
        visitor = targeting.get("visitor", "any") if isinstance(targeting, dict) else None
        referrers = targeting.get("referrer") or [] if isinstance(targeting, dict) else None
        path = targeting.get("path") or "*" if isinstance(targeting, dict) else None
        problems = []
        if placement not in PLACEMENTS:
            problems.append(f"placement {placement!r} is not one of {', '.join(PLACEMENTS)}")
        if survey is not None and survey not in SURVEYS:
            problems.append(f"survey {survey!r} is not one of {', '.join(SURVEYS)} or None")
        if visitor not in VISITORS:
            problems.append(f"targeting.visitor {visitor!r} is not one of {', '.join(VISITORS)}")
        if not isinstance(referrers, list) or any(r not in REFERRERS for r in referrers):
            problems.append(f"targeting.referrer {referrers!r} must be a list of {REFERRERS}")
        if not isinstance(path, str) or not path.startswith(("/", "*")) or len(path) > 500:
            problems.append(f"targeting.path {path!r} must be a path glob like /products/* or *")
        if problems:
            return PermanentError(
                f"web message of campaign {message.campaign!r}: " + "; ".join(problems),
                outbox_id=message.outbox_id,
            )
        return {
            "outbox_id": message.outbox_id,
            "customer_id": message.customer_id or None,
            "campaign": message.campaign,
            "variant": message.variant,
            "placement": placement,
            "visitor": visitor,
            "referrers": referrers,
            "path": path,
            "survey": survey,
            "parts": content(message),
            "created_at": self.context.clock(),
            "expires_at": message.expires_at,
        }
