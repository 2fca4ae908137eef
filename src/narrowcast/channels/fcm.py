"""The ``fcm`` adapter: push through Firebase Cloud Messaging (HTTP v1) with firebase-admin.

https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages/send ·
https://firebase.google.com/docs/cloud-messaging/error-codes

A batch (at most 500, firebase-admin's limit) goes out with
``messaging.send_each_async``: one HTTP v1 request per token, concurrently, on
firebase-admin's own pooled httpx client, authorised by the service account
named in config (an OAuth2 access token from its ``token_uri``).

Each message carries the outbox id as its collapse key (Android
``collapse_key``, APNs ``apns-collapse-id``, Web Push ``Topic``) and in its
data, so a resend after a crash replaces the notification instead of showing
it twice. The 4096-byte payload limit (notification + data) is checked before
sending.

Two things firebase-admin does not let us configure, and which we set on its
messaging service when the channel opens (checked, so an upgrade that renames
them fails loudly in the tests): the FCM URL (``base_url``, for a local fake)
and its httpx client's retry policy — it would retry 500 / 503 up to four
times with back-off, and adapters must not retry or sleep (the dispatcher
owns that). Token refreshes, which google-auth does with a blocking HTTP call,
are run in a thread before each batch.

Errors: ``UnregisteredError`` and an invalid token → permanent, suppressed
(the dispatcher invalidates the token in the store); ``QuotaExceededError``,
``UnavailableError``, ``InternalError``, timeouts → transient (honouring
``Retry-After``); ``SenderIdMismatchError``, ``ThirdPartyAuthError`` and a
refused OAuth token → ``ChannelPaused``; any other invalid argument →
permanent.
"""

from __future__ import annotations

import asyncio
import json
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import firebase_admin
import httpx
from firebase_admin import _http_client, credentials, exceptions, messaging
from firebase_admin._retry import HttpxRetry
from google.auth.exceptions import RefreshError, TransportError
from google.auth.transport.requests import Request as GoogleRequest

from narrowcast.channels.base import (
    Channel,
    ChannelContext,
    Message,
    Receipt,
    Result,
    check_batch,
    missing_parts,
)
from narrowcast.channels.errors import (
    ChannelConfigError,
    ChannelPaused,
    PermanentError,
    TransientError,
)
from narrowcast.channels.http import retry_after, short, transport_failure
from narrowcast.channels.settings import FcmSettings

MAX_PAYLOAD_BYTES = 4096
# Refresh the access token this long before it expires, in a thread.
_TOKEN_MARGIN = timedelta(minutes=5)


