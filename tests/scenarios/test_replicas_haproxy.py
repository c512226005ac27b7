"""Three `pulseops serve` replicas on one PostgreSQL database behind HAProxy; one is killed with
SIGKILL in the middle of an alert storm and started again. The storm's repeats go on until the
kill, and the kill waits for the victim to hold outbox rows it is delivering, so it always cuts
webhooks and deliveries short, however fast the machine.

Everything the product does on its own runs meanwhile, on every replica at once: incidents
announced with their channels, pages by DM, e-mail, SMS, calls and push, a workflow's signed
webhook and message, the event stream, escalation, a silence releasing the alerts it held, a
missed heartbeat, a failing probe and its chart, rotation handoffs with their user group,
weekly reports with their charts, status-update reminders, postmortem drafts and channel
archiving. Afterwards the Slack emulator's recorded calls, the other servers' logs and the
database must show that every alert a 2xx acknowledged is stored, each fingerprint has one
incident, and each side effect happened once.

Webhooks, events, e-mail and push have no way to ask "did this arrive?": a delivery that a
replica made just before it died, and could not record, is made again by a survivor with the
same delivery id (`X-PulseOps-Delivery`, the event id, the same notification). The test allows
a repeat only for the deliveries the killed replica had claimed, and only with the same id.
"""

from __future__ import annotations

import asyncio
import email
import re
import shutil
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager, suppress
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.sandbox.emulator import BOT_USER_ID, Emulator
from bot.sandbox.twilio import TwilioEmulator
from store.models import (
    AlertRow,
    HandoffRow,
    IncidentRow,
    NotificationRow,
    OutboxRow,
    PageRow,
    ProbeResultRow,
    ReportRow,
    WorkflowRunRow,
)
from tests.conftest import CONFIG_YAML, alertmanager_payload, emulated
from tests.receiver import Call, Receiver
from tests.sandbox_process import ROOT, free_port
from tests.serve_process import Service, engine_for, wait_until

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]
POSTGRES = pytest.mark.parametrize("backend", ["postgres"], indirect=True)

REPLICAS = 3
STORM = 20  # alert fingerprints, each sent twice at once (so two replicas race to open it)
MUTED = 4  # alerts a silence holds, released by a replica when it ends
RESOLVED = 6  # storm alerts resolved afterwards: postmortem drafts, then channels archived
CONNECTIONS = 12
KILL_AFTER_POSTS = 20  # chat.postMessage calls Slack has received when a replica dies
SECRET = "replicas-hmac-secret"
SID = "AC" + "0" * 31 + "2"
TWILIO_TOKEN = "twilio-replicas-token"
PUBLIC = "https://pulseops.example"
PROBE_INTERVAL = 5
HEARTBEAT_TOKEN = "beat-token"
API = {"Authorization": "Bearer api-test-token"}
PEOPLE = {"U0ALICE01": ("alice", "+4915100000001"), "U0BOB0001": ("bob", "+4915100000002")}


def contacts_yaml(push_url: str) -> str:
    lines = ["contacts:"]
    for user, (name, phone) in PEOPLE.items():
        lines += [
            f'  - user: "{user}"',
            "    methods:",
            f'      - {{id: mail, type: email, address: "{name}@example.com"}}',
            f'      - {{id: sms, type: sms, number: "{phone}"}}',
            f'      - {{id: call, type: voice, number: "{phone}"}}',
            f'      - {{id: push, type: apprise, url: "json://{push_url}/push/{name}"}}',
        ]
    return "\n".join(lines) + "\n"


