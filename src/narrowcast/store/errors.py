"""Errors of the store package.

NarrowcastError
└── StoreError                 the database cannot be reached or upgraded
    └── StoreNotReady          the schema is older than this narrowcast
"""

from __future__ import annotations

from narrowcast.errors import NarrowcastError


class StoreError(NarrowcastError):
    """The database cannot be reached, or refused what narrowcast asked of it."""

    exit_code = 3


class StoreNotReady(StoreError):
    """The database schema is not at the version this narrowcast needs."""
