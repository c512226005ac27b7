"""Silences and maintenance windows, pure: state over time, what holds an alert, open windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from bot.config import parse_config
from bot.domain.matchers import matches_all, parse_matchers
from bot.domain.silences import OpenWindow, Silence, SilenceState, holding, selective
from tests.conftest import CONFIG_YAML

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def silence(
    matchers: list[str], *, id: int = 1, start: int = 0, end: int = 60, **extra: object
) -> Silence:
    return Silence(
        id=id,
        matchers=parse_matchers(matchers),
        starts_at=T0 + timedelta(minutes=start),
        ends_at=T0 + timedelta(minutes=end),
        comment="deploy",
        created_by="U0ALICE01",
        created_at=T0,
        **extra,  # type: ignore[arg-type]
    )


def test_state_over_time() -> None:
    s = silence(['env="prod"'], start=10, end=20)
    assert s.state(T0) is SilenceState.PENDING
    assert s.state(T0 + timedelta(minutes=10)) is SilenceState.ACTIVE
    assert s.state(T0 + timedelta(minutes=20)) is SilenceState.EXPIRED
    gone = silence(['env="prod"'], expired_at=T0, expired_by="U0BOB0001")
    assert gone.state(T0 + timedelta(minutes=1)) is SilenceState.EXPIRED
    assert s.hold.by == "silence #1 (by U0ALICE01: deploy)"


def test_the_longest_hold_wins_and_windows_hold_too() -> None:
    labels = {"service": "payment-api", "env": "prod"}
    short = silence(['env="prod"'], id=1, end=10)
    long = silence(['service="payment-api"'], id=2, end=30)
    window = OpenWindow("nightly", parse_matchers(['env="prod"']), T0, T0 + timedelta(minutes=90))
    assert holding(labels, silences=[short, long], windows=[], now=T0).silence_id == 2  # type: ignore[union-attr]
    held = holding(labels, silences=[short, long], windows=[window], now=T0)
    assert held is not None and held.window == "nightly" and held.by == "maintenance window nightly"
    assert holding({"env": "dev"}, silences=[short, long], windows=[window], now=T0) is None


def test_a_silence_must_not_match_everything() -> None:
    assert not selective(parse_matchers(['env=~".*"', 'team!="x"']))
    assert selective(parse_matchers(['env=~".*"', 'team="x"']))


VALUES = st.sampled_from(["", "prod", "staging", "payment-api", "Disk", "DiskFull"])
LABELS = st.dictionaries(st.sampled_from(["env", "service", "alertname"]), VALUES, max_size=3)
MATCHERS = st.lists(
    st.sampled_from(
        [
            'env="prod"',
            'env!="prod"',
            'service=~"payment.*"',
            'alertname!~"Disk.*"',
            'alertname=~"Disk|CPU"',
            'env=""',
        ]
    ),
    min_size=1,
    max_size=3,
)


@given(matchers=MATCHERS, labels=LABELS)
def test_a_silence_holds_exactly_what_its_matchers_match(
    matchers: list[str], labels: dict[str, str]
) -> None:
    s = silence(matchers)
    held = holding(labels, silences=[s], windows=[], now=T0 + timedelta(minutes=1))
    assert (held is not None) is matches_all(parse_matchers(matchers), labels)


def test_window_open_at_follows_its_time_zone_and_dst() -> None:
    config = parse_config(
        CONFIG_YAML
        + """
maintenance_windows:
  - name: saturday-db-maintenance
    matchers: ['service="payment-api"']
    cron: "0 2 * * 6"
    duration: 2h
    time_zone: Europe/Berlin
""",
        environ={},
    )
    (window,) = config.maintenance_windows
    winter = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)  # 02:00 in Berlin (UTC+1)
    assert window.open_at(winter - timedelta(seconds=1)) is None
    start, end = window.open_at(winter)  # type: ignore[misc]
    assert (start, end) == (winter, winter + timedelta(hours=2))
    assert window.open_at(winter + timedelta(hours=2)) is None
    summer = datetime(2026, 6, 27, 0, 30, tzinfo=UTC)  # 02:30 in Berlin (UTC+2)
    assert window.open_at(summer) is not None
    assert window.open_at(summer + timedelta(hours=1, minutes=30)) is None  # 04:00 Berlin


def test_matchers_typed_on_one_line_are_split_one_per_matcher() -> None:
    from bot.domain.silences import split_matchers

    assert split_matchers('service="payment-api" __title__="disk full"  env!=prod') == [
        'service="payment-api"',
        '__title__="disk full"',
        "env!=prod",
    ]
    assert split_matchers('{env="prod", team=~"db|ops"}') == ['env="prod"', 'team=~"db|ops"']
    assert split_matchers('a="x \\" y" what?') == ['a="x \\" y"', "what?"]
    assert split_matchers("") == []