def replicas_yaml(*, hooks: str, probe: str, twilio: str, smtp_port: int, start: str) -> str:
    """CONFIG_YAML with every kind of side effect switched on, on short timers."""
    base = CONFIG_YAML.replace(
        '    members: ["U0ALICE01", "U0BOB0001"]\n',
        '    members: ["U0ALICE01", "U0BOB0001"]\n    escalation_policy: payments-default\n',
    )
    return (
        base
        + f"""schedules:
  - id: payments-primary
    team: payments
    time_zone: UTC
    rotation: {{type: custom, length: 20s, start: "{start}",
               participants: ["U0ALICE01", "U0BOB0001"]}}
    user_group: "S0PAYONCAL"
escalation_policies:
  - id: payments-default
    levels:
      - delay: 4s
        targets: [{{schedule: payments-primary}}]
      - delay: 10m
        targets: [{{user: "U0CAROL01"}}]
reports: {{cron: "* * * * *"}}
collaboration:
  update_reminders: {{SEV1: 15s}}
  archive_after: 2s
heartbeats:
  - name: nightly-backup
    interval: 5s
    service: search-api
    token: "{HEARTBEAT_TOKEN}"
probes:
  - id: search-health
    http: {{url: "{probe}/health", timeout: 2s}}
    interval: {PROBE_INTERVAL}s
    service: search-api
    failures_to_trigger: 2
    cert_expiry_days: null
allowed_hosts: ["127.0.0.1"]
workflows:
  - id: remediate
    when: [triggered]
    matchers: ['service="payment-api"']
    steps:
      - webhook: {{url: "{hooks}/remediate", timeout: 5s, retries: 5, backoff: 1s,
                   secret_env: HOOKS_HMAC, body: '{{"incident": {{{{ incident.id }}}}}}'}}
      - message: "Remediation requested for {{{{ incident.title }}}}"
event_sinks:
  - type: webhook
    url: "{hooks}/events"
    secret_env: HOOKS_HMAC
"""
        + contacts_yaml(hooks.removeprefix("http://"))
        + f"""notifications:
  public_url: "{PUBLIC}"
  link_secret_env: LINK_SECRET
  smtp: {{host: 127.0.0.1, port: {smtp_port}, starttls: false, from: "pulseops@example.com"}}
  twilio: {{account_sid_env: TWILIO_SID, auth_token_env: TWILIO_TOKEN, from: "+15550001111",
           api_url: "{twilio}"}}
  throttle: {{window: 1m, email: 1000, sms: 1000, voice: 1000, apprise: 1000}}
"""
    )


RECIPE = ROOT / "docs" / "deploy" / "haproxy.cfg"
# the recipe's lines that need root and a system install: not for a test's own HAProxy
SYSTEM_ONLY = re.compile(r"^\s*(log /dev/log|chroot|stats socket|user|group|daemon)\b")


def haproxy_config(port: int, services: list[Service]) -> str:
    """docs/deploy/haproxy.cfg, listening on `port`, balancing over `services`."""
    lines = []
    for line in RECIPE.read_text().splitlines():
        if SYSTEM_ONLY.match(line) or re.match(r"^\s*server pulseops\d", line):
            continue
        if line.strip() == "bind :3000":
            line = f"    bind 127.0.0.1:{port}"
        lines.append(line)
        if line.startswith("    default-server"):
            lines += [f"    server {s.name} 127.0.0.1:{s.port} check" for s in services]
    return "\n".join(lines) + "\n"


