"""Deliveries that share a group commit: a batch's repeats are counted in one statement, and
the outcome is what applying the deliveries one by one, in order, gives."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import Harness, alertmanager_payload

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True),
]


def alert(fingerprint: str, status: str = "firing", severity: str = "critical") -> dict[str, Any]:
    """One alert of a multi-alert delivery (the group of `alertmanager_payload`'s default)."""
    (one,) = alertmanager_payload(fingerprint=fingerprint, status=status, severity=severity)[
        "alerts"
    ]
    one["labels"]["instance"] = f"web-{fingerprint[-2:]}:9100"
    return dict(one)


def grouped(alerts: list[dict[str, Any]], group: str = "checkout") -> dict[str, Any]:
    return alertmanager_payload(alerts=alerts, group_key=f'{{}}:{{alertname="{group}"}}')


async def test_concurrent_repeats_are_each_counted_once(harness: Harness) -> None:
    opened = {}
    for n in range(3):
        _, body = await harness.post_alert(grouped([alert(f"f{n:015d}")], group=f"g{n}"))
        opened[n] = body["results"][0]["incident_id"]

    # ten repeats of each, all in flight at once: they share a few commits
    answers = await asyncio.gather(
        *(
            harness.post_alert(grouped([alert(f"f{n:015d}")], group=f"g{n}"))
            for _ in range(10)
            for n in range(3)
        )
    )
    for i, (status, body) in enumerate(answers):
        assert status == 202, body
        (result,) = body["results"]
        assert (result["outcome"], result["incident_id"]) == ("deduplicated", opened[i % 3])
    for incident_id in opened.values():
        incident = await harness.incident(incident_id)
        assert incident["alert_count"] == 11
        assert [a["occurrences"] for a in incident["alerts"]] == [11]
        assert [e["kind"] for e in incident["timeline"]] == ["triggered"]


async def test_one_delivery_is_applied_in_its_order(harness: Harness) -> None:
    _, first = await harness.post_alert(grouped([alert("a000000000000001")]))
    incident_id = first["results"][0]["incident_id"]
    _, second = await harness.post_alert(grouped([alert("b000000000000002")]))
    assert second["results"][0]["outcome"] == "grouped"

    status, body = await harness.post_alert(
        grouped(
            [
                alert("a000000000000001"),  # the same alert twice in one delivery
                alert("a000000000000001"),
                alert("b000000000000002", status="resolved"),
                alert("c000000000000003"),  # new in the group
                alert("a000000000000001", status="resolved"),
                alert("c000000000000003"),  # a repeat of the one this delivery added
            ]
        )
    )
    assert status == 202, body
    assert [r["outcome"] for r in body["results"]] == [
        "deduplicated",
        "deduplicated",
        "alert_resolved",
        "grouped",
        "alert_resolved",
        "deduplicated",
    ]
    assert {r["incident_id"] for r in body["results"]} == {incident_id}
    incident = await harness.incident(incident_id)
    alerts = {a["fingerprint"]: (a["status"], a["occurrences"]) for a in incident["alerts"]}
    assert alerts == {
        "a000000000000001": ("resolved", 3),
        "b000000000000002": ("resolved", 1),
        "c000000000000003": ("firing", 2),
    }
    assert incident["status"] == "triggered"  # c is still firing


async def test_a_fingerprint_in_two_groups_counts_on_each(harness: Harness) -> None:
    ids = []
    for group in ("east", "west"):
        _, body = await harness.post_alert(grouped([alert("d000000000000004")], group=group))
        ids.append(body["results"][0]["incident_id"])
    assert ids[0] != ids[1]

    answers = await asyncio.gather(
        *(
            harness.post_alert(grouped([alert("d000000000000004")], group=group))
            for group in ("east", "west", "east", "west")
        )
    )
    assert [body["results"][0]["incident_id"] for _, body in answers] == [*ids, *ids]
    assert {body["results"][0]["outcome"] for _, body in answers} == {"deduplicated"}
    for incident_id in ids:
        incident = await harness.incident(incident_id)
        assert [a["occurrences"] for a in incident["alerts"]] == [3]


async def test_a_repeat_with_another_severity_is_routed_again(harness: Harness) -> None:
    _, first = await harness.post_alert(grouped([alert("e000000000000005", severity="warning")]))
    incident_id = first["results"][0]["incident_id"]
    assert (await harness.incident(incident_id))["severity"] != "SEV1"

    answers = await asyncio.gather(
        harness.post_alert(grouped([alert("e000000000000005", severity="warning")])),
        harness.post_alert(grouped([alert("e000000000000005", severity="critical")])),
    )
    assert [body["results"][0]["outcome"] for _, body in answers] == ["deduplicated"] * 2
    incident = await harness.incident(incident_id)
    assert incident["severity"] == "SEV1"  # raised by the critical one
    assert [a["occurrences"] for a in incident["alerts"]] == [3]
