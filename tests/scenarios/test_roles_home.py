"""App Home: a Declare button, and one's own click redraws one's tab at once (the refresh
limits, real-sized here, hold back only other people's changes)."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.clock import ManualClock
from bot.config import PulseOpsConfig
from bot.render.home import HomeBlock
from bot.slack.ids import Action
from tests.conftest import Harness
from tests.helpers import WEDNESDAY, dms, eventually, fire, oncall_config
from tests.scenarios.test_home import buttons, open_home

pytestmark = pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)

BOB, CAROL = "U0BOB0001", "U0CAROL01"  # BOB is on call on WEDNESDAY


@pytest.fixture
def config() -> PulseOpsConfig:
    return oncall_config()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(WEDNESDAY)


async def test_own_click_on_the_home_tab_redraws_it_at_once(harness: Harness) -> None:
    home = harness.deps.home
    assert (home.debounce, home.min_interval) == (2.0, 10.0)  # the real limits
    incident_id = await fire(harness)
    view = await open_home(harness, BOB)
    actions = f"{HomeBlock.MINE}_{incident_id}_actions"
    assert Action.ACKNOWLEDGE in buttons(view, actions)
    started = time.monotonic()
    result = await harness.emu.click(
        user=BOB, action_id=Action.ACKNOWLEDGE, view_id=view["id"], block_id=actions
    )
    assert result["status"] == 200
    await eventually(
        lambda: Action.ACKNOWLEDGE not in buttons(harness.emu.home_views[BOB], actions),
        timeout=5.0,
    )
    # others' changes wait for the debounce (2 s) and the per-person limit (10 s)
    assert time.monotonic() - started < home.debounce / 2
    assert (await harness.incident(incident_id))["status"] == "acknowledged"


async def test_declare_from_the_home_tab(harness: Harness) -> None:
    view = await open_home(harness, CAROL)
    assert buttons(view, HomeBlock.DECLARE) == [Action.DECLARE]
    result = await harness.emu.click(
        user=CAROL, action_id=Action.DECLARE, view_id=view["id"], block_id=HomeBlock.DECLARE
    )
    assert result["status"] == 200
    for _ in range(100):
        forms = [(i, v) for i, v in harness.emu.views.items() if v.get("type") == "modal"]
        if forms:
            break
        await asyncio.sleep(0.02)
    ((view_id, form),) = forms
    assert form["callback_id"] == "incident_declare"
    await harness.emu.submit_view(
        user=CAROL,
        view_id=view_id,
        values={
            "declare_title": {"title": "Checkout slow"},
            "declare_severity": {"severity": "SEV2"},
        },
    )
    for _ in range(100):
        _, listing = await harness.get("/api/v1/incidents")
        if listing["total"]:
            break
        await asyncio.sleep(0.02)
    await harness.settle()
    incident = await harness.incident(listing["incidents"][0]["id"])
    assert incident["created_by"] == CAROL
    # no channel to answer in: the link comes by DM
    links = [m["text"] for m in dms(harness, CAROL) if "You declared" in m["text"]]
    assert links == [
        f":rotating_light: You declared {incident['number']}: its channel is "
        f"<#{incident['slack']['channel_id']}>."
    ]
