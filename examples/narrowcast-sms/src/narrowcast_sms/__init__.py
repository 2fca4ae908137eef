"""SMS over HTTP for narrowcast — an example third-party channel plugin."""

from narrowcast_sms.channel import SmsChannel, SmsSettings

__all__ = ["SmsChannel", "SmsSettings"]
