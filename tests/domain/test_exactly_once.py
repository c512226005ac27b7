"""Pure pieces of exactly-once delivery: post marks, worker ids, the Slack timeout setting."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.config.settings import load_settings
from bot.delivery import owner
from bot.errors import ConfigError
from bot.slack.lookup import MARK_EVENT_TYPE, PostMark

SINCE = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


def test_a_mark_matches_only_its_own_row_and_step() -> None:
    mark = PostMark(outbox_id=12, step="announcement", since=SINCE, incident_id=3)
    metadata = mark.metadata()
    assert metadata == {
        "event_type": MARK_EVENT_TYPE,
        "event_payload": {"outbox_id": 12, "step": "announcement", "incident_id": 3},
    }
    assert mark.matches(metadata)
    assert not PostMark(outbox_id=13, step="announcement", since=SINCE).matches(metadata)
    assert not PostMark(outbox_id=12, step="message", since=SINCE).matches(metadata)
    assert not mark.matches({**metadata, "event_type": "someone_else"})
    for junk in (None, "x", {}, {"event_type": MARK_EVENT_TYPE, "event_payload": "12"}):
        assert not mark.matches(junk)


def fake_proc(
    root: Path, *, pids: dict[int, str], boot: str = "b00t", ns: str = "pid:[4026]"
) -> Path:
    """A /proc with the given processes (pid -> start time), a boot id and a PID namespace."""
    (root / "sys" / "kernel" / "random").mkdir(parents=True)
    (root / "sys" / "kernel" / "random" / "boot_id").write_text(boot + "\n")
    (root / "self" / "ns").mkdir(parents=True)
    (root / "self" / "ns" / "pid").symlink_to(ns)
    for pid, started in pids.items():
        (root / str(pid)).mkdir()
        fields = ["S", *["0"] * 18, started, "0", "0"]
        (root / str(pid) / "stat").write_text(f"{pid} (py (worker) x) {' '.join(fields)}\n")
    return root


def test_process_start_survives_odd_command_names(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, pids={41: "98765"})
    assert owner.process_start(41, proc) == "98765"
    assert owner.process_start(42, proc) == ""


def test_only_same_host_claimers_whose_process_is_gone_count_as_dead(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, pids={100: "500", 200: "700"})
    host = owner.host_key("box", proc)
    assert host.startswith("box/") and host != owner.host_key("other", proc)
    me = f"{host}:100:500:aaaaaa"
    assert not owner.is_gone(me, me=me, proc=proc)
    assert not owner.is_gone(f"{host}:100:500:bbbbbb", me=me, proc=proc)  # same process
    assert not owner.is_gone(f"{host}:200:700:cccccc", me=me, proc=proc)  # alive
    assert owner.is_gone(f"{host}:300:900:dddddd", me=me, proc=proc)  # no such process
    assert owner.is_gone(f"{host}:200:600:eeeeee", me=me, proc=proc)  # pid reused since
    assert not owner.is_gone(f"{host}:300:-:ffffff", me=me, proc=proc)  # start unknown
    assert not owner.is_gone("other/0123456789:300:900:x", me=me, proc=proc)  # elsewhere
    assert not owner.is_gone("old-style:300:abcdef12", me=me, proc=proc)
    assert not owner.is_gone(f"{host}:300:900:x", me="plainhost:100:500:a", proc=proc)


def test_without_proc_nothing_is_judged_dead(tmp_path: Path) -> None:
    assert owner.host_key("box", tmp_path / "none") == ""
    worker = owner.new_worker_id(tmp_path / "none")
    assert owner.parse(worker) is None and len(worker) <= 64
    assert len(owner.new_worker_id()) <= 64


def test_slack_timeout_setting() -> None:
    assert load_settings({}).slack_timeout == 10
    assert load_settings({"PULSEOPS_SLACK_TIMEOUT": "0.5"}).slack_timeout == 0.5
    for bad in ("0", "-1", "soon"):
        with pytest.raises(ConfigError) as info:
            load_settings({"PULSEOPS_SLACK_TIMEOUT": bad})
        assert info.value.problems[0].startswith("PULSEOPS_SLACK_TIMEOUT")


def test_slack_claim_lease_setting() -> None:
    assert load_settings({}).slack_claim_lease == 30
    assert load_settings({"PULSEOPS_SLACK_CLAIM_LEASE": "2.5"}).slack_claim_lease == 2.5
    assert load_settings({"PULSEOPS_SLACK_CLAIM_LEASE": " 3600 "}).slack_claim_lease == 3600
    for bad in ("0", "0.5", "3601", "-1", "soon", "nan", "inf", ""):
        with pytest.raises(ConfigError) as info:
            load_settings({"PULSEOPS_SLACK_CLAIM_LEASE": bad})
        (problem,) = info.value.problems
        assert problem.startswith(
            "PULSEOPS_SLACK_CLAIM_LEASE: must be a number of seconds from 1 to 3600"
        ), problem
