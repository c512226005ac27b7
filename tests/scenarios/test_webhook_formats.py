"""Integrations of type grafana, datadog and slack-webhook over HTTP, fed the bodies of those
tools' public documentation (tests/fixtures/webhooks/README.md), firing and resolved."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from bot.config import PulseOpsConfig, parse_config
from bot.errors import ConfigError
from tests.conftest import CONFIG_YAML, Harness

FIXTURES = Path(__file__).parent.parent / "fixtures" / "webhooks"

FORMATS_YAML = CONFIG_YAML.replace(
    "api_tokens:\n",
    """  - name: grafana
    type: grafana
    token: "grafana-token"
    service: payment-api
  - name: datadog
    type: datadog
    token: "datadog-token"
    service: search-api
  - name: uptime-kuma
    type: slack-webhook
    token: "kuma-token"
    service: search-api
    slack_webhook:
      dedup_pattern: '^\\[([^\\]]+)\\]'
      resolved_pattern: '\\[✅ Up\\]'
      resolved_colors: [good]
api_tokens:
""",
    1,
)
TOKENS = {"grafana": "grafana-token", "datadog": "datadog-token", "uptime-kuma": "kuma-token"}


@pytest.fixture
def config() -> PulseOpsConfig:
    return parse_config(FORMATS_YAML, source="test.yml", environ={})


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())  # type: ignore[no-any-return]


async def post(harness: Harness, integration: str, body: Any) -> dict[str, Any]:
    status, answer = await harness.post_alert(
        body, integration=integration, token=TOKENS[integration]
    )
    assert status == 202, answer
    return answer  # type: ignore[no-any-return]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
async def test_grafana_documented_body_opens_one_incident_and_resolves(harness: Harness) -> None:
    body = fixture("grafana_firing.json")
    answer = await post(harness, "grafana", body)
    assert [r["outcome"] for r in answer["results"]] == ["created", "grouped"]
    incident_id = answer["results"][0]["incident_id"]
    await harness.settle()
    incident = await harness.incident(incident_id)
    assert incident["title"] == "This alert was triggered for zone us-1"
    assert incident["source"] == "grafana" and incident["service"] == "payment-api"
    assert {a["fingerprint"] for a in incident["alerts"]} == {
        "c6eadffa33fcdf37",
        "bc97ff14869b13e3",
    }
    assert "Runbook" in [link["text"] for link in incident["links"]]
    assert incident["slack"]["channel_id"] in harness.emu.channels

    resolved = copy.deepcopy(body)
    resolved["status"] = "resolved"
    for item in resolved["alerts"]:
        item.update(status="resolved", endsAt="2021-10-12T10:30:00+02:00")
    await post(harness, "grafana", resolved)
    assert (await harness.incident(incident_id))["status"] == "resolved"


async def test_datadog_bodies_trigger_and_recover(harness: Harness) -> None:
    answer = await post(harness, "datadog", fixture("datadog_recommended.json"))
    incident_id = answer["results"][0]["incident_id"]
    incident = await harness.incident(incident_id)
    assert (incident["title"], incident["severity"]) == ("system.load.1 over host:my-host", "SEV1")
    assert incident["service"] == "search-api"
    recovered = fixture("datadog_recommended.json")
    recovered.update(
        title="[Recovered] system.load.1 over host:my-host",
        alert_transition="Recovered",
        alert_type="success",
    )
    await post(harness, "datadog", recovered)
    assert (await harness.incident(incident_id))["status"] == "resolved"

    default = await post(harness, "datadog", fixture("datadog_default.json"))
    default_id = default["results"][0]["incident_id"]
    assert default_id != incident_id
    recovered_default = fixture("datadog_default.json")
    recovered_default["title"] = "[Recovered] system.load.1 over host:my-host"
    await post(harness, "datadog", recovered_default)
    assert (await harness.incident(default_id))["status"] == "resolved"


async def test_slack_webhook_messages_open_and_resolve_as_configured(harness: Harness) -> None:
    down = {
        "text": "[Checkout API] [🔴 Down] <!channel> timeout after 48s",
        "attachments": [{"color": "danger", "fields": [{"title": "URL", "value": "x"}]}],
    }
    answer = await post(harness, "uptime-kuma", down)
    incident_id = answer["results"][0]["incident_id"]
    assert answer["results"][0]["fingerprint"] == "Checkout API"
    await harness.settle()
    incident = await harness.incident(incident_id)
    assert incident["title"] == "[Checkout API] [🔴 Down] @channel timeout after 48s"
    for call in harness.emu.calls_to("chat.postMessage"):
        assert "<!channel>" not in json.dumps(call["args"])  # escaped: notifies nobody
    again = await post(harness, "uptime-kuma", down)
    assert again["results"][0]["outcome"] == "deduplicated"
    await post(harness, "uptime-kuma", {"text": "[Checkout API] [✅ Up] 200 - OK"})
    assert (await harness.incident(incident_id))["status"] == "resolved"

    # the documented attachment message: a new incident, titled by the attachment title
    answer = await post(harness, "uptime-kuma", fixture("slack_attachments.json"))
    assert answer["results"][0]["outcome"] == "created"
    blocks = await post(harness, "uptime-kuma", fixture("slack_blocks.json"))
    assert blocks["results"][0]["outcome"] == "created"


async def test_slack_webhook_body_without_text_is_400_naming_text(harness: Harness) -> None:
    status, answer = await harness.post_alert(
        {"attachments": [{"color": "good"}]}, integration="uptime-kuma", token="kuma-token"
    )
    assert status == 400 and "text" in answer["fields"]
    _, listing = await harness.get("/api/v1/incidents")
    assert listing["incidents"] == []


def test_slack_webhook_options_on_another_type_are_refused_naming_the_key() -> None:
    yaml = FORMATS_YAML.replace(
        "    type: datadog\n", "    type: datadog\n    slack_webhook: {resolved_colors: [good]}\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_config(yaml, source="pulseops.yml", environ={})
    (problem,) = info.value.problems
    assert ".slack_webhook: applies to type slack-webhook only (this is datadog)" in problem
    bad_regex = FORMATS_YAML.replace("'^\\[([^\\]]+)\\]'", "'(['")
    with pytest.raises(ConfigError) as info:
        parse_config(bad_regex, source="pulseops.yml", environ={})
    assert "slack_webhook.dedup_pattern" in info.value.problems[0]


async def test_slack_webhook_token_may_end_the_url_and_is_never_logged(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    assert harness.http is not None
    caplog.set_level(logging.INFO, logger="pulseops.http")
    body = {"text": "[Checkout API] [🔴 Down] timeout"}
    async with harness.http.post(f"{harness.url}/webhooks/uptime-kuma/kuma-token", json=body) as r:
        assert r.status == 202, await r.text()
    for path, status in (
        ("/webhooks/uptime-kuma/wrong", 401),
        ("/webhooks/datadog/datadog-token", 401),  # other types: the bearer header only
        ("/webhooks/nobody/kuma-token", 404),
    ):
        async with harness.http.post(f"{harness.url}{path}", json=body) as r:
            assert r.status == status, path
    _, listing = await harness.get("/api/v1/incidents")
    assert listing["total"] == 1
    paths = [getattr(rec, "path", "") for rec in caplog.records]
    assert paths.count("/webhooks/{integration}/{token}") == 4
    for record in caplog.records:  # nowhere in any field of the access log
        assert "kuma-token" not in str(vars(record)) and "datadog-token" not in str(vars(record))
