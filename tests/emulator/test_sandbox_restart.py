"""Restarting `pulseops sandbox`: the Slack workspace comes back with the database, or starts over.

Each test runs real sandboxes one after the other on the same files (Ctrl-C between them), as a
user does, and checks what the second one shows and whether its buttons still work.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.sandbox_process import PULSEOPS, ROOT, Sandbox, running_sandbox, wait_for

pytestmark = pytest.mark.slow


def incidents(sandbox: Sandbox) -> list[dict[str, Any]]:
    return sandbox.api("/api/v1/incidents?limit=100")["incidents"]  # type: ignore[no-any-return]


def fire(sandbox: Sandbox, key: str = "1", summary: str = "Disk full") -> dict[str, Any]:
    status, fired = sandbox.emulator(
        "POST", "/_sandbox/alerts", {"sample": "alertmanager", "summary": summary, "key": key}
    )
    assert status == 200 and fired["status"] == 202, fired
    [incident] = [i for i in incidents(sandbox) if i["title"] == summary]
    return incident


def channel_named(sandbox: Sandbox, prefix: str) -> dict[str, Any] | None:
    return next((c for c in sandbox.state()["channels"] if c["name"].startswith(prefix)), None)


def test_a_restarted_sandbox_shows_the_same_workspace_and_its_buttons_work(
    tmp_path: Path,
) -> None:
    with running_sandbox(tmp_path) as first:
        assert "New sandbox: database" in first.banner
        incident = fire(first)
        channel = wait_for(lambda: channel_named(first, "inc-1-disk-full"), what="the channel")
        wait_for(lambda: channel["pins"] or channel_named(first, "inc-1")["pins"], what="a pin")
        before = first.state()
    assert (tmp_path / "sandbox.slack.json").exists()

    with running_sandbox(tmp_path) as second:
        assert "Resumed: database" in second.banner
        assert "Start over with: pulseops sandbox --fresh" in second.banner
        after = second.state()
        kept = {c["id"]: c for c in after["channels"]}
        for old in before["channels"]:
            assert kept[old["id"]]["name"] == old["name"]
            assert kept[old["id"]]["pins"] == old["pins"]
            assert kept[old["id"]]["members"] == old["members"]
        for cid, messages in before["messages"].items():
            assert [m["ts"] for m in after["messages"][cid]][: len(messages)] == [
                m["ts"] for m in messages
            ]
        [resumed] = incidents(second)
        assert resumed["id"] == incident["id"] and resumed["slack"]["channel_id"] in kept
        # the announcement's Acknowledge still works: no channel_not_found
        status, clicked = second.emulator(
            "POST",
            "/_emulator/click",
            {"user": "U0ALICE01", "action_id": "incident_acknowledge", "value": "1"},
        )
        assert status == 200, clicked
        wait_for(
            lambda: incidents(second)[0]["status"] == "acknowledged", what="the acknowledgement"
        )
        errors = [
            c
            for c in second.emulator("GET", "/_emulator/calls")[1]["calls"]
            if not (c.get("response") or {}).get("ok")
        ]
        assert errors == []
        # new ids never collide with the resumed ones
        fire(second, key="2", summary="Queue backlog")
        wait_for(lambda: len(second.state()["channels"]) == len(kept) + 1, what="a new channel")
        assert len({c["id"] for c in second.state()["channels"]}) == len(kept) + 1


def test_fresh_starts_over_and_a_lone_database_is_warned_about(tmp_path: Path) -> None:
    with running_sandbox(tmp_path) as first:
        fire(first)
        wait_for(lambda: channel_named(first, "inc-1"), what="the channel")
    (tmp_path / "sandbox.slack.json").unlink()
    with running_sandbox(tmp_path) as lone:
        assert "exists but no saved Slack workspace" in lone.banner
        assert len(incidents(lone)) == 1
    with running_sandbox(tmp_path, "--fresh") as fresh:
        assert "Fresh start: removed" in fresh.banner
        assert "New sandbox: database" in fresh.banner
        assert incidents(fresh) == []
        assert channel_named(fresh, "inc-") is None


def test_a_port_in_use_is_one_line_naming_it(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [*PULSEOPS, "sandbox", "--port", str(port), "--bot-port", "0", "--db", "x.db"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
            timeout=60,
        )
    assert done.returncode == 2, done
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"error: port {port} on 127.0.0.1 is already in use"), line
    assert "--port" in line


def test_version_is_printed() -> None:
    done = subprocess.run(
        [*PULSEOPS, "--version"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0
    assert done.stdout.strip().startswith("pulseops 0.")


def test_serve_on_a_port_in_use_is_one_error_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [*PULSEOPS, "serve", "--host", "127.0.0.1", "--port", str(port)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={
                "PYTHONPATH": str(ROOT),
                "PATH": "/usr/bin:/bin",
                "SLACK_BOT_TOKEN": "xoxb-test",
                "SLACK_SIGNING_SECRET": "secret",
                "SLACK_API_URL": "http://127.0.0.1:9/api/",
                "PULSEOPS_CONFIG": str(ROOT / "bot" / "examples" / "pulseops.yml"),
                "PULSEOPS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}",
            },
            timeout=60,
        )
    assert done.returncode == 2, done
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: port {port} on 127.0.0.1 is already in use (already running?); "
        "stop it, or choose another port with --port"
    ]
    assert "Traceback" not in done.stderr
