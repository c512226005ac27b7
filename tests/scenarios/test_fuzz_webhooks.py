"""Property-based: no body, however mangled, gets a 5xx, and a refused one writes nothing.

For each webhook format, hypothesis mutates a valid payload (values replaced by any JSON,
keys dropped or added, strings with NUL, surrogates and markup) or sends arbitrary JSON.
The examples are generated up front and posted to the running app, one database for all.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Harness, alertmanager_payload

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

HOSTILE = ["<!channel>", "\u0000", "\ud800", "\udfff", "9999-12-31T23:59:59-01:00", "", "٣"]
TEXT = st.text(
    alphabet=st.characters(codec=None, exclude_categories=()),  # surrogates and NUL included
    max_size=40,
) | st.sampled_from(HOSTILE)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)

VALID: dict[str, Any] = {
    "prometheus": alertmanager_payload(),
    "generic": {
        "title": "Checkout down",
        "description": "5xx",
        "severity": "SEV2",
        "service": "payment-api",
        "dedup_key": "k",
        "labels": {"region": "eu"},
        "links": [{"url": "https://example.com", "text": "x"}],
    },
    "pagerduty": {
        "routing_key": "x",
        "event_action": "trigger",
        "dedup_key": "pd",
        "payload": {
            "summary": "API latency",
            "source": "api-1",
            "severity": "error",
            "timestamp": "2026-11-20T10:00:00Z",
            "custom_details": {"p99": 1.2},
        },
        "links": [{"href": "https://status.example", "text": "Status"}],
    },
}


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    document = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths(document)))
        if not path:
            return draw(JSON)
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["taint", "replace", "delete", "add"]))
        if action == "taint":  # the same field, with hostile text in it
            value = parent[path[-1]]
            if isinstance(value, str):
                parent[path[-1]] = value + draw(st.sampled_from(HOSTILE))
            elif isinstance(value, dict) and value:
                key = draw(st.sampled_from(sorted(value)))
                value[key + draw(st.sampled_from(HOSTILE))] = value.pop(key)
        elif action == "replace":
            parent[path[-1]] = draw(JSON)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(TEXT)] = draw(JSON)
    return document


def examples(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    found: list[Any] = []

    @settings(
        max_examples=count,
        database=None,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value: Any) -> None:
        found.append(value)

    collect()
    return found


def encode(document: Any) -> bytes:
    # ensure_ascii keeps lone surrogates as \\ud800 escapes, as a sender's JSON would
    return json.dumps(document).encode()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
@pytest.mark.parametrize("integration", ["prometheus", "generic", "pagerduty"])
async def test_no_webhook_body_gets_a_5xx_and_refusals_write_nothing(
    harness: Harness, integration: str
) -> None:
    bodies = examples(mutated(VALID[integration]), 120) + examples(JSON, 40)
    for body in bodies:
        _, before = await harness.get("/api/v1/incidents?limit=1")
        status, answer = await harness.post_alert(None, integration=integration, raw=encode(body))
        assert status in (202, 400, 413), (status, answer, body)
        if status != 202:
            assert answer.get("error"), answer
            _, after = await harness.get("/api/v1/incidents?limit=1")
            assert after["total"] == before["total"], body
    await harness.settle()
    assert all(c["response"].get("ok") is not None for c in harness.emu.calls)
