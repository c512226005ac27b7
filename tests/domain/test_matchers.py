"""Alertmanager matcher syntax: parsing, canonical form and evaluation (property-based)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.matchers import MatcherError, MatchOp, matches_all, parse_matcher, quote

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True)
values = st.text(max_size=30)
ops = st.sampled_from(list(MatchOp))
safe_regexes = st.sampled_from(["", ".*", "a|b", "[0-9]+", "Payment.*", "x?y", "(ab)+", "\\."])


@given(name=names, value=values, op=st.sampled_from([MatchOp.EQ, MatchOp.NE]))
def test_quoted_values_round_trip_through_the_canonical_form(
    name: str, value: str, op: MatchOp
) -> None:
    matcher = parse_matcher(f"{name}{op.value}{quote(value)}")
    assert (matcher.name, matcher.op, matcher.value) == (name, op, value)
    assert parse_matcher(str(matcher)) == matcher


@given(name=names, value=values, labels=st.dictionaries(names, values, max_size=4))
def test_equality_and_inequality_are_complements(
    name: str, value: str, labels: dict[str, str]
) -> None:
    eq = parse_matcher(f"{name}={quote(value)}")
    ne = parse_matcher(f"{name}!={quote(value)}")
    assert eq.matches(labels) != ne.matches(labels)
    assert eq.matches(labels) == (labels.get(name, "") == value)


@given(name=names, regex=safe_regexes, labels=st.dictionaries(names, values, max_size=4))
def test_regexes_are_anchored_and_negation_is_the_complement(
    name: str, regex: str, labels: dict[str, str]
) -> None:
    positive = parse_matcher(f"{name}=~{quote(regex)}")
    negative = parse_matcher(f"{name}!~{quote(regex)}")
    expected = re.fullmatch(regex, labels.get(name, "")) is not None
    assert positive.matches(labels) is expected
    assert negative.matches(labels) is not expected


@given(text=st.text(max_size=40))
def test_any_text_parses_or_raises_a_matcher_error(text: str) -> None:
    try:
        matcher = parse_matcher(text)
    except MatcherError as exc:
        assert str(exc)
    else:
        assert parse_matcher(str(matcher)) == matcher


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ('alertname=~"Payment.*"', {"alertname": "PaymentFailed"}, True),
        ('alertname=~"Payment.*"', {"alertname": "FailedPayment"}, False),  # anchored
        ('env="prod"', {"env": "prod"}, True),
        ("env=prod", {"env": "prod"}, True),  # bare value
        ("  env  =  prod  ", {"env": "prod"}, True),
        ('env=""', {}, True),  # missing label is the empty value
        ('env!=""', {}, False),
        ('env!~"dev|test"', {"env": "prod"}, True),
        ('__title__=~"(?i).*payment failed.*"', {"__title__": "Payment failed for 8812"}, True),
        ('msg="say \\"hi\\""', {"msg": 'say "hi"'}, True),
        ('msg="a\\\\b"', {"msg": "a\\b"}, True),
    ],
)
def test_alertmanager_examples(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_matcher(text).matches(labels) is expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "starts with a label name"),
        ('1env="x"', "starts with a label name"),
        ("env", "one of =, !=, =~ or !~"),
        ('env=="x"', "quote"),
        ('env="prod', "no closing quote"),
        ('env="prod" team="x"', "one matcher per entry"),
        ('env="\\q"', "unknown escape"),
        ('env=~"(unclosed"', "invalid regular expression"),
        ('env=~"(a)\\\\1"', "backreferences"),
        ('env=~"(?<!x)a"', "lookarounds"),
        ('env=~"(?=x)"', "lookarounds"),
        ("env=a,b", "quote"),
    ],
)
def test_bad_matchers_say_what_to_write(text: str, says: str) -> None:
    with pytest.raises(MatcherError, match=re.escape(says)):
        parse_matcher(text)


def test_all_matchers_must_match_and_none_match_everything() -> None:
    both = [parse_matcher('env="prod"'), parse_matcher('team=~"pay.*"')]
    assert matches_all(both, {"env": "prod", "team": "payments"})
    assert not matches_all(both, {"env": "prod", "team": "search"})
    assert matches_all([], {"anything": "x"})
