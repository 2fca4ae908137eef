"""A fake FCM HTTP v1 endpoint with its own OAuth2 token endpoint, for firebase-admin.

``write_service_account(path)`` writes a service-account file whose key the fake
holds and whose ``token_uri`` points at the fake, so firebase-admin and
google-auth run their real code — sign a JWT, trade it for an access token,
send with it — with no network and no Google credentials.

``POST /token`` checks the JWT-bearer grant's signature and audience and hands
out bearer tokens; ``POST /v1/projects/{id}/messages:send`` checks the token,
the project, the message (exactly one target, string data values, the
4096-byte payload limit) and answers with FCM's documented error bodies:
https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt

from narrowcast.testing.server import FakeServer, Request, Response

_SEND = re.compile(r"^/v1/projects/([^/]+)/messages:send$")
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_:\-]{20,4096}$")
_GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
_FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
_STATUS = {
    400: ("INVALID_ARGUMENT", "INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR", "Auth error from APNS or Web Push Service"),
    403: ("PERMISSION_DENIED", "SENDER_ID_MISMATCH", "SenderId mismatch"),
    404: ("NOT_FOUND", "UNREGISTERED", "Requested entity was not found."),
    429: ("RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "Quota exceeded for quota metric."),
    500: ("INTERNAL", "INTERNAL", "Internal error encountered."),
    503: ("UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable."),
}


def fcm_error(status: int, message: str | None = None, code: str | None = None) -> Response:
    """FCM's error body: ``{"error": {code, message, status, details: [FcmError]}}``."""
    canonical, default_code, default_message = _STATUS.get(
        status, ("UNKNOWN", "UNSPECIFIED_ERROR", "Unknown error")
    )
    error = {
        "code": status,
        "message": message or default_message,
        "status": canonical,
        "details": [{"@type": _FCM_ERROR, "errorCode": code or default_code}],
    }
    return Response.json(status, {"error": error})


@dataclass(frozen=True, slots=True)
class Push:
    """One message FCM accepted."""

    name: str
    message: dict[str, Any]
    validate_only: bool

    @property
    def token(self) -> str:
        return str(self.message.get("token", ""))

    @property
    def outbox_id(self) -> int:
        return int(self.message.get("data", {}).get("outbox_id", 0))


