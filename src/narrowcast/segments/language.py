"""The segment rule language: Python expression syntax, parsed, never evaluated.

A rule such as ``country == 'ES' and count('order', within='30d') >= 2`` is
parsed with :mod:`ast` and only a whitelist of node types is accepted — no
attribute access, subscripts, lambdas, comprehensions or calls other than the
functions below — then checked against the ``Catalog`` (known attributes,
event types and properties) and turned into a small typed tree that the
compiler (SQL) and the test suite's reference evaluator (Python) both read.

Functions (``within`` windows are (now − duration, now]; ``has='prop'`` and
``lacks='prop'`` keep the events where the property has a value / has none;
every other keyword argument filters on an event property by equality):

=========================  ======  ============================================
``count(type, …)``         number  events; 0 when none
``sum(type, prop, …)``     number  0 when none
``avg/min/max(type, prop)``number  missing when none
``distinct(type, prop)``   number  distinct values; 0 when none
``ever(type, …)``          bool    at least one such event
``days_since(type, …)``    number  whole days since the latest; missing when none
``days_since_first(…)``    number  whole days since the first
``last(type, prop)``       any     the property of the latest such event
``latest_of(t1, t2, …)``   text    which of the types happened last (``within``)
``store_avg(type, prop)``  number  average over the whole store
``in_geo('ES/Andalucía')`` bool    country / region / city / neighbourhood prefix
``segment('vip')``         bool    membership of another named segment
=========================  ======  ============================================
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

from narrowcast.errors import did_you_mean
from narrowcast.segments.errors import RuleError

ValueType = Literal["number", "text", "bool", "date", "any"]

AGGREGATES = (
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "distinct",
    "ever",
    "days_since",
    "days_since_first",
    "last",
)
FUNCTIONS = (*AGGREGATES, "latest_of", "store_avg", "in_geo", "segment")
_PRESENCE = ("has", "lacks")
_NEEDS_PROPERTY = {"sum", "avg", "min", "max", "distinct", "last", "store_avg"}
_DURATION = re.compile(r"([1-9][0-9]{0,5})([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_LONGEST = timedelta(days=36_525)


@dataclass(frozen=True)
class Catalog:
    """What rules may refer to, with types."""

    attributes: Mapping[str, ValueType]
    event_types: frozenset[str]
    properties: Mapping[str, Mapping[str, ValueType]] = field(default_factory=dict)
    segments: Mapping[str, str] = field(default_factory=dict)
    """Named segment rules, for ``segment('name')``."""
    scores: Mapping[str, ValueType] = field(default_factory=dict)
    """Score names (``lead_score``, ``nps_class``, …); they win over attributes."""
    segment_origins: Mapping[str, str] = field(default_factory=dict)
    """Where each named segment is defined (``file:line``), for error messages."""


# --- the checked tree ------------------------------------------------------------


@dataclass(frozen=True)
class Const:
    value: Any
    type: ValueType


@dataclass(frozen=True)
class Attr:
    name: str
    type: ValueType


@dataclass(frozen=True)
class Score:
    """A computed score (see ``scores.py``), used like an attribute."""

    name: str
    type: ValueType


@dataclass(frozen=True)
class Aggregate:
    function: str
    event_type: str
    property: str | None
    within: timedelta | None
    filters: tuple[tuple[str, Any], ...]
    type: ValueType
    present: tuple[str, ...] = ()
    """Properties that must have a value (``has=``)."""
    absent: tuple[str, ...] = ()
    """Properties that must have none (``lacks=``)."""


@dataclass(frozen=True)
class LatestOf:
    """The type of the customer's latest event among ``event_types``."""

    event_types: tuple[str, ...]
    within: timedelta | None
    type: ValueType = "text"


@dataclass(frozen=True)
class StoreAvg:
    event_type: str
    property: str
    within: timedelta | None
    type: ValueType = "number"


@dataclass(frozen=True)
class Geo:
    parts: tuple[str, ...]
    type: ValueType = "bool"


