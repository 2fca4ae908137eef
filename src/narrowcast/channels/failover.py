"""Several providers behind one channel, tried in the order config.toml names them.

``[channels.email] provider = ["sendgrid", "smtp"]``: a message goes to the
first provider; if that one answers with a ``TransientError`` the message is
offered to the next. A message whose request may already have reached a
provider (``in_doubt``) is never offered to another one — that would risk a
double send — and neither is a message a provider refused permanently.

A provider that answers ``ChannelPaused`` (bad credentials) is skipped for
``pause_seconds`` and logged loudly, so the others carry the traffic meanwhile;
only when every provider is paused does the dispatcher see ``ChannelPaused``
and pause the channel.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from narrowcast.channels.base import Channel, ChannelContext, Message, NoSettings, Result
from narrowcast.channels.errors import ChannelPaused, TransientError

log = logging.getLogger(__name__)


class Failover(Channel[NoSettings]):
    """Send through ``providers`` in order, moving on when one cannot take a message now."""

    name = "failover"
    channels = frozenset[str]()

    def __init__(
        self,
        providers: Sequence[Channel[Any]],
        context: ChannelContext,
        *,
        pause_seconds: float = 300.0,
    ) -> None:
        if len(providers) < 2:
            raise ValueError("failover needs at least two providers")
        super().__init__(NoSettings(), context)
        self.providers = list(providers)
        self.max_batch = min(provider.max_batch for provider in providers)
        self.pause = timedelta(seconds=pause_seconds)
        self.paused_until: dict[str, datetime] = {}

    @property
    def label(self) -> str:
        return " → ".join(provider.name for provider in self.providers)

    async def send(self, batch: Sequence[Message]) -> list[Result]:
        results: list[Result | None] = [None] * len(batch)
        pending = list(range(len(batch)))
        last: dict[int, Result] = {}
        now = self.context.clock()
        for position, provider in enumerate(self.providers):
            final = position == len(self.providers) - 1
            if not pending:
                break
            if self.paused_until.get(provider.name, now) > now and not final:
                continue
            answers = await provider.send([batch[i] for i in pending])
            still: list[int] = []
            for index, answer in zip(pending, answers, strict=True):
                if isinstance(answer, ChannelPaused):
                    self._paused(provider, answer)
                if isinstance(answer, TransientError) and not answer.in_doubt and not final:
                    still.append(index)
                    last[index] = answer
                else:
                    results[index] = answer
            pending = still
        for index in pending:
            results[index] = last[index]
        return [result for result in results if result is not None]

    def _paused(self, provider: Channel[Any], answer: ChannelPaused) -> None:
        if provider.name not in self.paused_until or self.paused_until[provider.name] <= (
            self.context.clock()
        ):
            log.error(
                "channel provider %s refused our credentials (%s); using the next provider "
                "for %s s — fix the credentials",
                provider.name,
                answer.reason,
                self.pause.total_seconds(),
            )
        self.paused_until[provider.name] = self.context.clock() + self.pause

    async def open(self) -> None:
        """The providers are opened by ``Routes``, which shares them between channels."""

    async def close(self) -> None:
        """See ``open``."""

    def __repr__(self) -> str:
        return f"<Failover {self.label}>"
