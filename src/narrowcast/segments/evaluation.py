"""Segments evaluated against one store at one instant: rules by name or text, sizes, ids.

``Evaluation`` is what the CLI, the planner and the membership snapshots use:
it reads the catalogue once, resolves a named segment or an ad-hoc ``where``
rule, and runs the compiled query on the caller's connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import Connection, Select, func, select

from narrowcast.segments.compiler import Compiler
from narrowcast.segments.definitions import Definitions
from narrowcast.segments.language import Node, parse_rule


class Evaluation:
    """The segments of ``definitions`` in the store behind ``conn``, as of ``now``."""

    def __init__(self, definitions: Definitions, conn: Connection, now: datetime) -> None:
        self.definitions = definitions
        self.conn = conn
        self.now = now
        self.catalog = definitions.catalog(conn)
        self.compiler = Compiler(now, definitions.scores)

    def rule(self, name: str | None = None, where: str | None = None) -> Node:
        """The checked rule of segment ``name``, or of the ad-hoc rule ``where``."""
        if (name is None) == (where is None):
            raise ValueError("give a segment name or a where rule, not both")
        if name is not None:
            return self.definitions.rule(name, self.catalog)
        assert where is not None
        return parse_rule(where, self.catalog, origin="--where")

    def query(self, rule: Node) -> Select[tuple[str]]:
        return self.compiler.query(rule)

    def count(self, rule: Node) -> int:
        members = self.query(rule).subquery()
        return int(self.conn.execute(select(func.count()).select_from(members)).scalar_one())

    def ids(self, rule: Node, limit: int | None = None) -> list[str]:
        """Member ids in id order; ``limit=None`` for all of them."""
        query = self.query(rule).order_by("id")
        if limit is not None:
            query = query.limit(limit)
        return [str(customer_id) for customer_id in self.conn.execute(query).scalars()]

    def stream(self, rule: Node, batch: int = 10_000) -> Iterator[list[str]]:
        """Member ids in batches, without holding them all in memory."""
        result = self.conn.execute(self.query(rule).execution_options(yield_per=batch))
        for part in result.scalars().partitions(batch):
            yield [str(customer_id) for customer_id in part]
