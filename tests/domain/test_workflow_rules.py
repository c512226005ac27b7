"""Workflows and event sinks without I/O: their config checks (file, line, field), matching,
retry delays, signatures, templates and the outgoing address rules."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import config_check, parse_config
from bot.domain.incident import Status
from bot.domain.workflows import match_labels, retry_delay, signature, trigger_key
from bot.errors import ConfigError
from bot.outgoing import Refused, check_address
from bot.render import Names, Renderer
from bot.render.blocks import button, confirm_dialog
from bot.sandbox.emulator.rules import validate_blocks
from bot.templating import TemplateProblem, render_json, render_message
from tests.helpers import make_incident

BASE = """slack: {incidents_channel: C0INCIDENT}
teams: [{id: payments, name: P, channel: C0PAYMENTS, members: [U0ALICE01]}]
services: [{id: payment-api, name: Payment API, team: payments}]
"""

BROKEN = (
    BASE
    + """workflows:
  - id: restart-payment
    when: [triggered, {unacknowledged_for: 10m}]
    matchers: ['service="payment-api"']
    steps:
      - webhook: {url: "http://remediator:8080/restart", secret_env: RESTART_HMAC}
      - message: "Runbook: {{ incident.title }"
      - page: {schedule: platform-primary}
      - {escalate: true, message: x}
  - id: restart-payment
    when: [deployed]
    matchers: ['service=~"("']
    steps: [{set_severity: SEV9}]
  - id: nothing-starts-me
    steps: [{escalate: true}]
event_sinks:
  - {type: nats, url: "http://nats:4222"}
  - {type: webhook, url: "https://hooks.example/x", events: [incident.exploded]}
  - {type: webhook, url: "https://hooks.example/y", secret_env: EVENTS_HMAC}
"""
)


def problems(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="pulseops.yml", environ=environ or {})
    return info.value.problems


def test_config_check_names_file_line_and_field_of_each_workflow_problem() -> None:
    found = problems(BROKEN)
    expected = [
        "pulseops.yml:9: workflows[0].steps[0].webhook.secret_env: environment variable "
        "RESTART_HMAC is not set",
        "pulseops.yml:10: workflows[0].steps[1].message: invalid template: unexpected '}'",
        "pulseops.yml:11: workflows[0].steps[2].page.schedule: unknown schedule "
        "'platform-primary' (none are configured)",
        "pulseops.yml:12: workflows[0].steps[3]: set exactly one of webhook, message, page, "
        "invite, set_severity or escalate: true",
        "pulseops.yml:13: workflows[1].id: duplicate workflow id 'restart-payment' "
        "(first at workflows[0])",
        "pulseops.yml:14: workflows[1].when[0]",
        "pulseops.yml:15: workflows[1].matchers",
        "pulseops.yml:16: workflows[1].steps[0].set_severity",
        "pulseops.yml:17: workflows[2]: an automatic workflow needs `when`",
        "pulseops.yml:20: event_sinks[0]: a nats sink's url is nats://host:4222",
        "pulseops.yml:21: event_sinks[1].events[0]",
        "pulseops.yml:22: event_sinks[2].secret_env: environment variable EVENTS_HMAC is not set",
    ]
    assert len(found) == len(expected), "\n".join(found)
    for problem, start in zip(found, expected, strict=True):
        assert problem.startswith(start), (problem, start)


def test_config_check_counts_workflows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "pulseops.yml"
    path.write_text(
        BASE
        + """workflows:
  - id: restart-payment
    run: button
    label: Restart payment-api
    steps: [{webhook: {url: "https://remediator.example/restart"}}]
