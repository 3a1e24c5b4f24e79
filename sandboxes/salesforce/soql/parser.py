"""A SOQL parser for the subset integrations use: field lists with parent paths, WHERE, ORDER BY, LIMIT, OFFSET.

It produces a small syntax tree; :mod:`sandboxes.salesforce.soql.compiler` checks it against the schema
and turns it into SQL. Syntax errors are reported as Salesforce does, pointing at row and column.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from sandboxes.salesforce.errors import SalesforceError, malformed_query

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})(?![\w:])
  | (?P<number>[+-]?\d+(?:\.\d+)?)(?![\w])
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),:])
    """,
    re.VERBOSE,
)

KEYWORDS = frozenset(
    {
        "SELECT",
        "FROM",
        "WHERE",
        "AND",
        "OR",
        "NOT",
        "IN",
        "LIKE",
        "NULL",
        "TRUE",
        "FALSE",
        "ORDER",
        "BY",
        "ASC",
        "DESC",
        "NULLS",
        "FIRST",
        "LAST",
        "LIMIT",
        "OFFSET",
        "GROUP",
        "HAVING",
        "WITH",
        "FOR",
        "USING",
        "INCLUDES",
        "EXCLUDES",
        "TYPEOF",
    }
)

DATE_LITERALS = frozenset(
    {
        "TODAY",
        "YESTERDAY",
        "TOMORROW",
        "LAST_WEEK",
        "THIS_WEEK",
        "NEXT_WEEK",
        "LAST_MONTH",
        "THIS_MONTH",
        "NEXT_MONTH",
        "LAST_YEAR",
        "THIS_YEAR",
        "NEXT_YEAR",
        "LAST_90_DAYS",
        "NEXT_90_DAYS",
    }
)
DATE_LITERALS_N = frozenset({"LAST_N_DAYS", "NEXT_N_DAYS"})

_UNESCAPES = {
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "b": "\b",
    "f": "\f",
    '"': '"',
    "'": "'",
    "\\": "\\",
    "%": "\\%",
    "_": "\\_",
}


@dataclasses.dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int

    @property
    def upper(self) -> str:
        return self.text.upper()


@dataclasses.dataclass(frozen=True)
class FieldPath:
    """``Name`` or ``Account.Owner.Name`` as written, with where it stands in the query."""

    parts: tuple[str, ...]
    pos: int


@dataclasses.dataclass(frozen=True)
class Literal:
    """A value in a condition: ``kind`` is string, number, boolean, null, date, datetime or date_literal."""

    kind: str
    value: Any
    text: str
    pos: int


@dataclasses.dataclass(frozen=True)
class Condition:
    path: FieldPath
    operator: str
    """One of = != < <= > >= LIKE IN NOT IN."""
    value: Literal | tuple[Literal, ...]


@dataclasses.dataclass(frozen=True)
class BoolOp:
    operator: str
    """AND or OR."""
    operands: tuple[Any, ...]


@dataclasses.dataclass(frozen=True)
class Not:
    operand: Any


@dataclasses.dataclass(frozen=True)
class OrderItem:
    path: FieldPath
    descending: bool
    nulls_last: bool | None
    """None when not stated: Salesforce puts nulls first ascending and last descending."""


@dataclasses.dataclass(frozen=True)
class Query:
    fields: tuple[FieldPath, ...]
    count_only: bool
    sobject: str
    sobject_pos: int
    where: Any | None
    order_by: tuple[OrderItem, ...]
    limit: int | None
    offset: int | None
    text: str


def located(soql: str, pos: int, message: str) -> str:
    """Salesforce's way of pointing at a place in the query: the line, a caret, row and column."""
    before = soql[:pos]
    row = before.count("\n") + 1
    line_start = before.rfind("\n") + 1
    line_end = soql.find("\n", pos)
    line = soql[line_start:] if line_end < 0 else soql[line_start:line_end]
    column = pos - line_start + 1
    return f"\n{line}\n{' ' * (column - 1)}^\nERROR at Row:{row}:Column:{column}\n{message}"


