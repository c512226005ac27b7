"""The App Home tab through the running app: app_home_opened in, views.publish out, buttons."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from bot.clock import ManualClock
from bot.config import PulseOpsConfig
from bot.domain import Resolve
from bot.domain.dashboard import Dashboard, WeekStats
from bot.domain.durations import human_seconds
from bot.domain.incident import Severity
from bot.domain.insight import Distribution, Figures
from bot.domain.records import Incident
from bot.render import Names, Renderer
from bot.render.home import HomeBlock, HomeRenderer
from bot.sandbox.emulator import rules
from bot.services.home import HomeService
from bot.slack.ids import Action
from bot.slack.ratelimit import TokenBucket
from tests.conftest import Harness, alertmanager_payload
from tests.helpers import (
    WEDNESDAY,
    click,
    eventually,
    fire,
    fire_named,
    make_incident,
    oncall_config,
    reply_text,
    wait_for_status,
)

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)

ALICE, BOB, CAROL = "U0ALICE01", "U0BOB0001", "U0CAROL01"  # BOB is on call on WEDNESDAY


@pytest.fixture
def config() -> PulseOpsConfig:
    return oncall_config()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(WEDNESDAY)


@pytest.fixture
def home(harness: Harness) -> HomeService:
    """The app's Home service with test-sized timings (real ones are seconds)."""
    service = harness.deps.home
    service.debounce = 0.05
    service.min_interval = 0.0
    service.stats_ttl = 0.0
    service.followup = 0.2
    return service


# ---- helpers -----------------------------------------------------------------------------


def refreshes(harness: Harness) -> float:
    """How many Home tab renders finished (published, unchanged or failed)."""
    registry = harness.deps.metrics.registry
    total = 0.0
    for metric in registry.collect():
        if metric.name == "pulseops_home_publishes":
            total += sum(s.value for s in metric.samples if s.name.endswith("_total"))
    return total


async def open_home(harness: Harness, user: str) -> dict[str, Any]:
    """`user` opens the Home tab; wait for the bot's answer and return the published view."""
    before = refreshes(harness)
    result = await harness.emu.open_home(user=user)
    assert result["status"] == 200, result
    await eventually(lambda: refreshes(harness) > before)
    await harness.deps.home.wait_idle()
    return harness.emu.home_views[user]


def publishes(harness: Harness, user: str | None = None) -> list[dict[str, Any]]:
    return [
        c
        for c in harness.emu.calls_to("views.publish")
        if user is None or c["args"].get("user_id") == user
    ]


