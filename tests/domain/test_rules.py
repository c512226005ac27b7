"""`bot.domain.rules.decide`: first match decides, continue adds, then labels, then classifier."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.domain.alerts import Alert, AlertStatus
from bot.domain.incident import Severity
from bot.domain.matchers import matches_all, parse_matcher
from bot.domain.rules import Classifier, RouteRule, decide

ENVS = ["prod", "dev", "staging"]
matcher_texts = st.sampled_from(
    ['env="prod"', 'env!="dev"', 'env=~"prod|staging"', 'team="pay"', 'team!~"p.*"']
)
rules = st.lists(
    st.tuples(
        st.lists(matcher_texts, max_size=2),
        st.sampled_from([None, Severity.SEV1, Severity.SEV2]),
        st.booleans(),
    ),
    max_size=6,
)


def alert(**changes: object) -> Alert:
    base: dict[str, object] = {
        "fingerprint": "f",
        "group_key": "g",
        "status": AlertStatus.FIRING,
        "title": "Checkout latency high",
    }
    return Alert(**{**base, **changes})  # type: ignore[arg-type]


@given(
    spec=rules,
    env=st.sampled_from(ENVS),
    team=st.sampled_from(["pay", "search"]),
)
def test_routes_match_in_order_until_one_without_continue(
    spec: list[tuple[list[str], Severity | None, bool]], env: str, team: str
) -> None:
    built = [
        RouteRule(
            name=f"r{i}",
            matchers=tuple(parse_matcher(m) for m in texts),
            severity=severity,
            continue_=cont,
        )
        for i, (texts, severity, cont) in enumerate(spec)
    ]
    labels = {"env": env, "team": team}
    routing = decide(built, Classifier(), alert(labels=labels), integration="prom")
    expected: list[str] = []
    first_severity = None
    for rule in built:
        if matches_all(rule.matchers, {**labels, "__integration__": "prom"}):
            expected.append(rule.name)
            first_severity = first_severity or rule.severity
            if not rule.continue_:
                break
    assert list(routing.routes) == expected
    assert routing.severity_value == first_severity


def test_route_beats_label_beats_classifier() -> None:
    classifier = Classifier.of({"database": ["postgres"]}, {Severity.SEV1: ["outage"]})
    route = RouteRule(name="pg", matchers=(parse_matcher('db="main"'),), severity=Severity.SEV2)
    by_route = decide(
        [route],
        classifier,
        alert(title="Postgres outage", labels={"db": "main"}, severity=Severity.SEV4),
        integration="x",
    )
    assert (by_route.severity_value, by_route.category and by_route.category.by) == (
        Severity.SEV2,
        "classifier keyword 'Postgres'",
    )
    by_label = decide(
        [route], classifier, alert(title="outage", severity=Severity.SEV4), integration="x"
    )
    assert by_label.severity is not None and by_label.severity.by == "label severity"
    by_words = decide([route], classifier, alert(title="Total OUTAGE now"), integration="x")
    assert by_words.severity_value is Severity.SEV1
    assert decide([route], classifier, alert(title="outages"), integration="x").severity is None


def test_groups_are_the_same_only_for_equal_group_by_values() -> None:
    rule = RouteRule(name="nodes", matchers=(), group_by=("cluster",))
    one = decide([rule], Classifier(), alert(labels={"cluster": "eu"}), integration="a")
    two = decide([rule], Classifier(), alert(labels={"cluster": "eu", "x": "y"}), integration="b")
    three = decide([rule], Classifier(), alert(labels={"cluster": "us"}), integration="a")
    assert one.group and two.group and three.group
    assert one.group.key == two.group.key != three.group.key