class FcmChannel(Channel[FcmSettings]):
    """Push notifications through FCM HTTP v1."""

    name = "fcm"
    channels = frozenset({"push"})
    settings_model = FcmSettings

    def __init__(self, settings: FcmSettings, context: ChannelContext) -> None:
        super().__init__(settings, context)
        self.max_batch = settings.max_batch
        self._app: firebase_admin.App | None = None
        self._credential: Any = None

    async def open(self) -> None:
        if self._app is not None:
            return
        settings, where = self.settings, "channels.providers.fcm"
        if settings.credentials_file_env is not None:
            path = self.context.path(
                self.context.secret(f"{where}.credentials_file_env", settings.credentials_file_env)
            )
        elif settings.credentials_file is not None:
            path = self.context.path(settings.credentials_file)
        else:
            raise ChannelConfigError(
                f"{self.context.config_file or 'config.toml'}: [channels.providers.fcm] needs "
                "'credentials_file' (a service-account JSON file) or 'credentials_file_env'"
            )
        try:
            certificate = credentials.Certificate(str(path))
        except (OSError, ValueError) as exc:
            raise ChannelConfigError(
                f"{self.context.config_file or 'config.toml'}: '{where}.credentials_file': "
                f"{path} is not a readable service-account file: {exc}"
            ) from exc
        project = settings.project_id or certificate.project_id
        app = firebase_admin.initialize_app(
            certificate,
            {"projectId": project, "httpTimeout": settings.timeout},
            name=f"narrowcast-fcm-{id(self)}",
        )
        service = messaging._get_messaging_service(app)
        for attribute in ("_fcm_url", "_async_client", "_credential"):
            if not hasattr(service, attribute):
                raise RuntimeError(
                    f"firebase-admin {firebase_admin.__version__} has no messaging service "
                    f"attribute {attribute}; the fcm adapter needs updating"
                )
        base = settings.base_url.rstrip("/")
        service._fcm_url = f"{base}/v1/projects/{project}/messages:send"
        await service._async_client.aclose()
        service._async_client = _http_client.HttpxAsyncClient(
            credential=service._credential,
            timeout=settings.timeout,
            retry_config=HttpxRetry(max_retries=0),
            http2=base.startswith("https://"),
        )
        self._app = app
        self._credential = service._credential

    async def close(self) -> None:
        app, self._app = self._app, None
        if app is None:
            return
        service = messaging._get_messaging_service(app)
        await service._async_client.aclose()
        # delete_app closes the service with asyncio.run(), which needs a thread of its own.
        await asyncio.to_thread(firebase_admin.delete_app, app)

    async def send(self, batch: Sequence[Message]) -> list[Result]:
        check_batch(self, batch)
        if self._app is None:
            raise RuntimeError("FcmChannel.send before open()")
        results: list[Result | None] = [None] * len(batch)
        ready: list[tuple[int, messaging.Message]] = []
        for index, message in enumerate(batch):
            built = self._build(message)
            if isinstance(built, PermanentError):
                results[index] = built
            else:
                ready.append((index, built))
        if ready:
            refused = await self._token_problem()
            if refused is not None:
                for index, _ in ready:
                    results[index] = refused(batch[index].outbox_id)
            else:
                response = await messaging.send_each_async(
                    [m for _, m in ready], dry_run=self.settings.dry_run, app=self._app
                )
                for (index, _), answer in zip(ready, response.responses, strict=True):
                    outbox_id = batch[index].outbox_id
                    if answer.success:
                        results[index] = Receipt(outbox_id, self.name, answer.message_id)
                    else:
                        results[index] = self._classify(answer.exception, outbox_id)
        final = [r for r in results if r is not None]
        paused = next((r for r in final if isinstance(r, ChannelPaused)), None)
        if paused is not None:
            return [
                r
                if isinstance(r, Receipt | PermanentError)
                else ChannelPaused(paused.reason, outbox_id=r.outbox_id)
                for r in final
            ]
        return final

    # --- building ------------------------------------------------------------------------

    def _build(self, message: Message) -> messaging.Message | PermanentError:
        missing = missing_parts(message, "title", "body")
        if missing is not None:
            return missing
        if not message.to:
            return PermanentError(
                "push message without a device token", outbox_id=message.outbox_id, suppress=False
            )
        parts = message.parts
        link = parts.get("link")
        data = {str(k): str(v) for k, v in (parts.get("data") or {}).items()}
        data.update({"outbox_id": str(message.outbox_id), "campaign": message.campaign})
        if link:
            data["link"] = str(link)
        collapse = str(message.outbox_id)
        ttl: timedelta | None = None
        apns_headers = {"apns-collapse-id": collapse}
        webpush_headers = {"Topic": f"nc{collapse}"[:32]}
        if message.expires_at is not None:
            ttl = max(timedelta(0), message.expires_at - self.context.clock())
            apns_headers["apns-expiration"] = str(
                int(message.expires_at.astimezone(UTC).timestamp())
            )
            webpush_headers["TTL"] = str(int(ttl.total_seconds()))
        try:
            with warnings.catch_warnings():
                # firebase-admin 7.7 prefers installation ids (``fid``); the store keeps FCM
                # registration tokens, which HTTP v1 still takes as ``token``.
                warnings.filterwarnings("ignore", "Message.token is deprecated", DeprecationWarning)
                built = messaging.Message(
                    token=message.to,
                    notification=messaging.Notification(
                        title=str(parts["title"]),
                        body=str(parts["body"]),
                        image=str(parts["image"]) if parts.get("image") else None,
                    ),
                    data=data,
                    android=messaging.AndroidConfig(collapse_key=collapse, ttl=ttl),
                    apns=messaging.APNSConfig(headers=apns_headers),
                    webpush=messaging.WebpushConfig(
                        headers=webpush_headers,
                        fcm_options=messaging.WebpushFCMOptions(link=str(link))
                        if isinstance(link, str) and link.startswith("https://")
                        else None,
                    ),
                )
            encoded = messaging._MessagingService.encode_message(built)
        except (ValueError, TypeError) as exc:
            return PermanentError(f"fcm: {exc}", outbox_id=message.outbox_id)
        payload = {key: encoded[key] for key in ("notification", "data") if key in encoded}
        size = len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode())
        if size > MAX_PAYLOAD_BYTES:
            return PermanentError(
                f"fcm: the payload (notification + data) is {size:,} bytes; FCM allows "
                f"{MAX_PAYLOAD_BYTES:,}",
                outbox_id=message.outbox_id,
            )
        return built

    # --- credentials ----------------------------------------------------------------------

    async def _token_problem(self) -> Any:
        """``None`` when the access token is fresh, else a maker of the batch's result."""
        credential = self._credential
        expiry = getattr(credential, "expiry", None)
        # google-auth keeps expiry as naive UTC and judges it by the real clock, so do we.
        now = datetime.now(UTC).replace(tzinfo=None)
        if credential.token and expiry is not None and expiry - now > _TOKEN_MARGIN:
            return None
        try:
            await asyncio.to_thread(credential.refresh, GoogleRequest())
        except RefreshError as exc:
            reason = (
                f"fcm: the service account's token endpoint refused it: {exc} — check "
                "channels.providers.fcm.credentials_file"
            )
            return lambda outbox_id: ChannelPaused(reason, outbox_id=outbox_id)
        except TransportError as exc:
            reason = f"fcm: cannot reach the OAuth2 token endpoint: {exc}"
            return lambda outbox_id: TransientError(reason, outbox_id=outbox_id)
        return None

    # --- reading the answer -----------------------------------------------------------------

    def _classify(self, exc: exceptions.FirebaseError | None, outbox_id: int) -> Result:
        if exc is None:
            return TransientError("fcm: failed without an error", outbox_id=outbox_id)
        cause = exc.cause
        if isinstance(cause, httpx.HTTPError) and not isinstance(cause, httpx.HTTPStatusError):
            return transport_failure(cause, outbox_id=outbox_id, provider="fcm")
        response = exc.http_response
        said = f"fcm: {type(exc).__name__}: {short(str(exc))}"
        wait = (
            retry_after(response.headers, self.context.clock())
            if isinstance(response, httpx.Response)
            else None
        )
        if isinstance(exc, messaging.UnregisteredError):
            return PermanentError(said, outbox_id=outbox_id, suppress=True)
        if isinstance(exc, messaging.SenderIdMismatchError | messaging.ThirdPartyAuthError):
            return ChannelPaused(
                f"{said} — the credentials do not match this app's FCM sender, or APNs / Web Push "
                "credentials are missing in the Firebase project",
                outbox_id=outbox_id,
            )
        if isinstance(exc, exceptions.UnauthenticatedError | exceptions.PermissionDeniedError):
            return ChannelPaused(
                f"{said} — check channels.providers.fcm.credentials_file and project_id",
                outbox_id=outbox_id,
            )
        if isinstance(exc, exceptions.InvalidArgumentError):
            return PermanentError(said, outbox_id=outbox_id, suppress=_token_invalid(exc))
        if isinstance(
            exc,
            messaging.QuotaExceededError
            | exceptions.ResourceExhaustedError
            | exceptions.UnavailableError
            | exceptions.InternalError
            | exceptions.DeadlineExceededError,
        ):
            return TransientError(
                said,
                outbox_id=outbox_id,
                retry_after=wait,
                in_doubt=isinstance(exc, exceptions.DeadlineExceededError),
            )
        if isinstance(exc, exceptions.NotFoundError | exceptions.FailedPreconditionError):
            return PermanentError(said, outbox_id=outbox_id)
        return TransientError(said, outbox_id=outbox_id, retry_after=wait)


def _token_invalid(exc: exceptions.FirebaseError) -> bool:
    """An INVALID_ARGUMENT about the registration token (not about the payload)."""
    if "registration token" in str(exc).lower():
        return True
    response = exc.http_response
    if not isinstance(response, httpx.Response):
        return False
    try:
        details = response.json().get("error", {}).get("details", [])
    except ValueError:
        return False
    for detail in details:
        for violation in detail.get("fieldViolations", []) if isinstance(detail, dict) else []:
            if str(violation.get("field", "")).startswith("message.token"):
                return True
    return False