"""
    )
    assert config_check(path, {}) == 0
    assert "1 workflow" in capsys.readouterr().out


def test_matchers_see_the_incident_fields_over_its_alert_labels() -> None:
    labels = match_labels(
        service="payment-api",
        team="payments",
        severity="SEV1",
        category=None,
        labels={"severity": "critical", "env": "prod", "category": "database"},
    )
    assert labels == {
        "service": "payment-api",
        "team": "payments",
        "severity": "SEV1",
        "env": "prod",
        "category": "database",
    }


def test_trigger_keys_make_each_event_one_run() -> None:
    assert trigger_key("triggered", version=0) == trigger_key("triggered", version=3)
    assert trigger_key("acknowledged", version=1) != trigger_key("acknowledged", version=3)


def test_retry_delays_double_and_stop_at_the_cap() -> None:
    waits = [retry_delay(timedelta(seconds=5), n, cap=timedelta(seconds=30)) for n in (1, 2, 3, 4)]
    assert waits == [timedelta(seconds=s) for s in (5, 10, 20, 30)]


def test_the_signature_is_the_hmac_of_the_body() -> None:
    body = b'{"id":"x"}'
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert signature("s3cret", body) == f"sha256={expected}"


def test_message_templates_escape_what_they_insert_but_not_their_own_text() -> None:
    text = render_message(
        "<https://wiki.example|Runbook> for {{ incident.title }}",
        {"incident": {"title": "<!channel> & down"}},
    )
    assert text == "<https://wiki.example|Runbook> for &lt;!channel&gt; &amp; down"


def test_body_templates_must_render_json_and_cannot_reach_python_internals() -> None:
    assert render_json('{"t": {{ t | tojson }}}', {"t": 'a"b'}) == {"t": 'a"b'}
    with pytest.raises(TemplateProblem, match="did not render JSON"):
        render_json('{"t": {{ t }}}', {"t": "a b"})
    with pytest.raises(TemplateProblem):
        render_json("{{ t.__class__.__mro__ }}", {"t": "x"})
    with pytest.raises(TemplateProblem, match="undefined"):
        render_message("{{ nope }}", {})


@pytest.mark.parametrize(
    ("host", "address", "allowed", "refused"),
    [
        ("metadata", "169.254.169.254", {"metadata"}, "metadata"),
        ("ec2", "fd00:ec2::254", {"ec2"}, "metadata"),
        ("mapped", "::ffff:169.254.169.254", {"mapped"}, "metadata"),
        ("localhost", "127.0.0.1", set(), "allowed_hosts"),
        ("db.internal", "10.1.2.3", set(), "allowed_hosts"),
        ("v6local", "::1", set(), "allowed_hosts"),
        ("localhost", "127.0.0.1", {"localhost"}, None),
        ("hooks.example", "93.184.216.34", set(), None),
    ],
)
def test_outgoing_addresses(
    host: str, address: str, allowed: set[str], refused: str | None
) -> None:
    ip = ipaddress.ip_address(address)
    if refused is None:
        check_address(host, ip, allowed)
    else:
        with pytest.raises(Refused, match=refused):
            check_address(host, ip, allowed)


def workflow_renderer() -> Renderer:
    return Renderer(
        Names(services={}, teams={}),
        workflow_buttons=lambda incident: [
            ("restart-payment", "Restart payment-api"),
            ("roll", "Roll back"),
        ],
    )


def test_workflow_buttons_are_valid_block_kit_with_a_confirmation_and_stay_out_of_bundles() -> None:
    renderer = workflow_renderer()
    message = renderer.incident_message(make_incident(7))
    assert validate_blocks(message.blocks) == []
    # the lifecycle row (the Roles button and the severity select have a row of their own)
    [actions] = [b for b in message.blocks if b.get("block_id") == "incident_actions"]
    ids = [e["action_id"] for e in actions["elements"]]
    assert ids[-2:] == ["incident_run_workflow:restart-payment", "incident_run_workflow:roll"]
    confirm = actions["elements"][-2]["confirm"]
    assert confirm["text"]["text"] == "Run *Restart payment-api* on INC-7 now?"
    bundle = renderer.page_bundle([(make_incident(7), 1), (make_incident(8), 1)])
    assert validate_blocks(bundle.blocks) == []
    assert "incident_run_workflow" not in json.dumps(bundle.blocks)
    resolved = renderer.incident_message(make_incident(7, status=Status.RESOLVED))
    assert "incident_run_workflow" not in json.dumps(resolved.blocks)


def test_the_emulator_refuses_a_confirmation_dialog_that_breaks_slack_limits() -> None:
    dialog = confirm_dialog(title="t", text="x", confirm="Run")
    good = [{"type": "actions", "elements": [button("Go", "go", "1", confirm=dialog)]}]
    assert validate_blocks(good) == []
    long_title = {**dialog, "title": {"type": "plain_text", "text": "t" * 101}}
    no_deny = {k: v for k, v in dialog.items() if k != "deny"}
    for bad in (long_title, no_deny):
        blocks = [{"type": "actions", "elements": [button("Go", "go", "1", confirm=bad)]}]
        assert validate_blocks(blocks) != []


def test_allowed_hosts_are_bare_hosts() -> None:
    found = problems(BASE + 'allowed_hosts: ["http://remediator:8080", "10.0.0.5", "::1"]\n')
    assert found == [
        "pulseops.yml:4: allowed_hosts: not host names or IP addresses: "
        "'http://remediator:8080' (write the host alone, e.g. remediator.internal or 10.0.0.5, "
        "no scheme or port)"
    ]


def test_workflow_matchers_see_the_incident_category() -> None:
    from bot.config.workflows import WorkflowConfig
    from bot.services.workflows import applies

    workflow = WorkflowConfig.model_validate(
        {
            "id": "db",
            "when": ["triggered"],
            "matchers": ['category="database"'],
            "steps": [{"escalate": True}],
        }
    )
    assert applies(workflow, make_incident(1, category="database"))
    assert not applies(workflow, make_incident(2, category="network"))
    assert not applies(workflow, make_incident(3))


def test_the_readme_shows_the_event_schema_as_it_is_in_docs() -> None:
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text(encoding="utf-8")
    shown = readme.split("docs/events.schema.json</code>)</summary>\n\n```json\n", 1)[1]
    shown = shown.split("\n```", 1)[0]
    assert json.loads(shown) == json.loads((root / "docs" / "events.schema.json").read_text())