@dataclass(frozen=True)
class SegmentRef:
    name: str
    rule: Node
    type: ValueType = "bool"


@dataclass(frozen=True)
class Compare:
    op: Literal["==", "!=", "<", "<=", ">", ">="]
    left: Node
    right: Node
    type: ValueType = "bool"


@dataclass(frozen=True)
class In:
    item: Node
    values: tuple[Any, ...]
    negated: bool
    type: ValueType = "bool"


@dataclass(frozen=True)
class BoolOp:
    op: Literal["and", "or"]
    items: tuple[Node, ...]
    type: ValueType = "bool"


@dataclass(frozen=True)
class Not:
    item: Node
    type: ValueType = "bool"


@dataclass(frozen=True)
class Truth:
    """A bool-valued term used as a condition on its own (``ever('order')``)."""

    item: Node
    type: ValueType = "bool"


Node = (
    Const
    | Attr
    | Score
    | Aggregate
    | LatestOf
    | StoreAvg
    | Geo
    | SegmentRef
    | Compare
    | In
    | BoolOp
    | Not
    | Truth
)

_OPS: dict[type[ast.cmpop], str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
}


def parse_rule(
    text: str, catalog: Catalog, *, origin: str = "", _stack: tuple[str, ...] = ()
) -> Node:
    """Parse and check ``text``; raise ``RuleError`` naming ``origin`` (file:line).

    A rule may span lines (and carry ``#`` comments): such a rule is parsed
    inside parentheses, as Python joins lines within brackets. The opening
    bracket sits on a line of its own, so line 2 of what is parsed is line 1
    of the rule and columns are the rule's own.
    """
    stripped = text.strip()
    wrapped = "\n" in stripped  # a one-line rule needs no joining, and keeps exact errors
    try:
        tree = ast.parse(f"(\n{stripped}\n)" if wrapped else stripped, mode="eval")
        if wrapped:
            _shift_lines(tree)
    except SyntaxError as exc:
        lineno = (exc.lineno or 1) - (1 if wrapped else 0)
        line, shown = _line_of(stripped, lineno, origin)
        column = (exc.offset or 1) - 1
        raise RuleError(
            f"not a valid rule: {exc.msg}", rule=line, column=column, origin=shown
        ) from None
    checker = _Checker(text.strip(), catalog, origin, _stack)
    node = checker.condition(tree.body)
    return node


def parse_duration(text: str) -> timedelta:
    """``'30d'`` → 30 days; units s, m, h, d, w."""
    match = _DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"{text!r} is not a duration — write a whole number and a unit "
            "(s, m, h, d or w): 30m, 12h, 30d, 6w"
        )
    duration = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if duration > _LONGEST:
        raise ValueError(f"{text!r} is longer than 100 years — no store holds older events")
    return duration


