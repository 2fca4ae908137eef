"""Why a rule means what it means: its text, its SQL, and its verdict for one customer.

``segments explain`` prints a rule as narrowcast understood it (named
segments shown with what they contain), the SQL it compiles to for the
store's database, and — for one customer — the value of every condition and
of every number or text it compares, so a marketer can see why someone is in
or out::

    ✗ segment('vip')
      ✓ count('order', within='365d') >= 5        count('order', within='365d') = 7
      ✗ segment('big_spenders')
        ✗ avg('order', 'value') > store_avg('order', 'value')
                                                  avg('order', 'value') = 84.5
                                                  store_avg('order', 'value') = 211.35
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, literal, select
from sqlalchemy.exc import CompileError

from narrowcast.segments.compiler import Compiler
from narrowcast.segments.errors import RuleError
from narrowcast.segments.evaluation import Evaluation
from narrowcast.segments.language import (
    Aggregate,
    Attr,
    BoolOp,
    Compare,
    Const,
    Geo,
    In,
    LatestOf,
    Node,
    Not,
    Score,
    SegmentRef,
    StoreAvg,
    Truth,
)
from narrowcast.store.schema import customers

_CONDITIONS = (Const, BoolOp, Not, SegmentRef, Compare, In, Geo, Truth)


def render(node: Node) -> str:
    """Rule text for a checked tree; ``render(parse_rule(t))`` parses to the same tree."""
    if isinstance(node, Const):
        return _constant(node.value)
    if isinstance(node, Attr | Score):
        return node.name
    if isinstance(node, Aggregate):
        args = [repr(node.event_type)]
        if node.property is not None:
            args.append(repr(node.property))
        args += _keywords(node.within)
        args += [f"{key}={_constant(value)}" for key, value in node.filters]
        args += [f"has={name!r}" for name in node.present]
        args += [f"lacks={name!r}" for name in node.absent]
        return f"{node.function}({', '.join(args)})"
    if isinstance(node, LatestOf):
        args = [repr(kind) for kind in node.event_types] + _keywords(node.within)
        return f"latest_of({', '.join(args)})"
    if isinstance(node, StoreAvg):
        args = [repr(node.event_type), repr(node.property), *_keywords(node.within)]
        return f"store_avg({', '.join(args)})"
    if isinstance(node, Geo):
        return f"in_geo({'/'.join(node.parts)!r})"
    if isinstance(node, SegmentRef):
        return f"segment({node.name!r})"
    if isinstance(node, Compare):
        return f"{render(node.left)} {node.op} {render(node.right)}"
    if isinstance(node, In):
        values = ", ".join(_constant(v) for v in node.values)
        return f"{render(node.item)} {'not in' if node.negated else 'in'} [{values}]"
    if isinstance(node, BoolOp):
        parts = [
            f"({render(item)})" if isinstance(item, BoolOp) else render(item) for item in node.items
        ]
        return f" {node.op} ".join(parts)
    if isinstance(node, Not):
        inner = render(node.item)
        return f"not ({inner})" if isinstance(node.item, BoolOp | Compare | In) else f"not {inner}"
    if isinstance(node, Truth):
        return render(node.item)
    raise TypeError(f"cannot render {node!r}")


@dataclass(frozen=True)
class Line:
    """One condition of the rule, at its depth, with its verdict and the values it compared."""

    depth: int
    text: str
    holds: bool | None
    """None when no customer was asked about."""
    values: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Explanation:
    rule: str
    sql: str
    lines: tuple[Line, ...]
    customer_id: str | None
    member: bool | None

    def text(self) -> str:
        out = [f"rule:  {self.rule}", "", "SQL:", self.sql, ""]
        if self.customer_id is not None:
            verdict = "IN the segment" if self.member else "NOT in the segment"
            out.append(f"customer {self.customer_id!r} is {verdict}:")
        else:
            out.append("conditions:")
        for line in self.lines:
            mark = "  " if line.holds is None else ("✓ " if line.holds else "✗ ")
            pad = "  " * line.depth
            out.append(f"  {pad}{mark}{line.text}")
            for label, value in line.values:
                out.append(f"  {pad}    {label} = {_show(value)}")
        return "\n".join(out)


def explain(evaluation: Evaluation, rule: Node, customer_id: str | None = None) -> Explanation:
    """The rule's text, SQL and (for ``customer_id``) every condition's verdict and values."""
    tree = _flatten(rule, 0)
    sql = _sql(evaluation, rule)
    if customer_id is None:
        lines = tuple(Line(depth, render(node), None, ()) for depth, node in tree)
        return Explanation(render(rule), sql, lines, None, None)
    per_row = Compiler(evaluation.now, evaluation.definitions.scores, per_row=True)
    columns: list[ColumnElement[Any]] = []
    for _, node in tree:
        columns.append(case((per_row.predicate(node), True), else_=False))
        columns += [per_row.value(operand) for operand in _operands(node)]
    query = select(*columns).where(customers.c.id == literal(customer_id))
    row = evaluation.conn.execute(query).first()
    if row is None:
        raise RuleError(f"there is no customer '{customer_id}' in the store")
    values = iter(row)
    verdicts: list[Line] = []
    for depth, node in tree:
        holds = bool(next(values))
        shown = tuple((render(operand), next(values)) for operand in _operands(node))
        verdicts.append(Line(depth, render(node), holds, shown))
    return Explanation(render(rule), sql, tuple(verdicts), customer_id, verdicts[0].holds)


def _flatten(node: Node, depth: int) -> list[tuple[int, Node]]:
    out = [(depth, node)]
    if isinstance(node, BoolOp):
        for item in node.items:
            out += _flatten(item, depth + 1)
    elif isinstance(node, Not):
        out += _flatten(node.item, depth + 1)
    elif isinstance(node, SegmentRef):
        out += _flatten(node.rule, depth + 1)
    return out


def _operands(node: Node) -> list[Node]:
    """The values a condition compares, other than constants."""
    if isinstance(node, Compare):
        candidates = [node.left, node.right]
    elif isinstance(node, In):
        candidates = [node.item]
    elif isinstance(node, Truth):
        candidates = [node.item]
    else:
        return []
    return [item for item in candidates if not isinstance(item, _CONDITIONS)]


def _sql(evaluation: Evaluation, rule: Node) -> str:
    query = evaluation.query(rule)
    dialect = evaluation.conn.dialect
    try:
        return str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    except (CompileError, NotImplementedError):
        compiled = query.compile(dialect=dialect)
        params = "\n".join(f"  {key} = {value!r}" for key, value in compiled.params.items())
        return f"{compiled}\nparameters:\n{params}"


def _keywords(within: timedelta | None) -> list[str]:
    if within is None:
        return []
    hours = int(within / timedelta(hours=1))
    if hours % 24:
        return [f"within='{hours}h'"]
    days = hours // 24
    return [f"within='{days // 7}w'" if days % 7 == 0 else f"within='{days}d'"]


def _constant(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


def _show(value: Any) -> str:
    if value is None:
        return "missing"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return repr(value) if isinstance(value, str) else str(value)
