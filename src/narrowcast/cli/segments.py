"""``narrowcast segments``: list, show, explain, snapshot, flow and score segments."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click

from narrowcast.cli.app import INSTANT, App, cli, now_or, pass_app
from narrowcast.plaintable import format_table
from narrowcast.segments.definitions import Definitions, load_definitions
from narrowcast.segments.errors import RuleError
from narrowcast.segments.evaluation import Evaluation
from narrowcast.segments.language import Node

_AT = click.option(
    "--at",
    type=INSTANT,
    help="Evaluate as of this instant (ISO 8601 with offset); default now.",
)


@cli.group()
def segments() -> None:
    """Named segments: sizes, members, explanations, and how customers move between them."""


def _definitions(app: App) -> Definitions:
    return load_definitions(app.segments_file)


def _rule(evaluation: Evaluation, name: str | None, where: str | None) -> Node:
    if (name is None) == (where is None):
        raise click.UsageError("give a segment NAME or --where RULE (one of them)")
    return evaluation.rule(name, where)


@segments.command("list")
@_AT
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def list_segments(app: App, at: datetime | None, as_json: bool) -> None:
    """Every named segment with its description and current size."""
    definitions = _definitions(app)
    app.store.require_current()
    rows: list[dict[str, Any]] = []
    problems: list[RuleError] = []
    with app.store.connect() as conn:
        evaluation = Evaluation(definitions, conn, now_or(at))
        for name, definition in sorted(definitions.segments.items()):
            try:
                size: int | None = evaluation.count(evaluation.rule(name))
            except RuleError as exc:
                problems.append(exc)
                size = None
            rows.append(
                {
                    "name": name,
                    "size": size,
                    "source": "built-in" if definition.builtin else definition.origin,
                    "description": definition.description,
                    "where": definition.where,
                }
            )
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        table = [
            (
                r["name"],
                r["size"] if r["size"] is not None else "error",
                r["source"],
                r["description"],
            )
            for r in rows
        ]
        click.echo(format_table(("segment", "size", "defined in", "description"), table))
    if problems:
        for problem in problems:
            click.echo(f"Error: {problem.message}", err=True)
        raise click.exceptions.Exit(2)


@segments.command("show")
@click.argument("name", required=False)
@click.option("--where", help="An ad-hoc rule instead of a named segment.")
@_AT
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="How many ids to list; 0 lists all.",
)
@click.option("--json", "as_json", is_flag=True, help='Print {"count": N, "customer_ids": [...]}.')
@pass_app
def show(
    app: App, name: str | None, where: str | None, at: datetime | None, limit: int, as_json: bool
) -> None:
    """The members of segment NAME (or of --where RULE)."""
    definitions = _definitions(app)
    app.store.require_current()
    now = now_or(at)
    with app.store.connect() as conn:
        evaluation = Evaluation(definitions, conn, now)
        rule = _rule(evaluation, name, where)
        count = evaluation.count(rule)
        ids = evaluation.ids(rule, None if limit == 0 else limit)
    if as_json:
        click.echo(json.dumps({"count": count, "customer_ids": ids}, ensure_ascii=False))
        return
    label = name or f"--where {where}"
    click.echo(f"{label}: {count:,} customers as of {now:%Y-%m-%d %H:%M:%S} UTC")
    for customer_id in ids:
        click.echo(customer_id)
    if len(ids) < count:
        click.echo(f"(showing {len(ids):,} of {count:,}; --limit 0 lists all)")


@segments.command("explain")
@click.argument("name", required=False)
@click.option("--where", help="An ad-hoc rule instead of a named segment.")
@click.option("--customer", "customer_id", help="Show why this customer is in or out.")
@_AT
@pass_app
def explain_command(
    app: App, name: str | None, where: str | None, customer_id: str | None, at: datetime | None
) -> None:
    """The rule as understood, the SQL it runs, and (with --customer) every condition's value."""
    from narrowcast.segments.explain import explain

    definitions = _definitions(app)
    app.store.require_current()
    with app.store.connect() as conn:
        evaluation = Evaluation(definitions, conn, now_or(at))
        rule = _rule(evaluation, name, where)
        click.echo(explain(evaluation, rule, customer_id).text())


@segments.command("snapshot")
@click.argument("names", nargs=-1)
@_AT
@pass_app
def snapshot_command(app: App, names: tuple[str, ...], at: datetime | None) -> None:
    """Record who entered and exited each segment (all, or NAMES) since the last snapshot."""
    from narrowcast.segments.membership import snapshot

    definitions = _definitions(app)
    app.store.require_current()
    with app.store.connect() as conn:
        catalog = definitions.catalog(conn)
        for name in names:
            definitions.rule(name, catalog)  # unknown names fail before anything is written
    result = snapshot(app.store, definitions, now_or(at), names or None)
    rows = [(c.segment, c.size, c.entered, c.exited) for c in result.changes if not c.skipped]
    click.echo(format_table(("segment", "size", "entered", "exited"), rows))
    click.echo(result.summary())


@segments.command("flow")
@click.option("--since", type=INSTANT, help="From the membership at this instant.")
@click.option("--until", type=INSTANT, help="To the membership at this instant (default: now).")
@click.option("--matrix", is_flag=True, help="Print the full from × to matrix.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def flow_command(
    app: App, since: datetime | None, until: datetime | None, matrix: bool, as_json: bool
) -> None:
    """How many customers moved from each segment to each other one between snapshots.

    Without --since: between the last two snapshots.
    """
    from narrowcast.segments.membership import NONE, flow, snapshot_instants

    app.store.require_current()
    with app.store.begin() as conn:
        instants = snapshot_instants(conn)
        if since is None or until is None:
            if len(instants) < 2 and since is None:
                raise click.ClickException(
                    "segment flow needs two snapshots — run `narrowcast segments snapshot` "
                    "(the worker takes one on a schedule), or pass --since"
                )
            until = until or (instants[-1] if instants else now_or(None))
            since = since or instants[-2]
        result = flow(conn, since, until)
    moves = sorted(result.moved.items(), key=lambda item: (-item[1], item[0]))
    if as_json:
        payload = {
            "since": result.since.isoformat(),
            "until": result.until.isoformat(),
            "moved": [{"from": a, "to": b, "customers": n} for (a, b), n in moves],
            "stayed": result.stayed,
        }
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    click.echo(
        f"segment flow from {result.since:%Y-%m-%d %H:%M} to {result.until:%Y-%m-%d %H:%M} UTC"
    )
    if matrix:
        names = result.segments()
        header = ("from \\ to", *names, "stayed")
        rows = [
            (a, *(result.moved.get((a, b), 0) for b in names), result.stayed.get(a, 0))
            for a in names
        ]
        click.echo(format_table(header, rows))
        return
    click.echo(format_table(("from", "to", "customers"), [(a, b, n) for (a, b), n in moves]))
    stayed = ", ".join(f"{k} {v:,}" for k, v in sorted(result.stayed.items()) if k != NONE)
    click.echo(f"stayed: {stayed or '(none)'}")


@segments.command("score")
@_AT
@pass_app
def score_command(app: App, at: datetime | None) -> None:
    """Fit the CLV models on the orders and store every customer's clv."""
    from narrowcast.segments.clv_scores import score_clv

    definitions = _definitions(app)
    app.store.require_current()
    with app.store.begin() as conn:
        report = score_clv(conn, now_or(at), definitions.scores.clv)
    click.echo(report.summary())
