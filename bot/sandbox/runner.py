"""`pulseops sandbox`: the real service on SQLite wired to the built-in Slack emulator."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bot.app import create_app
from bot.config import EXAMPLE_CONFIG_PATH, PulseOpsConfig, load_config, load_settings
from bot.deps import DEPS
from bot.logs import configure_logging
from bot.sandbox.alerts import AlertSender, samples_from
from bot.sandbox.alerts import register as register_alert_routes
from bot.sandbox.emulator import Emulator, EmulatorUser, persist
from bot.sandbox.history import seed_history
from bot.sandbox.phones import Phones
from bot.sandbox.phones import register as register_phone_routes
from bot.server import start
from bot.slack.ids import BOT_EVENTS, ESCAPED_COMMANDS, Shortcut, SlashCommand

SANDBOX_BOT_TOKEN = "xoxb-sandbox"
SANDBOX_SIGNING_SECRET = "sandbox-signing-secret"
SANDBOX_API_TOKEN = "pulseops_sandbox-read-write"
"""The sandbox's ready-made API token (scopes read and write), printed in its banner."""

# friendly names for the example config's people; other ids get their id as name
KNOWN_PEOPLE = {
    "U0ALICE01": "alice",
    "U0BOB0001": "bob",
    "U0CAROL01": "carol",
    "U0DAVE001": "dave",
}


SAVE_EVERY_SECONDS = 1.0
"""How often the emulator's workspace is written beside the database when it changed."""


def state_path(db: str) -> Path:
    """Where the emulator's workspace is kept: beside the database ("x.db" -> "x.slack.json")."""
    path = Path(db)
    return path.with_name(path.stem + ".slack.json")


def start_over(db: str) -> list[Path]:
    """Delete the sandbox's database and saved workspace (`--fresh`); return what was removed."""
    removed = []
    for path in (Path(db), Path(db + "-wal"), Path(db + "-shm"), Path(db + "-journal")):
        if path.exists():
            path.unlink()
            removed.append(path)
    state = state_path(db)
    if state.exists():
        state.unlink()
        removed.append(state)
    return removed


def _has_database(db: str) -> bool:
    path = Path(db)
    return path.exists() and path.stat().st_size > 0


def sqlite_url(path: str) -> str:
    """An aiosqlite URL for a file path (relative paths resolved against the working directory)."""
    return f"sqlite+aiosqlite:///{Path(path).resolve()}"


def sandbox_workspace(
    config: PulseOpsConfig,
) -> tuple[list[EmulatorUser], list[tuple[str, str]]]:
    """The users and channels the emulator starts with, taken from the config."""
    people: dict[str, str] = {}
    for team in config.teams:
        for member in team.members:
            people.setdefault(member, KNOWN_PEOPLE.get(member, member.lower()))
    users = [
        EmulatorUser(id=uid, name=name, real_name=name.capitalize()) for uid, name in people.items()
    ]
    channels: list[tuple[str, str]] = []
    incidents = config.slack.incidents_channel
    if not incidents.startswith("#"):
        channels.append((incidents, "incidents"))
    for team in config.teams:
        if team.channel and not team.channel.startswith("#"):
            channels.append((team.channel, team.id))
    return users, channels


def seed_usergroups(emulator: Emulator, config: PulseOpsConfig) -> None:
    """Give the user groups a team's escalation policy pages a handle and the team's members.

    A group paged for team `payments` is `@payments-oncall`, as in the README's tour.
    """
    for team in config.teams:
        policy = config.escalation_policy(team.escalation_policy or "")
        for level in policy.levels if policy else ():
            for target in level.targets:
                group = emulator.ws.ensure_usergroup(target.user_group or "")
                if group is not None and group["handle"] == group["id"].lower():
                    group.update(
                        handle=f"{team.id}-oncall",
                        name=f"{team.name} on call",
                        users=list(team.members),
                        user_count=len(team.members),
                    )


