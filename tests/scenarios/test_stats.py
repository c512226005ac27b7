"""Statistics through the running app: MTTA/MTTR and counts by hand, the JSON API, /incident stats.

Incidents are opened by webhooks and acknowledged by clicks while a ManualClock is stepped, so
every duration is exact and the figures can be checked by hand.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.clock import ManualClock
from bot.config import PulseOpsConfig
from bot.domain.durations import human_seconds
from bot.domain.incident import Severity, Status
from bot.render.report import mrkdwn_to_text
from store.models import IncidentRow
from store.stats import StatsRepository, Window
from tests.conftest import Harness
from tests.helpers import click, fire_named, oncall_config, reply_text, wait_for_status

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday


@pytest.fixture
def config() -> PulseOpsConfig:
    return oncall_config(first="5m", second="10m")  # payments pages level 2 after 5 minutes


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


def iso(instant: datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")


async def seed(harness: Harness) -> dict[str, int]:
    """Five incidents at T0: A, B, C acknowledged after 60, 120 and 300 s; A resolved by a
    click at +600 s, B by its monitor at +900 s; D (search) untouched; E escalated."""
    assert isinstance(harness.clock, ManualClock)
    ids = {
        "A": await fire_named(
            harness, "CheckoutErrors", summary="Checkout <!channel> errors & more"
        ),
        "B": await fire_named(harness, "LedgerLag", severity="error"),
        "C": await fire_named(harness, "CardDeclines"),
        "E": await fire_named(harness, "FraudQueue"),
    }
    status, body = await harness.post_alert(
        {"title": "Search slow", "severity": "SEV3", "dedup_key": "search-slow"},
        integration="generic",
    )
    assert status == 202, body
    ids["D"] = int(body["results"][0]["incident_id"])
    # the same alert repeats: the noisiest
    for _ in range(3):
        await fire_named(harness, "CheckoutErrors", summary="Checkout <!channel> errors & more")
    await harness.settle()
    for at, name, user in (
        (60, "A", "U0ALICE01"),
        (120, "B", "U0BOB0001"),
        (300, "C", "U0BOB0001"),
    ):
        harness.clock.set(T0 + timedelta(seconds=at))
        await click(harness, ids[name], "incident_acknowledge", user=user)
        await wait_for_status(harness, ids[name], "acknowledged")
    harness.clock.set(T0 + timedelta(seconds=310))
    assert await harness.deps.escalations.sweep() == 1  # E, the only one unacknowledged
    harness.clock.set(T0 + timedelta(seconds=600))
    await click(harness, ids["A"], "incident_resolve", user="U0ALICE01")
    await wait_for_status(harness, ids["A"], "resolved")
    harness.clock.set(T0 + timedelta(seconds=900))
    await fire_named(harness, "LedgerLag", severity="error", status="resolved")
    await harness.settle()
    return ids


async def stats(harness: Harness, query: str) -> dict[str, Any]:
    status, body = await harness.get(f"/api/v1/stats?{query}")
    assert status == 200, body
    return body  # type: ignore[no-any-return]


def window(until: datetime, since: datetime = T0 - timedelta(hours=1)) -> str:
    return f"since={iso(since)}&until={iso(until)}"


@BOTH
async def test_figures_by_hand(harness: Harness) -> None:
    await seed(harness)
    body = await stats(harness, window(T0 + timedelta(hours=1)))
    overall = body["overall"]
    assert {k: v for k, v in overall.items() if not k.endswith("_seconds")} == {
        "opened": 5,
        "acknowledged": 3,
        "resolved": 2,
        "still_open": 3,
        "auto_resolved": 1,
        "escalated": 1,
    }
    assert overall["mtta_seconds"] == {"count": 3, "mean": 160.0, "median": 120.0, "p90": 300.0}
    assert overall["mttr_seconds"] == {"count": 2, "mean": 750.0, "median": 600.0, "p90": 900.0}
    assert body["since"] == iso(T0 - timedelta(hours=1)) and body["groups"] == []
    assert body["incidents_per_service"] == [
        {"service": "payment-api", "name": "Payment API", "incidents": 4},
        {"service": "search-api", "name": "Search API", "incidents": 1},
    ]
    noisiest = body["noisiest_alerts"][0]
    assert noisiest["fingerprint"] == "CheckoutErrors" and noisiest["notifications"] == 4
    assert noisiest["title"] == "Checkout <!channel> errors & more"  # JSON is not mrkdwn
    assert body["alerts_total"] == 5


@BOTH
async def test_figures_are_as_of_the_end_of_the_period(harness: Harness) -> None:
    await seed(harness)
    # at +200 s only A and B were acknowledged; nothing was resolved or escalated yet
    overall = (await stats(harness, window(T0 + timedelta(seconds=200))))["overall"]
    assert (overall["acknowledged"], overall["resolved"], overall["escalated"]) == (2, 0, 0)
    assert overall["mtta_seconds"] == {"count": 2, "mean": 90.0, "median": 60.0, "p90": 120.0}
    assert overall["mttr_seconds"] == {"count": 0, "mean": None, "median": None, "p90": None}
    # a window the incidents were not opened in has none of them
    overall = (await stats(harness, window(T0, since=T0 - timedelta(days=7))))["overall"]
    assert overall["opened"] == 0 and overall["mtta_seconds"]["median"] is None


async def test_group_by_service_team_and_severity(harness: Harness) -> None:
    await seed(harness)
    q = window(T0 + timedelta(hours=1))
    teams = {g["key"]: g for g in (await stats(harness, q + "&group_by=team"))["groups"]}
    assert set(teams) == {"payments", "search"}
    assert teams["payments"]["name"] == "Payments" and teams["payments"]["opened"] == 4
    assert teams["payments"]["mtta_seconds"]["median"] == 120.0
    assert teams["search"] == {
        "key": "search",
        "name": "Search",
        "opened": 1,
        "acknowledged": 0,
        "resolved": 0,
        "still_open": 1,
        "auto_resolved": 0,
        "escalated": 0,
        "mtta_seconds": {"count": 0, "mean": None, "median": None, "p90": None},
        "mttr_seconds": {"count": 0, "mean": None, "median": None, "p90": None},
    }
    severities = (await stats(harness, q + "&group_by=severity"))["groups"]
    assert [(g["key"], g["opened"]) for g in severities] == [("SEV1", 3), ("SEV2", 1), ("SEV3", 1)]
    sev1 = severities[0]  # A, C, E: acknowledged after 60 and 300 s
    assert sev1["mtta_seconds"] == {"count": 2, "mean": 180.0, "median": 60.0, "p90": 300.0}
    services = (await stats(harness, q + "&group_by=service"))["groups"]
    assert [(g["key"], g["name"], g["opened"]) for g in services] == [
        ("payment-api", "Payment API", 4),
        ("search-api", "Search API", 1),
    ]
    # filters narrow the cohort
    only = await stats(harness, q + "&team=search")
    assert only["overall"]["opened"] == 1 and only["team"] == "search"
    only = await stats(harness, q + "&service=payment-api&group_by=severity")
    assert only["overall"]["opened"] == 4 and len(only["groups"]) == 2


async def test_defaults_to_the_last_seven_days(harness: Harness) -> None:
    await fire_named(harness, "Recent")
    body = await stats(harness, "")
    assert body["until"] == iso(T0) and body["since"] == iso(T0 - timedelta(days=7))
    assert body["overall"]["opened"] == 0  # opened at T0: the window is [since, until)
    assert harness.clock.advance(1)
    body = await stats(harness, "group_by=team")
    assert body["overall"]["opened"] == 1 and body["groups"][0]["key"] == "payments"
    # a date alone is midnight UTC; an offset is honoured
    body = await stats(harness, "since=2026-11-25&until=2026-11-25T13:00:00%2B01:00")
    assert body["since"] == "2026-11-25T00:00:00Z" and body["until"] == "2026-11-25T12:00:00Z"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("since=yesterday", "since"),
        ("until=2026-13-01", "until"),
        ("since=2026-11-26&until=2026-11-25", "since"),
        ("since=2026-11-25&until=2026-11-25", "since"),
        ("group_by=owner", "group_by"),
        ("team=nope", "team"),
        ("service=nope", "service"),
        ("status=open", "status"),
    ],
)
async def test_bad_parameters_are_400_naming_the_field(
    harness: Harness, query: str, field: str
) -> None:
    status, body = await harness.get(f"/api/v1/stats?{query}")
    assert status == 400, body
    assert field in body["fields"], body
    assert body["error"]


async def command(harness: Harness, text: str, *, user: str = "U0ALICE01") -> str:
    result = await harness.emu.command(
        user=user, channel="C0PAYMENTS", command="/incident", text=text
    )
    assert result["status"] == 200, result
    return reply_text(result)


async def test_slash_stats_for_a_team_is_ephemeral(harness: Harness) -> None:
    await seed(harness)
    harness.clock.set(T0 + timedelta(hours=1))
    posted = len(harness.emu.messages("C0PAYMENTS"))
    text = await command(harness, "stats 7d payments")
    assert "*Incident stats: Payments*, last 7d" in text
    assert "Opened: *4*" in text and "resolved: *2*" in text and "still open: *2*" in text
    assert "Auto-resolved by a monitor: 1" in text and "escalated: 1" in text
    assert "*MTTA*: median *2m 0s* · mean 2m 40s · p90 5m 0s (3 acknowledged)" in text
    assert "*MTTR*: median *10m 0s* · mean 12m 30s · p90 15m 0s (2 resolved)" in text
    assert "*By severity*" in text and "• SEV1: 3 opened" in text
    assert "Checkout &lt;!channel&gt; errors &amp; more" in text and "<!channel>" not in text
    assert "Search slow" not in text  # another team's alert
    # nothing was posted for everyone: the answer is the command's own (ephemeral) response
    assert len(harness.emu.messages("C0PAYMENTS")) == posted
    # every team, grouped by team; the period and the team in either order
    text = await command(harness, "stats")
    assert "*Incident stats: all*, last 7d" in text and "Opened: *5*" in text
    assert "*By team*" in text and "• Payments: 4 opened" in text and "• Search: 1 opened" in text
    text = await command(harness, "stats search 30d")
    assert "*Incident stats: Search*, last 30d" in text and "Opened: *1*" in text
    assert "*MTTA*: — (nothing acknowledged)" in text


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ("stats banana", "Unknown team `banana`"),
        ("stats 7x", "`7x` is not a period"),
        ("stats 400d", "between 1h and 366d"),
        ("stats payments search", "at most one team"),
    ],
)
async def test_slash_stats_explains_bad_arguments(
    harness: Harness, args: str, expected: str
) -> None:
    text = await command(harness, args)
    assert text.startswith(":warning:") and expected in text, text
    assert "/incident stats [7d|30d] [team]" in text


async def test_help_lists_stats(harness: Harness) -> None:
    assert "`/incident stats [7d|30d] [team]`" in await command(harness, "help")


# ---- the SQL percentiles against a reference, on both backends ---------------------------


def nearest_rank(values: list[float], p: int) -> float:
    ordered = sorted(values)
    rank = max(1, -(-p * len(ordered) // 100))  # ceil(p·n/100)
    return ordered[rank - 1]


@BOTH
async def test_sql_percentiles_match_nearest_rank(harness: Harness) -> None:
    rng = random.Random(7)
    samples: dict[str, list[float]] = {"payments": [], "search": []}
    async with harness.deps.db.write() as session:
        for i in range(157):
            team = "payments" if i % 3 else "search"
            triggered = T0 + timedelta(seconds=rng.randrange(0, 86400))
            ack = round(rng.uniform(0.5, 7200), 3)
            samples[team].append(ack)
            session.add(
                IncidentRow(
                    title=f"load {i}",
                    status=Status.ACKNOWLEDGED.value,
                    severity=Severity.SEV2.value,
                    service_id=None,
                    team_id=team,
                    source="test",
                    integration=None,
                    dedup_key=None,
                    triggered_at=triggered,
                    acknowledged_at=triggered + timedelta(seconds=ack),
                    updated_at=triggered,
                    version=1,
                    labels={},
                    links={"items": []},
                )
            )
    async with harness.deps.db.read() as session:
        found = await StatsRepository(session).figures(
            window=Window(since=T0, until=T0 + timedelta(days=3)), group_by="team"
        )
    for team, values in samples.items():
        mtta = found[team].mtta
        assert mtta.count == len(values)
        assert mtta.median == pytest.approx(nearest_rank(values, 50), abs=0.002)
        assert mtta.p90 == pytest.approx(nearest_rank(values, 90), abs=0.002)
        assert mtta.mean == pytest.approx(sum(values) / len(values), abs=0.01)
    for n in (1, 2, 3, 10, 11):
        assert nearest_rank(list(range(1, n + 1)), 50) == (n + 1) // 2


def test_durations_read_like_people_write_them() -> None:
    assert [human_seconds(s) for s in (None, 0, 45, 120, 125.4, 3600 * 5 + 61, 86400 * 2.5)] == [
        "—",
        "0s",
        "45s",
        "2m 0s",
        "2m 5s",
        "5h 1m",
        "2d 12h",
    ]
    assert mrkdwn_to_text("*a* <#C1|inc-1> <@U1> &lt;!here&gt; &amp;") == "a #inc-1 @U1 <!here> &"
