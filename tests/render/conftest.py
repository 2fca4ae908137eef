"""Template folders on disk for the render tests, and a renderer over them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from narrowcast.render import Links, Renderer, Signer, Templates

SECRET = b"test-secret-test-secret-test-secret"
BASE_URL = "https://news.example.com"
CAMPAIGN: dict[str, Any] = {"name": "spring", "description": "Spring sale", "purpose": "marketing"}
CUSTOMER: dict[str, Any] = {
    "id": "c-1",
    "email": "ana@example.com",
    "first_name": "Ana",
    "last_name": "Pérez",
    "country": "ES",
    "timezone": "Europe/Madrid",
    "locale": "es-ES",
    "attributes": {"lifestyle": "adventurer", "persona": "vip"},
}

Write = Callable[[Mapping[str, str | bytes]], Path]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "templates"
    folder.mkdir()
    return folder


@pytest.fixture
def write(root: Path) -> Write:
    """Write ``{name: text}`` under the templates folder; returns the folder."""

    def write(files: Mapping[str, str | bytes]) -> Path:
        for name, content in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        return root

    return write


@pytest.fixture
def signer() -> Signer:
    return Signer(SECRET)


@pytest.fixture
def renderer(root: Path, signer: Signer) -> Renderer:
    return Renderer(Templates(root), Links(signer, BASE_URL))


def customer(**changes: Any) -> dict[str, Any]:
    return {**CUSTOMER, **changes}
