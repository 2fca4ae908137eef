"""Servers for the channel tests: an SMTP relay (aiosmtpd) that parses what it gets, and TLS.

The HTTP fakes come from ``narrowcast.testing``; the SMTP relay is here because
aiosmtpd is a real SMTP server already — it only needs a handler that records
and can be told to refuse.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    peer: Any


@dataclass
class Relay:
    """What the relay got, and how it should answer."""

    host: str = "127.0.0.1"
    port: int = 0
    received: list[Received] = field(default_factory=list)
    refuse_rcpt: dict[str, str] = field(default_factory=dict)
    """recipient → the reply to RCPT TO (e.g. "550 5.1.1 User unknown")."""
    refuse_mail: str | None = None
    refuse_data: str | None = None
    peers: set[Any] = field(default_factory=set)
    queued: int = 0

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # type: ignore[no-untyped-def]
        self.peers.add(session.peer)
        if self.refuse_mail:
            return self.refuse_mail
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        if self.refuse_data:
            return self.refuse_data
        parsed = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), parsed, session.peer)
        )
        self.queued += 1
        return f"250 2.0.0 Ok: queued as Q{self.queued:05d}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "relay.pem", folder / "relay.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _server_tls(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*tls_files)
    return context


def _authenticator(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"shop",
        b"s3cret",
    )
    return AuthResult(success=ok, handled=False)


def _start(relay: Relay, **kwargs: Any) -> Controller:
    relay.port = free_port()
    controller = Controller(relay, hostname=relay.host, port=relay.port, **kwargs)
    controller.start()
    return controller


@pytest.fixture
def relay() -> Iterator[Relay]:
    """A plain relay on 127.0.0.1 (no TLS, no AUTH), like a local Postfix."""
    state = Relay()
    controller = _start(state)
    yield state
    controller.stop()


@pytest.fixture
def starttls_relay(tls_files: tuple[Path, Path]) -> Iterator[Relay]:
    """A submission relay: STARTTLS required, then AUTH as shop / s3cret."""
    state = Relay()
    controller = _start(
        state,
        tls_context=_server_tls(tls_files),
        require_starttls=True,
        auth_required=True,
        authenticator=_authenticator,
    )
    yield state
    controller.stop()


@pytest.fixture
def implicit_tls_relay(tls_files: tuple[Path, Path]) -> Iterator[Relay]:
    """TLS from the first byte (port 465 style)."""
    state = Relay()
    controller = _start(state, ssl_context=_server_tls(tls_files))
    yield state
    controller.stop()
