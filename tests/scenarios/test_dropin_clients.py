"""The official PagerDuty Python clients from PyPI, pointed at PulseOps served over HTTPS.

`pagerduty` (the current client, which refuses plain http:// base URLs) and `pdpyras` (its
predecessor, still widely used) trigger, acknowledge and resolve, and send a change event,
against the running service; the certificate is made by the test with `trustme`. Also:
`pulseops serve`'s TLS settings refuse a half or broken configuration.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pagerduty
import pdpyras
import pytest
import trustme

from bot.clock import ManualClock
from bot.config import PulseOpsConfig, Settings, load_settings
from bot.errors import ConfigError
from bot.sandbox.emulator import Emulator
from bot.server import start, tls_context
from tests.conftest import API_TOKEN, BOT_TOKEN, SIGNING_SECRET, Harness
from tests.sandbox_process import PULSEOPS, ROOT, free_port
from tests.scenarios.test_dropin import (  # noqa: F401  (config: the drop-in config fixture)
    DROPIN_YAML,
    PD_KEY,
    config,
)


class TlsHarness(Harness):
    """The running service served over HTTPS with a certificate the test's own CA signed."""

    def __init__(self, *, ca: trustme.CA, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ca = ca

    async def start(self) -> None:
        await super().start()  # the plain-HTTP site is kept for the API reads
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        self._tls_runner, port = await start(
            self.app, host="127.0.0.1", port=0, ssl_context=context
        )
        self.https_url = f"https://127.0.0.1:{port}"

    async def stop(self) -> None:
        runner = getattr(self, "_tls_runner", None)
        if runner is not None:
            await runner.cleanup()
            self._tls_runner = None
        await super().stop()


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def tls(
    emulator: Emulator,
    database_url: str,
    config: PulseOpsConfig,  # noqa: F811
    clock: ManualClock,
    ca: trustme.CA,
) -> AsyncIterator[TlsHarness]:
    async with TlsHarness(
        ca=ca, emulator=emulator, database_url=database_url, config=config, clock=clock
    ) as h:
        yield h


async def only_incident(harness: Harness) -> dict[str, Any]:
    status, body = await harness.get("/api/v1/incidents")
    assert status == 200, body
    (listed,) = body["incidents"]
    return await harness.incident(listed["id"])


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
async def test_official_pagerduty_client_over_https(
    tls: TlsHarness, ca: trustme.CA, tmp_path: Path
) -> None:
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    trust = ssl.create_default_context(cafile=str(bundle))
    client = pagerduty.EventsApiV2Client(PD_KEY, base_url=tls.https_url, verify=trust)
    with pytest.raises(pagerduty.UrlError):  # why PulseOps must serve HTTPS itself
        pagerduty.EventsApiV2Client(PD_KEY, base_url=tls.url)

    key = await asyncio.to_thread(
        client.trigger,
        "Disk full on db-1",
        "db-1.example.com",
        dedup_key="db-1-disk",
        severity="error",
        custom_details={"free": "0%"},
    )
    assert key == "db-1-disk"
    incident = await only_incident(tls)
    assert (incident["title"], incident["severity"], incident["status"]) == (
        "Disk full on db-1",
        "SEV2",
        "triggered",
    )
    assert await asyncio.to_thread(client.acknowledge, "db-1-disk") == "db-1-disk"
    assert (await only_incident(tls))["status"] == "acknowledged"

    # (the client's own default timestamp raises in pagerduty 7.2, so the test passes one)
    await asyncio.to_thread(
        client.submit, "Deployed db tuning", source="ci", timestamp="2026-11-23T08:42:58Z"
    )
    incident = await only_incident(tls)
    assert [e["text"] for e in incident["timeline"] if e["kind"] == "change"] == [
        "Change: Deployed db tuning"
    ]

    assert await asyncio.to_thread(client.resolve, "db-1-disk") == "db-1-disk"
    assert (await only_incident(tls))["status"] == "resolved"

    # a wrong routing key: the client reports PulseOps' 400 as PagerDuty's
    wrong = pagerduty.EventsApiV2Client("not-a-key", base_url=tls.https_url, verify=trust)
    with pytest.raises(pagerduty.HttpError) as info:
        await asyncio.to_thread(wrong.trigger, "x", "y")
    assert info.value.response.status_code == 400
    assert info.value.response.json()["status"] == "invalid event"


async def test_pdpyras_events_session_over_https(
    tls: TlsHarness, ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    # requests lets these variables win over Session.verify: trust the test's CA through them
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    session = pdpyras.EventsAPISession(PD_KEY)
    session.url = tls.https_url
    key = await asyncio.to_thread(session.trigger, "Queue backlog above 10k", "mq-1")
    assert isinstance(key, str) and key  # the key PulseOps made, to resolve with
    assert (await only_incident(tls))["status"] == "triggered"
    assert await asyncio.to_thread(session.resolve, key) == key
    assert (await only_incident(tls))["status"] == "resolved"


# ---- serve's TLS settings ---------------------------------------------------------------------


def test_tls_needs_both_the_certificate_and_the_key() -> None:
    settings = load_settings(
        {
            "SLACK_BOT_TOKEN": "xoxb-1",
            "SLACK_SIGNING_SECRET": "s",
            "PULSEOPS_TLS_CERT": "/etc/pulseops/cert.pem",
        }
    )
    with pytest.raises(ConfigError) as info:
        settings.require_for_serve()
    assert info.value.problems == [
        "PULSEOPS_TLS_CERT is set but PULSEOPS_TLS_KEY is not: HTTPS needs both files"
    ]


def test_tls_context_names_a_missing_or_mismatched_file(ca: trustme.CA, tmp_path: Path) -> None:
    cert, other = ca.issue_cert("127.0.0.1"), ca.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    other.private_key_pem.write_to_path(str(key_file))  # another certificate's key
    with pytest.raises(ConfigError) as info:
        tls_context(cert_file, key_file)
    assert "cannot load" in info.value.problems[0]
    with pytest.raises(ConfigError) as info:
        tls_context(tmp_path / "missing.pem", key_file)
    assert "no such file" in info.value.problems[0]
    cert.private_key_pem.write_to_path(str(key_file))
    assert isinstance(tls_context(cert_file, key_file), ssl.SSLContext)
    assert isinstance(Settings(tls_cert=cert_file, tls_key=key_file).tls_cert, Path)


# ---- `pulseops serve` over HTTPS, as deployed -------------------------------------------------


@pytest.mark.slow
async def test_pulseops_serve_over_https_takes_the_official_client(
    emulator: Emulator, ca: trustme.CA, tmp_path: Path
) -> None:
    """`pulseops serve --tls-cert --tls-key` in a child process; the `pagerduty` client pages."""
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file, bundle = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(bundle))
    config_file = tmp_path / "pulseops.yml"
    config_file.write_text(DROPIN_YAML)
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PULSEOPS_"))},
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": emulator.api_url,
        "PULSEOPS_CONFIG": str(config_file),
        "PULSEOPS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'pulseops.db'}",
        "PULSEOPS_HOST": "127.0.0.1",
        "PULSEOPS_PORT": str(port),
    }
    proc = await asyncio.create_subprocess_exec(
        *PULSEOPS,
        "serve",
        "--tls-cert",
        str(cert_file),
        "--tls-key",
        str(key_file),
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    base = f"https://127.0.0.1:{port}"
    trust = ssl.create_default_context(cafile=str(bundle))
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                try:
                    async with http.get(f"{base}/healthz", ssl=trust) as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                assert proc.returncode is None, "serve exited"
                await asyncio.sleep(0.1)
            client = pagerduty.EventsApiV2Client(PD_KEY, base_url=base, verify=trust)
            key = await asyncio.to_thread(client.trigger, "Served over HTTPS", "tls-1")
            assert key
            headers = {"Authorization": f"Bearer {API_TOKEN}"}
            async with http.get(f"{base}/api/v1/incidents", headers=headers, ssl=trust) as r:
                (listed,) = (await r.json())["incidents"]
            assert listed["title"] == "Served over HTTPS"
            with pytest.raises(aiohttp.ClientError):  # it speaks TLS only
                async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                    await r.read()
    finally:
        proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), timeout=15)
    assert b'"scheme": "https"' in err  # the start-up log says how it serves
