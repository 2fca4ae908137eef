"""``[links]`` in config.toml: where signed links point and which secret signs them.

    [links]
    base_url = "https://news.example.com"     # default http://127.0.0.1:8000
    secret_env = "NARROWCAST_LINK_SECRET"      # the variable that holds the secret

Every process that signs or verifies links (worker, dry-run, HTTP API) must
use the same secret. Production names an environment variable in
``secret_env``. With no ``secret_env``, the first process that needs a secret
generates a random one and keeps it in ``narrowcast.secret`` in the current
folder (mode 0600, git-ignored) and says so on stderr; every later process
started from that folder reads the same file. Losing the file only breaks the
links already sent.

A process that signs or verifies links calls ``load_secret`` (or
``Renderer.from_settings``) when it starts, so that a missing variable stops
it at once with the key that wanted it, as every ``*_env`` key does.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, field_validator

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
SECRET_FILE = "narrowcast.secret"
MIN_SECRET_LENGTH = 32
"""Characters; a url-safe token of 32 random bytes has 43."""

log = logging.getLogger(__name__)


class LinksSettings(BaseModel):
    """``[links]``: the public base URL of the HTTP API and the link-signing secret."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = DEFAULT_BASE_URL
    """Public address of narrowcast's HTTP API; links are ``{base_url}/r/{token}`` etc."""
    secret_env: str | None = None
    """Environment variable holding the signing secret (at least 32 characters)."""

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        if parts.query or parts.fragment:
            raise ValueError(f"the base URL cannot have a query or fragment: {value!r}")
        return value.rstrip("/")


@dataclass(frozen=True)
class SigningSecret:
    """The secret bytes and where they came from (for the start-up message)."""

    value: bytes
    origin: str
    generated: bool = False


def load_secret(
    settings: LinksSettings,
    *,
    env: Mapping[str, str] | None = None,
    folder: Path | None = None,
) -> SigningSecret:
    """The link-signing secret: from ``secret_env``, else from (or into) ``narrowcast.secret``.

    ``env`` defaults to ``os.environ`` and ``folder`` to the current folder;
    tests pass their own. Raises ``ConfigError`` naming the key, the variable
    or the file when the secret is missing, too short, or the file is readable
    by others.
    """
    env = os.environ if env is None else env
    if settings.secret_env is not None:
        value = env.get(settings.secret_env, "")
        if not value:
            raise _config_error(
                f"'links.secret_env' names the environment variable {settings.secret_env}, "
                f"which is not set — export {settings.secret_env}=… (at least "
                f"{MIN_SECRET_LENGTH} random characters) before starting narrowcast"
            )
        if len(value) < MIN_SECRET_LENGTH:
            raise _config_error(
                f"the link secret in {settings.secret_env} has {len(value)} characters; use at "
                f"least {MIN_SECRET_LENGTH}, e.g. the output of "
                "`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        return SigningSecret(value.encode(), f"environment variable {settings.secret_env}")
    path = (folder if folder is not None else Path.cwd()) / SECRET_FILE
    generated = _create(path)
    if generated:
        log.warning(
            "generated a new link-signing secret in %s (mode 0600); every narrowcast process "
            "started from this folder shares it — in production set [links] secret_env instead",
            path,
        )
    return SigningSecret(_read(path), f"file {path}", generated=generated)


def _create(path: Path) -> bool:
    """Write a fresh secret to ``path`` unless it exists; True when this call wrote it.

    The secret is written to a private temporary file that is then hard-linked
    into place, so two processes starting at once agree on one secret and no
    reader ever sees a half-written file.
    """
    if path.exists():
        return False
    token = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=")
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(token + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        return True
    finally:
        temporary.unlink(missing_ok=True)


def _read(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
        value = path.read_bytes().strip()
    except OSError as exc:
        raise _config_error(f"{path}: cannot read the link secret: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise _config_error(
            f"{path} can be read by other users (mode {stat.S_IMODE(mode):04o}) — "
            f"run `chmod 600 {path}`"
        )
    if len(value) < MIN_SECRET_LENGTH:
        raise _config_error(
            f"{path} holds {len(value)} characters, not a secret of at least {MIN_SECRET_LENGTH} "
            "— delete it and narrowcast writes a new one (links already sent stop working)"
        )
    return value


def _config_error(message: str) -> Exception:
    # config.py imports this module for its [links] section, so ConfigError is
    # imported here, when a secret is first needed, not at import time.
    from narrowcast.config import ConfigError

    return ConfigError(message)
