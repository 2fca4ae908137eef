"""What adapter authors need to test against: fake providers and the adapter contract.

The fakes are real HTTP servers on 127.0.0.1 (a port the OS picks) in a
thread, validating requests the way the provider does and scriptable to
misbehave; ``ChannelContract`` is a pytest class an adapter's tests subclass.
"""

from narrowcast.testing.contract import ChannelContract
from narrowcast.testing.fcm import FakeFcm, Push
from narrowcast.testing.sendgrid import Accepted, FakeSendGrid
from narrowcast.testing.server import (
    FakeServer,
    Fault,
    Reply,
    Request,
    Reset,
    Response,
    Slow,
)
from narrowcast.testing.webhook import Delivery, FakeWebhookReceiver

__all__ = [
    "ChannelContract",
    "Accepted",
    "FakeFcm",
    "FakeSendGrid",
    "Delivery",
    "FakeServer",
    "FakeWebhookReceiver",
    "Fault",
    "Push",
    "Reply",
    "Request",
    "Reset",
    "Response",
    "Slow",
]