def tokenize(soql: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(soql):
        match = _TOKEN_RE.match(soql, pos)
        if match is None:
            raise malformed_query(located(soql, pos, f"unexpected token: '{soql[pos]}'"))
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    tokens.append(Token("eof", "", len(soql)))
    return tokens


def _unescape(quoted: str) -> str:
    body = quoted[1:-1]
    return re.sub(r"\\(.)", lambda m: _UNESCAPES.get(m.group(1), m.group(1)), body)


class _Parser:
    def __init__(self, soql: str) -> None:
        self.soql = soql
        self.tokens = tokenize(soql)
        self.index = 0

    # ---- token helpers ------------------------------------------------------------------------------

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "eof":
            self.index += 1
        return token

    def at_keyword(self, *words: str) -> bool:
        return self.current.kind == "ident" and self.current.upper in words

    def error(self, token: Token | None = None, message: str | None = None) -> SalesforceError:
        token = token or self.current
        if message is None:
            message = "unexpected token: <EOF>" if token.kind == "eof" else f"unexpected token: '{token.text}'"
        return malformed_query(located(self.soql, token.pos, message))

    def expect_keyword(self, word: str) -> Token:
        if not self.at_keyword(word):
            raise self.error()
        return self.advance()

    def expect_punct(self, text: str) -> Token:
        if self.current.text != text or self.current.kind != "punct":
            raise self.error()
        return self.advance()

    # ---- grammar ------------------------------------------------------------------------------------

    def parse(self) -> Query:
        self.expect_keyword("SELECT")
        fields, count_only = self.select_list()
        self.expect_keyword("FROM")
        name = self.advance()
        if name.kind != "ident" or name.upper in KEYWORDS or "." in name.text:
            raise self.error(name)
        where = None
        if self.at_keyword("WHERE"):
            self.advance()
            where = self.expression()
        order_by: list[OrderItem] = []
        if self.at_keyword("ORDER"):
            self.advance()
            self.expect_keyword("BY")
            order_by.append(self.order_item())
            while self.current.kind == "punct" and self.current.text == ",":
                self.advance()
                order_by.append(self.order_item())
        limit = self.integer_clause("LIMIT")
        offset = self.integer_clause("OFFSET")
        if self.current.kind != "eof":
            raise self.error()
        return Query(tuple(fields), count_only, name.text, name.pos, where, tuple(order_by), limit, offset, self.soql)

    def integer_clause(self, word: str) -> int | None:
        if not self.at_keyword(word):
            return None
        self.advance()
        token = self.advance()
        if token.kind != "number" or not token.text.isdigit():
            raise self.error(token)
        return int(token.text)

    def select_list(self) -> tuple[list[FieldPath], bool]:
        if self.at_keyword("COUNT") and self.tokens[self.index + 1].text == "(":
            count_token = self.advance()
            self.advance()
            if self.current.text != ")":
                raise self.error(count_token, "Aggregate queries other than COUNT() are not supported by this org")
            self.advance()
            return [], True
        fields = [self.field_path()]
        while self.current.kind == "punct" and self.current.text == ",":
            self.advance()
            fields.append(self.field_path())
        return fields, False

    def field_path(self) -> FieldPath:
        token = self.current
        if token.kind != "ident" or token.upper in KEYWORDS:
            raise self.error()
        self.advance()
        if self.current.kind == "punct" and self.current.text == "(":
            raise self.error(token, "Functions and aggregates other than COUNT() are not supported by this org")
        return FieldPath(tuple(token.text.split(".")), token.pos)

    def order_item(self) -> OrderItem:
        path = self.field_path()
        descending = False
        if self.at_keyword("ASC", "DESC"):
            descending = self.advance().upper == "DESC"
        nulls_last = None
        if self.at_keyword("NULLS"):
            self.advance()
            if not self.at_keyword("FIRST", "LAST"):
                raise self.error()
            nulls_last = self.advance().upper == "LAST"
        return OrderItem(path, descending, nulls_last)

    def expression(self) -> Any:
        first = self.unary()
        if not self.at_keyword("AND", "OR"):
            return first
        operator = self.current.upper
        operands = [first]
        while self.at_keyword("AND", "OR"):
            if self.current.upper != operator:
                # SOQL refuses to guess precedence: mixing AND and OR needs parentheses.
                raise self.error()
            self.advance()
            operands.append(self.unary())
        return BoolOp(operator, tuple(operands))

    def unary(self) -> Any:
        if self.at_keyword("NOT"):
            self.advance()
            return Not(self.unary())
        if self.current.kind == "punct" and self.current.text == "(":
            self.advance()
            inner = self.expression()
            self.expect_punct(")")
            return inner
        return self.condition()

    def condition(self) -> Condition:
        path = self.field_path()
        token = self.current
        if token.kind == "op":
            self.advance()
            operator = "!=" if token.text == "<>" else token.text
            return Condition(path, operator, self.literal())
        if self.at_keyword("LIKE"):
            self.advance()
            return Condition(path, "LIKE", self.literal())
        if self.at_keyword("IN"):
            self.advance()
            return Condition(path, "IN", self.literal_list())
        if self.at_keyword("NOT") and self.tokens[self.index + 1].upper == "IN":
            self.advance()
            self.advance()
            return Condition(path, "NOT IN", self.literal_list())
        raise self.error()

    def literal_list(self) -> tuple[Literal, ...]:
        self.expect_punct("(")
        values = [self.literal()]
        while self.current.kind == "punct" and self.current.text == ",":
            self.advance()
            values.append(self.literal())
        self.expect_punct(")")
        return tuple(values)

    def literal(self) -> Literal:
        token = self.advance()
        if token.kind == "string":
            return Literal("string", _unescape(token.text), token.text, token.pos)
        if token.kind == "number":
            return Literal("number", float(token.text), token.text, token.pos)
        if token.kind in ("date", "datetime"):
            return Literal(token.kind, token.text, token.text, token.pos)
        if token.kind == "ident":
            word = token.upper
            if word in ("TRUE", "FALSE"):
                return Literal("boolean", word == "TRUE", token.text, token.pos)
            if word == "NULL":
                return Literal("null", None, token.text, token.pos)
            if word in DATE_LITERALS:
                return Literal("date_literal", (word, 0), token.text, token.pos)
            if word in DATE_LITERALS_N:
                self.expect_punct(":")
                amount = self.advance()
                if amount.kind != "number" or not amount.text.isdigit():
                    raise self.error(amount)
                return Literal("date_literal", (word, int(amount.text)), f"{token.text}:{amount.text}", token.pos)
        raise self.error(token)


def parse(soql: str) -> Query:
    """Parse ``soql``; raises :class:`SalesforceError` (MALFORMED_QUERY) on a syntax error."""
    if not soql or not soql.strip():
        raise malformed_query("unexpected token: <EOF>")
    return _Parser(soql).parse()