class FakeFcm(FakeServer):
    """FCM HTTP v1 ``messages:send`` plus an OAuth2 token endpoint."""

    unscripted = ("/token",)

    def __init__(self, project_id: str = "narrowcast-test") -> None:
        super().__init__()
        self.project_id = project_id
        self.key = _service_account_key()
        self.key_id = "fake-key-1"
        self.accepted: list[Push] = []
        self.unregistered: set[str] = set()
        """Tokens FCM says are no longer registered (404 UNREGISTERED)."""
        self.mismatched: set[str] = set()
        """Tokens that belong to another sender (403 SENDER_ID_MISMATCH)."""
        self.revoked = False
        """When true the token endpoint refuses the service account (invalid_grant)."""
        self.tokens_issued = 0
        self._tokens: set[str] = set()
        self._serial = itertools.count(1)

    @property
    def delivered(self) -> list[Push]:
        return [push for push in self.accepted if not push.validate_only]

    def write_service_account(self, path: Path) -> Path:
        """A service-account file signed by the fake's key, with ``token_uri`` on the fake."""
        pem = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        path.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": self.project_id,
                    "private_key_id": self.key_id,
                    "private_key": pem,
                    "client_email": f"narrowcast@{self.project_id}.iam.gserviceaccount.com",
                    "client_id": "1234567890",
                    "token_uri": f"{self.url}/token",
                }
            )
        )
        return path

    def error_body(self, status: int) -> Response:
        response = fcm_error(status)
        if status in (429, 503):
            return Response(
                response.status, response.body, {**response.headers, "Retry-After": "30"}
            )
        return response

    def handle(self, request: Request) -> Response:
        if request.path == "/token":
            return self._token(request)
        match = _SEND.match(request.path.split("?")[0])
        if match is None or request.method != "POST":
            return fcm_error(404, "Not found")
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if bearer not in self._tokens:
            return Response.json(
                401,
                {
                    "error": {
                        "code": 401,
                        "message": "Request had invalid authentication credentials. Expected "
                        "OAuth 2 access token, login cookie or other valid authentication "
                        "credential.",
                        "status": "UNAUTHENTICATED",
                    }
                },
            )
        if match.group(1) != self.project_id:
            return Response.json(
                403,
                {
                    "error": {
                        "code": 403,
                        "message": f"Permission denied on project {match.group(1)}",
                        "status": "PERMISSION_DENIED",
                    }
                },
            )
        try:
            body = json.loads(request.body)
            message = body["message"]
        except (ValueError, KeyError, TypeError):
            return fcm_error(400, "Invalid JSON payload received.")
        problem = _check(message)
        if problem is not None:
            return problem
        token = message.get("token")
        if token in self.unregistered:
            return fcm_error(404)
        if token in self.mismatched:
            return fcm_error(403)
        name = f"projects/{self.project_id}/messages/0:{next(self._serial)}%fake"
        self.accepted.append(Push(name, message, bool(body.get("validate_only"))))
        return Response.json(200, {"name": name})

    def _token(self, request: Request) -> Response:
        form = urllib.parse.parse_qs(request.body.decode())
        grant = form.get("grant_type", [""])[0]
        assertion = form.get("assertion", [""])[0]
        if grant != "urn:ietf:params:oauth:grant-type:jwt-bearer" or not assertion:
            return Response.json(400, {"error": "unsupported_grant_type"})
        public = self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        try:
            # google-auth signs for Google's endpoint whatever token_uri says; Google checks that.
            jwt.decode(  # type: ignore[no-untyped-call]
                assertion, certs={self.key_id: public}, audience=_GOOGLE_TOKEN_AUDIENCE
            )
        except ValueError as exc:
            return Response.json(
                400, {"error": "invalid_grant", "error_description": f"Invalid JWT: {exc}"}
            )
        if self.revoked:
            return Response.json(
                400,
                {"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
            )
        self.tokens_issued += 1
        token = f"ya29.fake-{self.tokens_issued}"
        self._tokens.add(token)
        return Response.json(
            200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}
        )


@functools.cache
def _service_account_key() -> rsa.RSAPrivateKey:
    # Generating a 2048-bit key takes a good part of a second on a busy machine; every fake
    # of the process can sign with the same one.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _check(message: Any) -> Response | None:
    if not isinstance(message, dict):
        return fcm_error(400, "Invalid JSON payload received.")
    targets = [key for key in ("token", "topic", "condition") if message.get(key)]
    if len(targets) != 1:
        return fcm_error(400, "Exactly one of token, topic or condition must be specified.")
    token = message.get("token")
    if token is not None and not _TOKEN_SHAPE.match(str(token)):
        return fcm_error(400, "The registration token is not a valid FCM registration token")
    data = message.get("data") or {}
    for position, (key, value) in enumerate(data.items()):
        if not isinstance(value, str):
            text = f"Invalid value at 'message.data[{position}].value' (TYPE_STRING), {value}"
            body = {
                "error": {
                    "code": 400,
                    "message": text,
                    "status": "INVALID_ARGUMENT",
                    "details": [
                        {
                            "@type": "type.googleapis.com/google.rpc.BadRequest",
                            "fieldViolations": [
                                {"field": f"message.data[{position}].value", "description": text}
                            ],
                        }
                    ],
                }
            }
            return Response.json(400, body)
        if key == "from" or key.startswith("google") or key.startswith("gcm"):
            return fcm_error(400, f"Invalid data key: {key}")
    payload = {key: message[key] for key in ("notification", "data") if key in message}
    if len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()) > 4096:
        return fcm_error(400, "Message is too big")
    return None
