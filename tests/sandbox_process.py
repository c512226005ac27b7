"""`pulseops sandbox` as a user starts it: a child process, its banner, plain HTTP helpers."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PULSEOPS = [sys.executable, "-m", "bot.cli"]
ROOT = Path(__file__).resolve().parent.parent
BANNER_END = "Run a slash command"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(
    method: str, url: str, body: object | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """One JSON request; the status and decoded body (error statuses too)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def wait_for(probe: Callable[[], Any], *, within: float = 15.0, what: str = "condition") -> Any:
    """Poll `probe` until it returns something truthy; return it."""
    deadline = time.monotonic() + within
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@dataclass
class Sandbox:
    """A running sandbox: where its page and service are, and what it printed."""

    emulator_url: str  # "http://127.0.0.1:PORT" (the page is at emulator_url + "/")
    bot_url: str
    banner: str
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)  # what it printed after the banner

    def emulator(self, method: str, path: str, body: object | None = None) -> tuple[int, Any]:
        return http(method, f"{self.emulator_url}{path}", body)

    @property
    def api_token(self) -> str:
        """The ready-made read/write API token the banner prints."""
        match = re.search(r"API token \(read, write\): (\S+)", self.banner)
        assert match, self.banner
        return match[1]

    def api(self, path: str) -> Any:
        status, body = http(
            "GET", f"{self.bot_url}{path}", headers={"Authorization": f"Bearer {self.api_token}"}
        )
        assert status == 200, (status, body)
        return body

    def state(self) -> dict[str, Any]:
        return self.emulator("GET", "/_emulator/state")[1]  # type: ignore[no-any-return]


@contextmanager
def running_sandbox(tmp_path: Path, *options: str, db: str = "sandbox.db") -> Iterator[Sandbox]:
    """Start `pulseops sandbox` on free ports; stop it with Ctrl-C (SIGINT) afterwards."""
    emu_port, bot_port = free_port(), free_port()
    proc = subprocess.Popen(
        [
            *PULSEOPS,
            "sandbox",
            "--port",
            str(emu_port),
            "--bot-port",
            str(bot_port),
            "--db",
            str(tmp_path / db),
            *options,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        banner = ""
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        while BANNER_END not in banner and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            banner += line
        assert "PulseOps sandbox is running" in banner, banner
        sandbox = Sandbox(
            emulator_url=f"http://127.0.0.1:{emu_port}",
            bot_url=f"http://127.0.0.1:{bot_port}",
            banner=banner,
            process=proc,
        )
        # keep reading, so a chatty log never fills the pipe and blocks the sandbox
        stdout = proc.stdout
        threading.Thread(target=lambda: sandbox.output.extend(stdout), daemon=True).start()
        yield sandbox
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