class _Checker:
    def __init__(self, rule: str, catalog: Catalog, origin: str, stack: tuple[str, ...]) -> None:
        self.rule = rule
        self.catalog = catalog
        self.origin = origin
        self.stack = stack

    def error(self, node: ast.AST, reason: str) -> RuleError:
        line, origin = _line_of(self.rule, getattr(node, "lineno", 1), self.origin)
        column = getattr(node, "col_offset", None)
        if column is not None:  # ast counts UTF-8 bytes; the caret needs characters
            column = len(line.encode()[:column].decode(errors="ignore"))
        return RuleError(reason, rule=line, column=column, origin=origin)

    # A condition is anything bool-valued; the root of a rule must be one.
    def condition(self, node: ast.expr) -> Node:
        result = self.expr(node)
        if result.type != "bool":
            raise self.error(
                node, "this part is a value, not a condition — compare it, e.g. count('order') >= 1"
            )
        if isinstance(result, Attr | Aggregate):
            return Truth(result)
        return result

    def expr(self, node: ast.expr) -> Node:
        if isinstance(node, ast.BoolOp):
            op: Literal["and", "or"] = "and" if isinstance(node.op, ast.And) else "or"
            return BoolOp(op, tuple(self.condition(v) for v in node.values))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return Not(self.condition(node.operand))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            inner = self.expr(node.operand)
            if isinstance(inner, Const) and inner.type == "number":
                return Const(-inner.value, "number")
            raise self.error(node, "only a number can be negated")
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        raise self.error(node, f"{_describe(node)} is not allowed in a segment rule")

    def constant(self, node: ast.Constant) -> Const:
        value = node.value
        if isinstance(value, bool):
            return Const(value, "bool")
        if isinstance(value, int | float):
            return Const(value, "number")
        if isinstance(value, str):
            if "\x00" in value:
                raise self.error(node, "text in a rule cannot contain the NUL character (\\x00)")
            return Const(value, "text")
        raise self.error(node, f"{value!r} is not a value a rule can use")

    def name(self, node: ast.Name) -> Node:
        if node.id in ("True", "False"):
            return Const(node.id == "True", "bool")
        score_type = self.catalog.scores.get(node.id)
        if score_type is not None:
            return Score(node.id, score_type)
        attribute_type = self.catalog.attributes.get(node.id)
        if attribute_type is None:
            if node.id in FUNCTIONS:
                raise self.error(node, f"{node.id} is a function — call it: {node.id}(…)")
            hint = did_you_mean(node.id, [*self.catalog.attributes, *self.catalog.scores])
            raise self.error(node, f"unknown attribute '{node.id}'{hint}")
        return Attr(node.id, attribute_type)

    def compare(self, node: ast.Compare) -> Node:
        if any(isinstance(op, ast.In | ast.NotIn) for op in node.ops):
            if len(node.ops) > 1:
                raise self.error(
                    node, "'in' cannot be chained with other comparisons — join them with 'and'"
                )
            return self.membership(self.expr(node.left), node.ops[0], node.comparators[0])
        parts: list[Node] = []
        left = self.expr(node.left)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            if type(op) not in _OPS:
                raise self.error(
                    node,
                    f"'{type(op).__name__}' comparisons are not allowed — "
                    "use ==, !=, <, <=, >, >=, in or not in",
                )
            right = self.expr(right_node)
            self.comparable(right_node, left, right)
            parts.append(Compare(_OPS[type(op)], left, right))  # type: ignore[arg-type]
            left = right
        return parts[0] if len(parts) == 1 else BoolOp("and", tuple(parts))

    def membership(self, item: Node, op: ast.cmpop, values: ast.expr) -> In:
        if not isinstance(values, ast.List | ast.Tuple) or not values.elts:
            raise self.error(
                values, "'in' needs a list of values, e.g. city in ['Madrid', 'Sevilla']"
            )
        consts: list[Any] = []
        for raw in values.elts:
            const = self.expr(raw)
            if not isinstance(const, Const):
                raise self.error(raw, "a list in a rule may only hold plain values")
            self.comparable(raw, item, const)
            consts.append(const.value)
        return In(item, tuple(consts), isinstance(op, ast.NotIn))

    def comparable(self, node: ast.AST, left: Node, right: Node) -> None:
        kinds = {left.type, right.type} - {"any"}
        if kinds == {"date", "text"}:
            # Dates compare with ISO text, birth_date < '1990-01-01', if it is a real date.
            text = right if right.type == "text" else left
            if not isinstance(text, Const):
                raise self.error(
                    node,
                    "a date can only be compared with a date or a date written like "
                    "'1990-01-31' — this value is text",
                )
            try:
                date.fromisoformat(text.value)
            except ValueError:
                raise self.error(node, f"{text.value!r} is not a date like 1990-01-31") from None
            return
        if len(kinds) > 1:
            raise self.error(
                node,
                f"cannot compare {left.type} with {right.type} — check the quotes around the value",
            )

    def call(self, node: ast.Call) -> Node:
        if not isinstance(node.func, ast.Name):
            raise self.error(
                node, f"only the rule functions can be called ({', '.join(FUNCTIONS)})"
            )
        name = node.func.id
        if name not in FUNCTIONS:
            raise self.error(node, f"unknown function '{name}'{did_you_mean(name, FUNCTIONS)}")
        args = [self.literal_text(a, name) for a in node.args]
        keywords: dict[str, Any] = {}
        for keyword in node.keywords:
            if keyword.arg is None:
                raise self.error(node, "**arguments are not allowed")
            if keyword.arg in _PRESENCE:
                keywords[keyword.arg] = self.names(keyword.value, keyword.arg)
                continue
            value = self.expr(keyword.value)
            if not isinstance(value, Const):
                raise self.error(keyword.value, f"{keyword.arg}= takes a plain value")
            keywords[keyword.arg] = value.value
        if name == "in_geo":
            return self.geo(node, args, keywords)
        if name == "segment":
            return self.segment(node, args, keywords)
        if name == "latest_of":
            return self.latest_of(node, args, keywords)
        return self.aggregate(node, name, args, keywords)

    def names(self, node: ast.expr, keyword: str) -> tuple[str, ...]:
        """``has='coupon'`` or ``has=['coupon', 'brand']``."""
        items = node.elts if isinstance(node, ast.List | ast.Tuple) else [node]
        found = []
        for item in items:
            if not (isinstance(item, ast.Constant) and isinstance(item.value, str)):
                raise self.error(
                    item, f"{keyword}= takes a quoted property name, e.g. {keyword}='coupon'"
                )
            found.append(item.value)
        if not found:
            raise self.error(node, f"{keyword}= needs at least one property name")
        return tuple(found)

    def event_type(self, node: ast.AST, event_type: str) -> str:
        if event_type not in self.catalog.event_types:
            hint = did_you_mean(event_type, self.catalog.event_types)
            raise self.error(node, f"unknown event type '{event_type}'{hint}")
        return event_type

    def within(self, node: ast.AST, keywords: dict[str, Any]) -> timedelta | None:
        if "within" not in keywords:
            return None
        try:
            return parse_duration(keywords.pop("within"))
        except ValueError as exc:
            raise self.error(node, f"within={exc}") from None

    def latest_of(self, node: ast.Call, args: list[str], keywords: dict[str, Any]) -> LatestOf:
        if len(args) < 2:
            raise self.error(
                node, "latest_of takes two or more event types, e.g. latest_of('cart_add', 'order')"
            )
        types = tuple(self.event_type(node, kind) for kind in args)
        within = self.within(node, keywords)
        if keywords:
            raise self.error(node, "latest_of takes only within=")
        return LatestOf(types, within)

    def literal_text(self, node: ast.expr, function: str) -> str:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        raise self.error(node, f"{function}() takes quoted names, e.g. {function}('order')")

    def geo(self, node: ast.Call, args: list[str], keywords: dict[str, Any]) -> Geo:
        if len(args) != 1 or keywords:
            raise self.error(node, "in_geo takes one path, e.g. in_geo('ES/Andalucía/Sevilla')")
        parts = tuple(p.strip() for p in args[0].split("/"))
        if not 1 <= len(parts) <= 4 or not all(parts):
            raise self.error(node, "a geo path is COUNTRY[/region[/city[/neighbourhood]]]")
        return Geo((parts[0].upper(), *parts[1:]))

    def segment(self, node: ast.Call, args: list[str], keywords: dict[str, Any]) -> SegmentRef:
        if len(args) != 1 or keywords:
            raise self.error(node, "segment takes one segment name, e.g. segment('vip')")
        name = args[0]
        rule = self.catalog.segments.get(name)
        if rule is None:
            hint = did_you_mean(name, self.catalog.segments)
            raise self.error(node, f"unknown segment '{name}'{hint}")
        if name in self.stack:
            from narrowcast.segments.errors import SegmentCycle

            loop = " → ".join((*self.stack, name))
            raise SegmentCycle(
                f"segments refer to each other in a loop: {loop}",
                rule=self.rule,
                column=node.col_offset,
                origin=self.origin,
            )
        origin = self.catalog.segment_origins.get(name, f"segment '{name}'")
        inner = parse_rule(rule, self.catalog, origin=origin, _stack=(*self.stack, name))
        return SegmentRef(name, inner)

    def aggregate(
        self, node: ast.Call, name: str, args: list[str], keywords: dict[str, Any]
    ) -> Node:
        wants = 2 if name in _NEEDS_PROPERTY else 1
        if len(args) != wants:
            example = f"{name}('order', 'value')" if wants == 2 else f"{name}('order')"
            raise self.error(
                node,
                f"{name} takes {wants} quoted argument{'s' if wants > 1 else ''}, e.g. {example}",
            )
        event_type = self.event_type(node, args[0])
        known = self.catalog.properties.get(event_type, {})
        prop = args[1] if wants == 2 else None
        if prop is not None and prop not in known:
            hint = did_you_mean(prop, known)
            raise self.error(node, f"event type '{event_type}' has no property '{prop}'{hint}")
        within = self.within(node, keywords)
        if name == "store_avg":
            if keywords:
                raise self.error(node, "store_avg takes only within=")
            assert prop is not None
            return StoreAvg(event_type, prop, within)
        presence = {kind: keywords.pop(kind, ()) for kind in _PRESENCE}
        for key in (*presence["has"], *presence["lacks"]):
            if key not in known:
                hint = did_you_mean(key, known)
                raise self.error(node, f"event type '{event_type}' has no property '{key}'{hint}")
        for key, wanted in keywords.items():
            if key not in known:
                hint = did_you_mean(key, known)
                raise self.error(node, f"event type '{event_type}' has no property '{key}'{hint}")
            self.comparable(node, Attr(key, known[key]), Const(wanted, _type_of(wanted)))
        result: ValueType = "number"
        if name == "ever":
            result = "bool"
        elif name == "last":
            assert prop is not None
            result = known[prop]
        elif name in ("avg", "sum", "min", "max") and prop is not None and known[prop] != "number":
            raise self.error(node, f"{name} needs a numeric property; '{prop}' is {known[prop]}")
        return Aggregate(
            name,
            event_type,
            prop,
            within,
            tuple(sorted(keywords.items())),
            result,
            present=tuple(sorted(presence["has"])),
            absent=tuple(sorted(presence["lacks"])),
        )