def block(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    (found,) = [b for b in view["blocks"] if b.get("block_id") == block_id]
    return found


def has_block(view: dict[str, Any], block_id: str) -> bool:
    return any(b.get("block_id") == block_id for b in view["blocks"])


def text(view: dict[str, Any], block_id: str) -> str:
    return str(block(view, block_id)["text"]["text"])


def buttons(view: dict[str, Any], block_id: str) -> list[str]:
    return [e["action_id"] for e in block(view, block_id)["elements"]]


# ---- opening the Home tab ----------------------------------------------------------------


@BOTH
async def test_home_shows_your_incidents_all_open_ones_oncall_and_the_week(
    harness: Harness, home: HomeService
) -> None:
    incident_id = await fire(harness, summary="Checkout <!channel> & errors")
    harness.clock.advance(1)  # the week is [now - 7 d, now), as `/incident stats 7d` counts
    view = await open_home(harness, BOB)
    assert view["type"] == "home"
    assert not rules.validate_view(view, allowed_types=frozenset({"home"}))
    assert not has_block(view, HomeBlock.SLOS_TITLE)  # no `slos` configured: no section
    # BOB was paged (he is on call): the incident is his, with the channel message's buttons
    mine = text(view, f"{HomeBlock.MINE}_{incident_id}")
    assert f"*INC-{incident_id}*" in mine and "SEV1" in mine and "_you were paged_" in mine
    assert "&lt;!channel&gt; &amp; errors" in mine and "<!channel>" not in json.dumps(view)
    assert buttons(view, f"{HomeBlock.MINE}_{incident_id}_actions") == [
        Action.ACKNOWLEDGE,
        Action.RESOLVE,
        Action.ESCALATE,
    ]
    channel_id = (await harness.incident(incident_id))["slack"]["channel_id"]
    assert f"<#{channel_id}>" in mine
    # every open incident, by severity
    assert text(view, f"{HomeBlock.SEVERITY}_SEV1") == "*SEV1* · 1 open"
    assert has_block(view, f"{HomeBlock.OPEN}_{incident_id}_actions")
    # who is on call, per team, as /oncall says it
    oncall = text(view, f"{HomeBlock.ONCALL}_0")
    assert "*Payments*" in oncall and f"<@{BOB}> is on call" in oncall
    week = text(view, HomeBlock.WEEK)
    assert "*1* incident triggered in the last 7 days, *1* open now" in week
    assert "none acknowledged yet" in week

    # CAROL has nothing to do with it: her own section says so, the open list still shows it
    carol = await open_home(harness, CAROL)
    assert "Nothing needs you" in text(carol, HomeBlock.MINE_EMPTY)
    assert has_block(carol, f"{HomeBlock.OPEN}_{incident_id}")
    assert [c["args"]["user_id"] for c in publishes(harness)] == [BOB, CAROL]


async def test_the_messages_tab_and_unchanged_views_publish_nothing(
    harness: Harness, home: HomeService
) -> None:
    await fire(harness)
    await open_home(harness, ALICE)
    assert len(publishes(harness, ALICE)) == 1
    # opened again with the view we published still shown: nothing new to send
    await open_home(harness, ALICE)
    assert len(publishes(harness, ALICE)) == 1
    # the Messages tab is not the Home tab
    event = {"type": "app_home_opened", "user": ALICE, "channel": "D1", "tab": "messages"}
    result = await harness.emu.driver.send_event(event)
    assert result["status"] == 200
    await asyncio.sleep(0.1)
    await home.wait_idle()
    assert len(publishes(harness, ALICE)) == 1


async def test_declared_and_acknowledged_incidents_are_yours(
    harness: Harness, home: HomeService
) -> None:
    declared = await harness.deps.incidents.declare(
        title="Disk full on db-3",
        severity=Severity.SEV3,
        service_id="search-api",
        description="",
        by=CAROL,
    )
    paged = await fire(harness)
    view = await open_home(harness, CAROL)
    assert "_you declared it_" in text(view, f"{HomeBlock.MINE}_{declared.id}")
    assert not has_block(view, f"{HomeBlock.MINE}_{paged}")
    # most severe first in the open list
    ids = [b["block_id"] for b in view["blocks"] if b.get("type") == "section"]
    assert ids.index(f"{HomeBlock.OPEN}_{paged}") < ids.index(f"{HomeBlock.OPEN}_{declared.id}")
    assert ids.index(f"{HomeBlock.SEVERITY}_SEV1") < ids.index(f"{HomeBlock.SEVERITY}_SEV3")

    # CAROL acknowledges the page BOB got (from the channel): now it is hers as well
    harness.clock.advance(90)
    await click(harness, paged, Action.ACKNOWLEDGE, user=CAROL)
    await eventually(lambda: has_block(harness.emu.home_views[CAROL], f"{HomeBlock.MINE}_{paged}"))
    await home.wait_idle()
    view = harness.emu.home_views[CAROL]
    mine = text(view, f"{HomeBlock.MINE}_{paged}")
    assert "_you acknowledged it_" in mine and f"acknowledged by <@{CAROL}>" in mine
    # acknowledged: no Acknowledge button any more (Escalate still pages the next level)
    assert buttons(view, f"{HomeBlock.MINE}_{paged}_actions") == [
        Action.RESOLVE,
        Action.ESCALATE,
    ]
    # the week counts what happened before now, as `/incident stats 7d` does: the clock stands
    # still at the acknowledgement, so the refresh after it moves on shows it
    assert "none acknowledged yet" in text(view, HomeBlock.WEEK)
    harness.clock.advance(1)
    home.changed()
    await eventually(
        lambda: "acknowledged yet" not in text(harness.emu.home_views[CAROL], HomeBlock.WEEK)
    )
    await home.wait_idle()
    assert "MTTA* (time to acknowledge): median 1m 30s, mean 1m 30s over 1 acknowledged" in (
        text(harness.emu.home_views[CAROL], HomeBlock.WEEK)
    )


# ---- the same figures everywhere ---------------------------------------------------------


@BOTH
async def test_home_slash_stats_and_the_api_show_the_same_median(
    harness: Harness, home: HomeService
) -> None:
    """Acknowledged after 60, 120, 180 and 240 s: the nearest-rank median is 120 s (an
    interpolating median would say 150 s), and every place that shows MTTA says so."""
    start = harness.clock.now()
    ids = [await fire_named(harness, f"Checkout{n}") for n in range(4)]
    await harness.settle()
    for n, incident_id in enumerate(ids, start=1):
        harness.clock.set(start + timedelta(seconds=60 * n))
        await click(harness, incident_id, Action.ACKNOWLEDGE, user=ALICE)
        await wait_for_status(harness, incident_id, "acknowledged")
    harness.clock.set(start + timedelta(minutes=10))

    week = text(await open_home(harness, ALICE), HomeBlock.WEEK)
    assert "*4* incidents triggered in the last 7 days" in week
    assert "median 2m 0s, mean 2m 30s over 4 acknowledged" in week

    result = await harness.emu.command(
        user=ALICE, channel="C0PAYMENTS", command="/incident", text="stats 7d"
    )
    assert result["status"] == 200, result
    stats = reply_text(result)
    assert "*MTTA*: median *2m 0s* · mean 2m 30s · p90 4m 0s (4 acknowledged)" in stats

    status, body = await harness.get("/api/v1/stats")
    assert status == 200, body
    assert body["overall"]["mtta_seconds"] == {
        "count": 4,
        "mean": 150.0,
        "median": 120.0,
        "p90": 240.0,
    }


# ---- buttons -----------------------------------------------------------------------------


async def test_home_buttons_act_like_the_channel_buttons(
    harness: Harness, home: HomeService
) -> None:
    incident_id = await fire(harness)
    view = await open_home(harness, BOB)
    actions = f"{HomeBlock.MINE}_{incident_id}_actions"
    result = await harness.emu.click(
        user=BOB, action_id=Action.ACKNOWLEDGE, view_id=view["id"], block_id=actions
    )
    assert result["status"] == 200
    await eventually(
        lambda: buttons(harness.emu.home_views[BOB], actions) == [Action.RESOLVE, Action.ESCALATE]
    )
    incident = await harness.incident(incident_id)
    assert incident["status"] == "acknowledged" and incident["acknowledged_by"] == BOB
    await harness.settle()  # the channel message follows as it does for a channel click
    message = harness.emu.messages(incident["slack"]["channel_id"])[0]
    assert Action.ACKNOWLEDGE not in json.dumps(message["blocks"])

    # Escalate answers on the Home tab itself (a view has no response_url)
    await home.wait_idle()
    result = await harness.emu.click(
        user=BOB, action_id=Action.ESCALATE, view_id=view["id"], block_id=actions
    )
    assert result["status"] == 200
    await eventually(lambda: has_block(harness.emu.home_views[BOB], HomeBlock.NOTICE))
    await home.wait_idle()
    notice = text(harness.emu.home_views[BOB], HomeBlock.NOTICE)
    assert notice == f"Paged level 2 of payments-default for INC-{incident_id}."


async def test_a_stale_home_button_explains_on_the_home_tab(
    harness: Harness, home: HomeService
) -> None:
    incident_id = await fire(harness)
    view = await open_home(harness, BOB)
    # BOB's tab is not refreshed by the change below on its own
    home.min_interval, home.followup = 3600, None
    await harness.deps.incidents.transition(incident_id=incident_id, command=Resolve(by=ALICE))
    result = await harness.emu.click(
        user=BOB,
        action_id=Action.RESOLVE,
        view_id=view["id"],
        block_id=f"{HomeBlock.MINE}_{incident_id}_actions",
    )
    assert result["status"] == 200
    await eventually(lambda: has_block(harness.emu.home_views[BOB], HomeBlock.NOTICE))
    await home.wait_idle()
    fresh = harness.emu.home_views[BOB]
    assert f"is already resolved by <@{ALICE}>" in text(fresh, HomeBlock.NOTICE)
    assert not has_block(fresh, f"{HomeBlock.MINE}_{incident_id}")  # and the tab is current
    assert has_block(fresh, HomeBlock.OPEN_EMPTY)


# ---- refreshing --------------------------------------------------------------------------


async def test_changes_refresh_recent_viewers_debounced_and_throttled(
    harness: Harness, home: HomeService
) -> None:
    await open_home(harness, ALICE)
    await open_home(harness, BOB)
    home.debounce = 0.5
    # a burst of five new incidents: one refresh per viewer, not five
    results = await asyncio.gather(
        *(
            harness.post_alert(
                alertmanager_payload(fingerprint=f"f{n:015d}", alertname=f"A{n}", group_key=f"g{n}")
            )
            for n in range(5)
        )
    )
    assert [status for status, _ in results] == [202] * 5
    await harness.settle()
    await eventually(lambda: len(publishes(harness, ALICE)) == len(publishes(harness, BOB)) == 2)
    await home.wait_idle()
    # (a follow-up look may add the incident channels the outbox opened meanwhile)
    assert 2 <= len(publishes(harness, ALICE)) <= 3 and 2 <= len(publishes(harness, BOB)) <= 3
    assert text(harness.emu.home_views[ALICE], f"{HomeBlock.SEVERITY}_SEV1") == "*SEV1* · 5 open"
    # CAROL never opened the Home tab: nothing is published for her
    assert publishes(harness, CAROL) == []

    # a steady stream of changes: at most one publish per user per min_interval
    home.debounce, home.min_interval = 0.0, 0.5
    published = len(publishes(harness, BOB))
    for n in range(5, 10):
        await fire(harness, fingerprint=f"f{n:015d}", alertname=f"A{n}", group_key=f"g{n}")
        await asyncio.sleep(0.1)
    await home.wait_idle()
    times = [c["at"] for c in publishes(harness, BOB)][published - 1 :]
    assert len(times) >= 3
    assert all(later - earlier >= 0.45 for earlier, later in zip(times, times[1:], strict=False))
    assert text(harness.emu.home_views[BOB], f"{HomeBlock.SEVERITY}_SEV1") == "*SEV1* · 10 open"

    # a repeat of a firing alert changes nothing shown: renders, but no publish
    await home.poll()  # (what the periodic job does) every tab is current now
    await home.wait_idle()
    before = len(publishes(harness))
    await fire(harness, fingerprint=f"f{0:015d}", alertname="A0", group_key="g0")
    await asyncio.sleep(0.4)
    await home.wait_idle()
    assert len(publishes(harness)) == before

    # viewers are forgotten after viewer_ttl: later changes publish nothing
    harness.clock.advance(timedelta(hours=13))
    await home.poll()
    assert home.viewers == []
    await fire(harness, fingerprint="f999", alertname="Late", group_key="late")
    await asyncio.sleep(0.4)
    assert len(publishes(harness)) == before


async def test_publish_failures_are_retried_or_dropped_never_raised(
    harness: Harness, home: HomeService
) -> None:
    await fire(harness)
    # Slack 5xx beyond the gateway's own retries: the Home service tries again later
    harness.emu.set_faults(error_status=503, error_count=3, methods=["views.publish"])
    before = refreshes(harness)
    await harness.emu.open_home(user=ALICE)
    await eventually(lambda: ALICE in harness.emu.home_views, timeout=15)
    await home.wait_idle()
    assert refreshes(harness) > before
    assert [c["response"].get("ok") for c in publishes(harness, ALICE)][-1] is True
    # a fatal error is logged and counted; the next open publishes again
    harness.emu.set_faults(error_status=400, error_count=1, methods=["views.publish"])
    harness.emu.home_views.pop(ALICE)
    await open_home_until_failed(harness, ALICE)
    samples = {
        s.labels["result"]: s.value
        for m in harness.deps.metrics.registry.collect()
        if m.name == "pulseops_home_publishes"
        for s in m.samples
        if s.name.endswith("_total")
    }
    assert samples.get("invalid_request") == 1
    view = await open_home(harness, ALICE)
    assert view["type"] == "home"


async def open_home_until_failed(harness: Harness, user: str) -> None:
    before = refreshes(harness)
    await harness.emu.open_home(user=user)
    await eventually(lambda: refreshes(harness) > before)
    await harness.deps.home.wait_idle()


# ---- pure parts: rendering limits, rate limiting, statistics ----------------------------


def dashboard(incidents: list[Incident], *, total: int | None = None) -> Dashboard:
    return Dashboard(
        generation=1,
        open=tuple(incidents),
        open_total=len(incidents) if total is None else total,
        paged={i.id: frozenset({BOB}) for i in incidents},
        oncall=(),
        week=WeekStats.of(Figures()),
    )


def home_renderer() -> HomeRenderer:
    names = Names(services={"payment-api": "Payment API"}, teams={"payments": "Payments"})
    return HomeRenderer(Renderer(names, escalatable=lambda _: True))


def test_a_crowded_home_tab_fits_in_100_blocks_and_says_what_it_left_out() -> None:
    incidents = [
        make_incident(n, severity=[Severity.SEV1, Severity.SEV2][n % 2]) for n in range(1, 151)
    ]
    view = home_renderer().home_view(
        dashboard(incidents, total=400), user=BOB, notice=":warning: something"
    )
    assert len(view["blocks"]) <= 100
    assert rules.validate_view(view, allowed_types=frozenset({"home"})) == []
    assert block(view, HomeBlock.MINE_MORE)["elements"][0]["text"].startswith("… and 140 more")
    shown_ids = [
        b["block_id"]
        for b in view["blocks"]
        if re.fullmatch(rf"{HomeBlock.OPEN}_\d+", str(b.get("block_id", "")))
    ]
    assert len(shown_ids) > 25  # the open list gets the room the other sections leave
    more = block(view, HomeBlock.OPEN_MORE)["elements"][0]["text"]
    assert more == (
        f"… and {400 - len(shown_ids)} more open incidents (`/incident list` lists them all)"
    )
    assert "<!here>" not in json.dumps(view) and "&lt;!here&gt;" in json.dumps(view)


def test_an_empty_home_tab() -> None:
    view = home_renderer().home_view(dashboard([]), user=BOB)
    assert rules.validate_view(view, allowed_types=frozenset({"home"})) == []
    assert "No open incidents" in text(view, HomeBlock.OPEN_EMPTY)
    assert "No on-call schedules are configured" in text(view, f"{HomeBlock.ONCALL}_0")
    assert "No incidents were triggered in the last 7 days" in text(view, HomeBlock.WEEK)


def test_the_week_on_the_home_tab_is_the_figures_of_the_last_seven_days() -> None:
    figures = Figures(
        opened=5,
        acknowledged=3,
        resolved=2,
        mtta=Distribution(count=3, mean=260.0, median=120.0, p90=600.0),
        mttr=Distribution(count=2, mean=1800.0, median=600.0, p90=3000.0),
    )
    assert WeekStats.of(figures) == WeekStats(
        incidents=5,
        acknowledged=3,
        resolved=2,
        mtta_median=120.0,
        mtta_mean=260.0,
        mttr_median=600.0,
        mttr_mean=1800.0,
    )
    week = text(
        home_renderer().home_view(
            replace(dashboard([]), week=WeekStats.of(figures), open_total=2), user=BOB
        ),
        HomeBlock.WEEK,
    )
    assert week == (
        "*5* incidents triggered in the last 7 days, *2* open now.\n"
        "*MTTA* (time to acknowledge): median 2m 0s, mean 4m 20s over 3 acknowledged\n"
        "*MTTR* (time to resolve): median 10m 0s, mean 30m 0s over 2 resolved"
    )
    assert [human_seconds(s) for s in (42, 252, 11100, 187200, None)] == [
        "42s",
        "4m 12s",
        "3h 5m",
        "2d 4h",
        "—",
    ]


def test_token_bucket_bursts_then_keeps_the_rate_and_pauses_on_429() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=1.0, burst=3, monotonic=lambda: now[0])
    for _ in range(3):
        assert bucket.wait_time() == 0.0
        bucket.take()
    assert bucket.wait_time() == pytest.approx(1.0)
    now[0] = 0.5
    assert bucket.wait_time() == pytest.approx(0.5)
    now[0] = 1.0
    assert bucket.wait_time() == 0.0
    bucket.take()
    bucket.pause(30)  # Retry-After: 30
    now[0] = 20.0
    assert bucket.wait_time() == pytest.approx(12.0)  # 11 s of pause, then one token's time
    now[0] = 32.0
    assert bucket.wait_time() == 0.0