async def run_sandbox(
    *,
    host: str = "127.0.0.1",
    port: int = 3001,
    bot_port: int = 3000,
    db: str = "pulseops-sandbox.db",
    config_path: Path | None = None,
    rate_limits: bool = False,
    latency_ms: int = 0,
    seed_weeks: int = 0,
    fresh: bool = False,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Start the emulator and the service, print how to use them, run until interrupted."""
    config = load_config(config_path or EXAMPLE_CONFIG_PATH)
    base_settings = load_settings()
    configure_logging(fmt="text", level=base_settings.log_level)
    logging.getLogger("pulseops.http").setLevel(logging.WARNING)
    users, channels = sandbox_workspace(config)
    seeds: list[Any] = list(channels)
    database_url = sqlite_url(db)
    saved = state_path(db)
    if fresh:
        removed = start_over(db)
        print(
            "Fresh start: removed " + ", ".join(str(p) for p in removed)
            if removed
            else "Fresh start: nothing to remove.",
            flush=True,
        )
    database_existed = _has_database(db)
    if seed_weeks > 0:
        history = await seed_history(database_url, config, now=datetime.now(UTC), weeks=seed_weeks)
        seeds += history.channels
        print(
            f"History: {db} already holds incidents; not seeding."
            if history.skipped
            else f"History: {history.incidents} past incidents over {seed_weeks} weeks.",
            flush=True,
        )
    emulator = Emulator(
        bot_token=SANDBOX_BOT_TOKEN,
        signing_secret=SANDBOX_SIGNING_SECRET,
        users=users,
        channels=seeds,
        rate_limits=rate_limits,
        bot_events=BOT_EVENTS,
        escaped_commands=ESCAPED_COMMANDS,
        shortcuts=[s.value for s in Shortcut],
    )
    seed_usergroups(emulator, config)
    print(_resume(emulator, db=db, saved=saved, database_existed=database_existed), flush=True)
    sender = AlertSender(bot_url="", samples=samples_from(config, os.environ))
    register_alert_routes(
        emulator.app, sender, commands=[command.value for command in SlashCommand]
    )
    phones = Phones(host=host)
    register_phone_routes(emulator.app, phones)
    emulator_url = await emulator.start(host=host, port=port)
    await phones.start()
    if latency_ms:
        emulator.set_faults(latency_ms=latency_ms)
    settings = base_settings.model_copy(
        update={
            "slack_bot_token": SecretStr(SANDBOX_BOT_TOKEN),
            "slack_signing_secret": SecretStr(SANDBOX_SIGNING_SECRET),
            "slack_app_token": None,
            "slack_api_url": emulator.api_url,
            "database_url": database_url,
        }
    )
    # the service's own URL must be known before it starts (e-mail links, Twilio webhooks)
    bot_port = bot_port or _free_port(host)
    bot_url = f"http://{host}:{bot_port}"
    emulator_host = emulator_url.rstrip("/").split("//", 1)[1]
    config = phones.wire(
        config, bot_url=bot_url, push_url=f"json://{emulator_host}/_sandbox/phones/push"
    )
    app = create_app(settings, config, environ={**os.environ, **phones.environ})
    try:
        runner, _ = await start(app, host=host, port=bot_port)
    except BaseException:
        await phones.stop()
        await emulator.stop()
        raise
    await app[DEPS].api_tokens.ensure(
        name="sandbox", secret=SANDBOX_API_TOKEN, scopes=("read", "write")
    )
    emulator.request_url = f"{bot_url}/slack/events"
    sender.bot_url = bot_url
    print(_banner(config, emulator_url.rstrip("/"), bot_url), flush=True)
    if ready is not None:
        ready.set()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    saver = asyncio.create_task(_keep_saved(emulator, saved))
    try:
        await stop.wait()
    finally:
        saver.cancel()
        await sender.close()
        await runner.cleanup()
        await phones.stop()
        await emulator.stop()
        persist.save(emulator.ws, saved)


def _resume(emulator: Emulator, *, db: str, saved: Path, database_existed: bool) -> str:
    """Restore the saved workspace when the database is the one it belongs to; say what happened."""
    if saved.exists() and database_existed:
        try:
            resumed = persist.load(emulator.ws, saved)
        except (ValueError, OSError) as exc:
            return (
                f"Resumed: database {db}, but the Slack workspace in {saved} could not be read "
                f"({exc}); Slack starts empty. Start over with: pulseops sandbox --fresh"
            )
        return (
            f"Resumed: database {db} and the Slack workspace in {saved} "
            f"({resumed.describe()}). Start over with: pulseops sandbox --fresh"
        )
    if database_existed:
        return (
            f"Warning: database {db} exists but no saved Slack workspace ({saved}); channels "
            "and messages of its incidents are unknown to this Slack. "
            "Start over with: pulseops sandbox --fresh"
        )
    if saved.exists():
        saved.unlink()  # belongs to a database that is gone
    return f"New sandbox: database {db}, Slack workspace saved in {saved}."


async def _keep_saved(emulator: Emulator, path: Path) -> None:
    """Write the workspace beside the database whenever it changed (at most once a second)."""
    written = -1
    while True:
        revision = emulator.changes.revision
        if revision != written:
            try:
                await asyncio.to_thread(persist.write, path, persist.encode(emulator.ws))
                written = revision
            except OSError as exc:
                logging.getLogger(__name__).warning("could not save the Slack workspace: %s", exc)
        await asyncio.sleep(SAVE_EVERY_SECONDS)


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _banner(config: PulseOpsConfig, emulator_url: str, bot_url: str) -> str:
    integration = next((i for i in config.integrations if i.type == "alertmanager"), None)
    lines = [
        "",
        "PulseOps sandbox is running (Ctrl-C to stop)",
        f"  Open in a browser: {emulator_url}/",
        f"  PulseOps:       {bot_url}   (webhooks, /api/v1/incidents, /metrics)",
        f"  API token (read, write): {SANDBOX_API_TOKEN}",
        f"    curl -s {bot_url}/api/v1/incidents -H 'Authorization: Bearer {SANDBOX_API_TOKEN}'",
        f"  Slack emulator: {emulator_url}/_emulator/state",
        f"  Phones and inboxes: {emulator_url}/_sandbox/phones   (e-mail, SMS, calls, push)",
        "",
    ]
    if integration and integration.token:
        alert = {
            "version": "4",
            "groupKey": '{}:{alertname="HighErrorRate"}',
            "status": "firing",
            "receiver": "pulseops",
            "groupLabels": {"alertname": "HighErrorRate"},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {
                        "alertname": "HighErrorRate",
                        "severity": "critical",
                        "service": integration.service or "",
                    },
                    "annotations": {"summary": "Checkout error rate above 5%"},
                    "startsAt": "2026-11-23T09:00:00Z",
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prometheus:9090/graph",
                    "fingerprint": "c0ffee0000000001",
                }
            ],
        }
        token = integration.token.get_secret_value()
        lines += [
            "Fire an alert:",
            f"  curl -s {bot_url}/webhooks/{integration.name} \\",
            f"    -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\",
            f"    -d '{json.dumps(alert)}'",
            "",
        ]
    lines += [
        "See the channels, messages and buttons Slack would show:",
        f"  curl -s {emulator_url}/_emulator/state",
        "Click Acknowledge on incident 1 as alice:",
        f"  curl -s {emulator_url}/_emulator/click -H 'Content-Type: application/json' \\",
        '    -d \'{"user": "U0ALICE01", "action_id": "incident_acknowledge", "value": "1"}\'',
        "Run a slash command as bob:",
        f"  curl -s {emulator_url}/_emulator/command -H 'Content-Type: application/json' \\",
        '    -d \'{"user": "U0BOB0001", "channel": "C0INCIDENT", '
        '"command": "/incident", "text": "list"}\'',
        "Who is on call (as bob), and the App Home tab (as alice):",
        f"  curl -s {emulator_url}/_emulator/command -H 'Content-Type: application/json' \\",
        '    -d \'{"user": "U0BOB0001", "channel": "C0PAYMENTS", '
        '"command": "/oncall", "text": ""}\'',
        f"  curl -s {emulator_url}/_emulator/home -H 'Content-Type: application/json' \\",
        '    -d \'{"user": "U0ALICE01"}\'',
        "",
    ]
    return "\n".join(lines)