def _shift_lines(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        if hasattr(node, "lineno"):
            node.lineno -= 1


_FILE_LINE = re.compile(r"^(?P<file>.*):(?P<line>\d+)$")


def _line_of(rule: str, lineno: int, origin: str) -> tuple[str, str]:
    """The rule's line ``lineno`` and the origin moved to it (``file:12`` → ``file:13``).

    A rule written over several lines in a TOML file reports the file line of the
    problem, and shows that line with the caret under the column.
    """
    lines = rule.split("\n")
    if len(lines) == 1:
        return rule, origin
    index = min(max(lineno, 1), len(lines)) - 1
    located = _FILE_LINE.match(origin)
    if located:
        origin = f"{located.group('file')}:{int(located.group('line')) + index}"
    elif origin:
        origin = f"{origin}, line {index + 1}"
    return lines[index], origin


def _type_of(value: Any) -> ValueType:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "text"


def _describe(node: ast.AST) -> str:
    names = {
        ast.Attribute: "attribute access (x.y)",
        ast.Subscript: "indexing (x[…])",
        ast.Lambda: "a lambda",
        ast.ListComp: "a comprehension",
        ast.GeneratorExp: "a generator",
        ast.DictComp: "a comprehension",
        ast.SetComp: "a comprehension",
        ast.BinOp: "arithmetic",
        ast.IfExp: "a conditional expression",
        ast.NamedExpr: "assignment (:=)",
        ast.Dict: "a dict",
        ast.Set: "a set",
        ast.List: "a list outside 'in'",
        ast.JoinedStr: "an f-string",
        ast.Starred: "unpacking (*x)",
        ast.Await: "await",
    }
    return names.get(type(node), type(node).__name__)