class Inbox:
    """An SMTP server's handler (aiosmtpd) keeping every message."""

    def __init__(self) -> None:
        self.mails: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.mails.append(email.message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


@contextmanager
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@asynccontextmanager
async def receiving(receiver: Receiver) -> AsyncIterator[Receiver]:
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()


@asynccontextmanager
async def twilio_emulator() -> AsyncIterator[TwilioEmulator]:
    emu = TwilioEmulator(account_sid=SID, auth_token=TWILIO_TOKEN, numbers=["+15550001111"])
    await emu.start()
    try:
        yield emu
    finally:
        await emu.stop()


@asynccontextmanager
async def haproxy(tmp_path: Path, services: list[Service]) -> AsyncIterator[str]:
    """HAProxy in front of `services` (config generated into tmp_path); yields its URL."""
    port = free_port()
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(haproxy_config(port, services))
    log = (tmp_path / "haproxy.log").open("w")
    process = await asyncio.create_subprocess_exec(
        "haproxy", "-f", str(cfg), "-db", stdout=log, stderr=log, stdin=asyncio.subprocess.DEVNULL
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
        log.close()


def storm_alert(i: int, status: str = "firing") -> dict[str, Any]:
    name = f"Storm{i:02d}"
    return alertmanager_payload(
        group_key=f"storm-{i}",
        fingerprint=f"storm-{i}",
        alertname=name,
        summary=f"Storm {i:02d} on checkout",
        status=status,
    )


def muted_alert(i: int) -> dict[str, Any]:
    return alertmanager_payload(
        group_key=f"muted-{i}",
        fingerprint=f"muted-{i}",
        alertname="Muted",
        summary=f"Muted {i}",
        severity="warning",
    )


class Sender:
    """Posts alerts through the balancer as a monitor does: a non-2xx answer or a broken
    connection is sent again (after a short pause) until a 2xx acknowledges it."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http = http
        self.url = url
        self.acknowledged: list[tuple[str, int, str]] = []  # fingerprint, incident, outcome
        self.refused = 0

    async def post(self, body: dict[str, Any]) -> None:
        deadline = time.monotonic() + 45
        while True:
            with suppress(aiohttp.ClientError, TimeoutError):
                async with self.http.post(
                    f"{self.url}/webhooks/prometheus",
                    json=body,
                    headers={"Authorization": "Bearer prom-token"},
                    timeout=aiohttp.ClientTimeout(total=20),
                ) as response:
                    if 200 <= response.status < 300:
                        answer = await response.json()
                        for alert, result in zip(body["alerts"], answer["results"], strict=True):
                            self.acknowledged.append(
                                (
                                    alert["fingerprint"],
                                    int(result.get("incident_id") or 0),
                                    str(result["outcome"]),
                                )
                            )
                        return
            self.refused += 1
            assert time.monotonic() < deadline, "an alert was never acknowledged"
            await asyncio.sleep(0.2)

    async def storm(self, bodies: Iterable[dict[str, Any]]) -> None:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for body in bodies:
            queue.put_nowait(body)

        async def worker() -> None:
            while not queue.empty():
                await self.post(queue.get_nowait())

        await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))

    async def repeat_until(self, stop: asyncio.Event, bodies: list[dict[str, Any]]) -> None:
        """Send `bodies` again and again, as a storm's monitors do, until `stop` is set: the
        replica is then killed with deliveries in flight, however fast the first ones went."""

        async def worker(offset: int) -> None:
            sent = offset
            while not stop.is_set():
                await self.post(bodies[sent % len(bodies)])
                sent += 1

        await asyncio.gather(*(worker(n) for n in range(CONNECTIONS)))


async def scalar(engine: AsyncEngine, query: Any) -> Any:
    async with engine.connect() as conn:
        return await conn.scalar(query)


async def rows(engine: AsyncEngine, query: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(query)).all())


def repeats(keys: Iterable[Any]) -> set[Any]:
    return {key for key, n in Counter(keys).items() if n > 1}


def marks(emu: Emulator) -> list[tuple[str, int, str]]:
    """The delivery mark of every message the bot posted, anywhere: (channel, outbox row,
    step), or for a page DM (channel, page id, "page") for each page it carries."""
    found = []
    for channel in emu.channels.values():
        for message in emu.messages(channel.id):
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            step = str(payload.get("step"))
            if step == "page":
                found += [(channel.id, int(page), step) for page in payload.get("pages", ())]
            elif "outbox_id" in payload:
                found.append((channel.id, int(payload["outbox_id"]), step))
    return found


def delivery_ids(calls: list[Call], path: str) -> list[str]:
    return [c.headers["X-PulseOps-Delivery"] for c in calls if c.path.startswith(path)]


@POSTGRES
async def test_three_replicas_behind_haproxy_one_killed_mid_storm_do_everything_once(
    tmp_path: Path, database_url: str
) -> None:
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy is not installed (Debian: apt-get install haproxy)")
    async with AsyncExitStack() as stack:
        emu = await stack.enter_async_context(
            emulated(usergroups=[("S0PAYONCAL", "payments-oncall")])
        )
        hooks = await stack.enter_async_context(receiving(Receiver(secret=SECRET)))
        target = await stack.enter_async_context(receiving(Receiver(statuses=[503])))
        twilio = await stack.enter_async_context(twilio_emulator())
        inbox, smtp_port = stack.enter_context(smtp_server())
        http = await stack.enter_async_context(aiohttp.ClientSession())
        engine = await stack.enter_async_context(engine_for(database_url))
        began = datetime.now(UTC).replace(microsecond=0)
        config = replicas_yaml(
            hooks=hooks.url,
            probe=target.url,
            twilio=twilio.api_url,
            smtp_port=smtp_port,
            start=began.strftime("%Y-%m-%dT%H:%M:%S"),
        )
        env = {
            "HOOKS_HMAC": SECRET,
            "TWILIO_SID": SID,
            "TWILIO_TOKEN": TWILIO_TOKEN,
            "LINK_SECRET": "link-secret",
        }
        services = [
            Service(tmp_path, emu.api_url, database_url, config=config, env=env, name=f"r{n}")
            for n in range(1, REPLICAS + 1)
        ]
        for service in services:
            stack.push_async_callback(service.stop)
            await service.start(http, ready="/readyz")
        balancer = await stack.enter_async_context(haproxy(tmp_path, services))

        async def balanced() -> bool:
            with suppress(aiohttp.ClientError):
                async with http.get(f"{balancer}/readyz") as response:
                    return response.status == 200
            return False

        await wait_until(balanced, within=15, what="HAProxy to see the replicas")
        # a heartbeat pinged once, then never again: one incident when it is missed
        async with http.post(
            f"{balancer}/heartbeats/nightly-backup",
            headers={"Authorization": f"Bearer {HEARTBEAT_TOKEN}"},
        ) as response:
            assert response.status in (200, 202), await response.text()
        # a silence ending in a few seconds: the alerts it holds open incidents then, once
        ends = datetime.now(UTC) + timedelta(seconds=8)
        async with http.post(
            f"{balancer}/api/v1/silences",
            headers=API,
            json={
                "matchers": ['alertname="Muted"'],
                "ends_at": ends.isoformat(),
                "comment": "replica test",
            },
        ) as response:
            assert response.status == 201, await response.text()

        # Slack answers slowly, so deliveries are in flight when the replica dies
        emu.set_faults(latency_ms=100)
        sender = Sender(http, balancer)
        firing = [storm_alert(i) for i in range(STORM) for _ in range(2)]
        firing += [muted_alert(i) for i in range(MUTED)]
        storming = asyncio.create_task(sender.storm(firing))
        stop_repeating = asyncio.Event()
        repeating = asyncio.create_task(
            sender.repeat_until(stop_repeating, [storm_alert(i) for i in range(STORM)])
        )
        victim = services[1]
        assert victim.process is not None
        claimed_by_victim = f"%:{victim.process.pid}:%"  # a worker id holds its process id

        async def victim_mid_delivery() -> bool:
            """Slack work under way, and the victim holding outbox rows it is delivering."""
            if len(emu.calls_to("chat.postMessage")) < KILL_AFTER_POSTS:
                return False
            held = await scalar(
                engine,
                select(func.count()).where(
                    OutboxRow.status == "pending",
                    OutboxRow.claimed_by.like(claimed_by_victim),
                    OutboxRow.claimed_until > datetime.now(UTC),
                ),
            )
            return bool(held)

        await wait_until(victim_mid_delivery, within=30, what="the victim to deliver", every=0.05)
        await victim.kill()
        await storming
        await asyncio.sleep(0.5)  # the balancer finds the victim gone, the repeats go on
        stop_repeating.set()
        await repeating
        await victim.start(http, ready="/readyz")
        await sender.storm(storm_alert(i, "resolved") for i in range(RESOLVED))
        emu.set_faults(clear=True)

        # ---- wait for everything to settle (bounded) ------------------------------------
        async def settled() -> bool:
            pending = await scalar(
                engine, select(func.count()).where(OutboxRow.status == "pending")
            )
            incidents = await rows(engine, select(IncidentRow))
            resolved = [i for i in incidents if i.status == "resolved"]
            escalated = await scalar(
                engine,
                select(func.count(func.distinct(PageRow.incident_id))).where(PageRow.level == 1),
            )
            return bool(
                pending == 0
                and sum(1 for i in incidents if i.title.startswith("Muted")) == MUTED
                and escalated >= STORM - RESOLVED
                and len(resolved) >= RESOLVED
                and all(emu.channels[str(i.channel_id)].is_archived for i in resolved)
                and any(i.dedup_key and "nightly-backup" in i.dedup_key for i in incidents)
                and any(i.dedup_key and "search-health" in i.dedup_key for i in incidents)
            )

        try:
            await wait_until(settled, within=75, what="every side effect", every=0.5)
        finally:
            diagnose(tmp_path, services)
        await asyncio.sleep(1.0)  # a doubled effect still on its way would arrive now
        await check_everything_once(engine, emu, sender, hooks, twilio, inbox, target, began)


def diagnose(tmp_path: Path, services: list[Service]) -> None:
    """Show the replicas' error logs in the test's output (they log only errors)."""
    for service in services:
        text = service.log.read_text() if service.log.exists() else ""
        if text.strip():
            print(f"--- {service.name}.log\n{text[-6000:]}")


async def check_everything_once(
    engine: AsyncEngine,
    emu: Emulator,
    sender: Sender,
    hooks: Receiver,
    twilio: TwilioEmulator,
    inbox: Inbox,
    target: Receiver,
    began: datetime,
) -> None:
    outbox = await rows(engine, select(OutboxRow))
    undone = [
        (r.id, r.kind, r.status, r.attempts, r.last_error) for r in outbox if r.status != "done"
    ]
    assert undone == []
    # rows claimed more than once: a delivery that a replica died in (or was postponed)
    claimed_again = {r.id for r in outbox if r.attempts > 1}
    assert claimed_again, "the killed replica held no claims: the test proves nothing"
    # every kind of side effect the product has happened during the test
    assert {r.kind for r in outbox} >= {
        "announce", "open_channel", "sync_messages", "page", "handoff", "report", "state_line",
        "update_reminder", "postmortem", "archive_channel", "notify", "workflow_run", "event",
        "probe_chart",
    }  # fmt: skip

    # ---- every acknowledged alert is stored; one incident per fingerprint ----------------
    alerts = await rows(engine, select(AlertRow.fingerprint, AlertRow.incident_id))
    incidents = {i.id: i for i in await rows(engine, select(IncidentRow))}
    stored = {(a.fingerprint, a.incident_id) for a in alerts}
    for fingerprint, incident_id, outcome in sender.acknowledged:
        # muted: held by the silence (released later); ignored: a resolve repeated by the
        # sender after an answer it did not get, when nothing was open any more
        if outcome not in ("muted", "ignored"):
            assert (fingerprint, incident_id) in stored, (fingerprint, incident_id, outcome)
    assert repeats(a.fingerprint for a in alerts) == set()
    expected = {f"storm-{i}" for i in range(STORM)} | {f"muted-{i}" for i in range(MUTED)}
    assert expected <= {a.fingerprint for a in alerts}
    assert sender.refused > 0, "no delivery was refused or cut by the kill"

    # ---- Slack: no message, announcement or channel doubled -----------------------------
    assert repeats(marks(emu)) == set()
    announced = [
        m["metadata"]["event_payload"]["incident_id"]
        for m in emu.messages("C0INCIDENT")
        if (m.get("metadata") or {}).get("event_payload", {}).get("step") == "announcement"
    ]
    assert sorted(announced) == sorted(incidents)
    created = [c for c in emu.channels.values() if c.created_by == BOT_USER_ID and not c.is_im]
    assert sorted(c.id for c in created) == sorted(str(i.channel_id) for i in incidents.values())
    for incident in incidents.values():
        assert [m["ts"] for m in emu.messages(str(incident.channel_id))].count(
            incident.message_ts
        ) == 1

    # ---- pages by DM, e-mail, SMS, calls and push: each once ----------------------------
    pages = await rows(engine, select(PageRow))
    assert {p.level for p in pages} == {0, 1}
    assert [p.id for p in pages if p.kind == "user" and not p.dm_ts] == []
    notifications = await rows(engine, select(NotificationRow))
    # cancelled: its incident was resolved before the notification's turn came
    assert {n.status for n in notifications} <= {"sent", "cancelled"}
    assert all(
        incidents[n.incident_id].status == "resolved"
        for n in notifications
        if n.status == "cancelled"
    )
    # cut short: made by the killed replica, which died before recording it, and cancelled
    # by a survivor because its incident was resolved meanwhile
    row_of = {int(r.payload["notification_id"]): r.id for r in outbox if r.kind == "notify"}
    cut_short = [
        n for n in notifications if n.status == "cancelled" and row_of[n.id] in claimed_again
    ]
    notifications = [n for n in notifications if n.status == "sent"]
    sent = Counter(n.method_type for n in notifications)
    assert set(sent) == {"email", "sms", "voice", "apprise"}
    # SMS and calls: looked up in Twilio's log before a retry, so each notification has its
    # own message or call; an extra one only for a notification the killed replica was sending
    for kind, made in (("sms", twilio.messages), ("voice", twilio.calls)):
        of_kind = [n for n in notifications if n.method_type == kind]
        recorded = [n.provider_id for n in of_kind]
        assert repeats(recorded) == set() and set(recorded) <= {m.sid for m in made}, kind
        retried = sum(1 for n in of_kind if row_of[n.id] in claimed_again)
        extra = retried + sum(1 for n in cut_short if n.method_type == kind)
        assert len(of_kind) <= len(made) <= len(of_kind) + extra, kind
    # e-mail and push cannot be looked up: a repeat only of what a dying replica was sending
    for kind, received in (
        ("email", [(str(m["To"]), str(m["Subject"])) for m in inbox.mails]),
        (
            "apprise",
            [(c.path, c.json()["title"]) for c in hooks.calls if c.path.startswith("/push/")],
        ),
    ):

        def made_for(to: str, about: str, kind: str = kind) -> list[Any]:
            number = int(re.findall(r"INC-(\d+)", about)[0])
            return [
                n
                for n in [*notifications, *cut_short]
                if n.method_type == kind and n.incident_id == number and n.destination.endswith(to)
            ]

        arrived = {n.id for item in set(received) for n in made_for(*item)}
        assert {n.id for n in notifications if n.method_type == kind} <= arrived, kind
        assert all(made_for(*item) for item in set(received)), kind  # nothing else arrived
        for to, about in repeats(received):
            [n] = made_for(to, about)
            assert row_of[n.id] in claimed_again, (kind, to, about)

    # ---- workflow webhooks and events: each delivery id once (a repeat: same id, killed) --
    runs = await rows(engine, select(WorkflowRunRow))
    assert runs and {r.status for r in runs} == {"succeeded"}
    calls = delivery_ids(hooks.calls, "/remediate")
    assert sorted(set(calls)) == sorted(f"run-{r.id}-step-0" for r in runs)
    run_rows = {
        f"run-{r.payload['run_id']}-step-0": r.id for r in outbox if r.kind == "workflow_run"
    }
    assert {d for d in repeats(calls) if run_rows[d] not in claimed_again} == set()
    events = {str(r.payload["event"]["id"]): r.id for r in outbox if r.kind == "event"}
    received = delivery_ids(hooks.calls, "/events")
    assert sorted(set(received)) == sorted(events)
    assert {e for e in repeats(received) if events[e] not in claimed_again} == set()
    assert all(c.signed for c in hooks.calls if not c.path.startswith("/push/"))

    # ---- jobs that run on every replica: each deadline handled once ----------------------
    handoffs = await rows(engine, select(HandoffRow))
    assert handoffs, "no rotation handoff happened during the test"
    handoff_rows = {r.id for r in outbox if r.kind == "handoff"}
    assert 0 < len(handoff_rows) <= len(handoffs)
    group_updates = [c for c in emu.calls_to("usergroups.users.update") if c["status"] == 200]
    assert len(handoff_rows) <= len(group_updates) <= len(handoff_rows | claimed_again)
    reports = await rows(engine, select(ReportRow).where(ReportRow.announced.is_(True)))
    assert reports and len([r for r in outbox if r.kind == "report"]) == len(reports)
    # report charts, postmortem drafts and probe charts: one file each (files carry no mark:
    # an upload cut off by the kill may be made again, like an e-mail)
    uploading = {r.id for r in outbox if r.kind in ("report", "postmortem", "probe_chart")}
    uploads = [
        c
        for c in emu.calls_to("files.completeUploadExternal")
        if (c.get("response") or {}).get("ok")
    ]
    assert len(uploading) <= len(uploads) <= len(uploading) + len(uploading & claimed_again)
    titles = [i.dedup_key or "" for i in incidents.values()]
    assert sum("nightly-backup" in t for t in titles) == 1
    assert sum("search-health" in t for t in titles) == 1
    results = await scalar(engine, select(func.count()).select_from(ProbeResultRow))
    elapsed = (datetime.now(UTC) - began).total_seconds()
    assert len(target.calls) == results
    assert results <= elapsed / PROBE_INTERVAL + 2, (results, elapsed)
