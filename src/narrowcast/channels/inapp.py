"""The ``inapp`` adapter: messages into the in-app inbox, for the HTTP API to serve to apps.

One ``inbox_messages`` row per message (customer, campaign, variant, the parts
``title``, ``body``, ``cta_label``, ``cta_url``, ``image``, expiry), with
read / clicked / dismissed instants the API fills in. See ``stored`` for the
exactly-once write.
"""

from __future__ import annotations

from typing import Any

from narrowcast.channels.base import Message, missing_parts
from narrowcast.channels.errors import PermanentError
from narrowcast.channels.stored import StoredChannel, content
from narrowcast.store.schema import inbox_messages


class InAppChannel(StoredChannel):
    """Store in-app messages in the customer's inbox."""

    name = "inapp"
    channels = frozenset({"in_app"})
    table = inbox_messages

    def row(self, message: Message) -> dict[str, Any] | PermanentError:
        missing = missing_parts(message, "title", "body")
        if missing is not None:
            return missing
        if not message.customer_id:
            return PermanentError("an in-app message needs a customer", outbox_id=message.outbox_id)
        return {
            "outbox_id": message.outbox_id,
            "customer_id": message.customer_id,
            "campaign": message.campaign,
            "variant": message.variant,
            "parts": content(message),
            "created_at": self.context.clock(),
            "expires_at": message.expires_at,
        }
