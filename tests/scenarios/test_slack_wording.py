"""What people read in Slack says the same thing the same way everywhere."""

from __future__ import annotations

import pytest

from tests.conftest import Harness
from tests.helpers import all_text, fire_named, reply_text

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)


@BOTH
async def test_a_refusal_names_the_monitor_as_the_timeline_does(harness: Harness) -> None:
    incident_id = await fire_named(harness, "DiskFull")
    await harness.settle()
    await fire_named(harness, "DiskFull", status="resolved")
    await harness.settle()
    assert (await harness.incident(incident_id))["resolved_by"] == "monitor:prometheus"
    result = await harness.emu.command(
        user="U0ALICE01", channel="C0INCIDENT", command="/incident", text=f"ack {incident_id}"
    )
    refusal = reply_text(result)
    assert "already resolved by the monitor (prometheus), so it cannot be" in refusal, refusal
    assert "monitor:prometheus" not in refusal


async def test_the_graph_link_is_not_a_second_source(harness: Harness) -> None:
    incident_id = await fire_named(harness, "Latency")
    await harness.settle()
    incident = await harness.incident(incident_id)
    [message] = [
        m
        for m in harness.emu.messages(incident["slack"]["channel_id"])
        if m["ts"] == incident["slack"]["message_ts"]
    ]
    text = all_text(message)
    assert "Source: prometheus" in text and "|Graph>" in text and "|Source>" not in text
