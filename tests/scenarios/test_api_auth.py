"""API tokens over HTTP: every /api/v1 route needs one, scopes, the CLI, /metrics, rate limit."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from bot.config import parse_config
from bot.sandbox.emulator import Emulator
from tests.conftest import API_TOKEN, CONFIG_YAML, READ_TOKEN, Harness
from tests.scenarios.test_cli import run

OPEN_API_ROUTES = {"/api/v1/openapi.json"}


def api_routes(harness: Harness) -> list[tuple[str, str]]:
    """(method, path) of every /api/v1 route the app serves, placeholders filled with 1."""
    found = []
    for route in harness.app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if not path.startswith("/api/v1") or path in OPEN_API_ROUTES or route.method == "HEAD":
            continue
        found.append((route.method, re.sub(r"\{[^}]+\}", "1", path)))
    return found


async def test_no_api_route_answers_without_a_valid_token(harness: Harness) -> None:
    routes = api_routes(harness)
    assert ("GET", "/api/v1/incidents") in routes and len(routes) >= 3
    for method, path in routes:
        for token in (None, "not-a-token", API_TOKEN + "x", ""):
            status, body = await harness.call(method, path, {}, token=token)
            assert status == 401, (method, path, token, status, body)
            assert "token" in body["error"] and body["request_id"]
    # unknown /api/v1 paths are refused before anything says whether they exist
    assert (await harness.get("/api/v1/nothing-here", token=None))[0] == 401
    assert (await harness.get("/api/v1/openapi.json", token=None))[0] in (200, 404)


async def test_scopes_decide_reads_and_writes(harness: Harness) -> None:
    assert (await harness.get("/api/v1/incidents", token=READ_TOKEN))[0] == 200
    writes = [(m, p) for m, p in api_routes(harness) if m != "GET"]
    for method, path in writes:
        status, body = await harness.call(method, path, {}, token=READ_TOKEN)
        assert status == 403, (method, path, body)
        assert "'write'" in body["error"] and body["fields"] == {"scope": "missing write"}
    assert (await harness.get("/api/v1/incidents"))[0] == 200


async def test_probes_and_metrics_stay_open(harness: Harness) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        status, _ = await harness.get(path, token=None)
        assert status == 200, path


async def test_metrics_can_require_a_token(
    emulator: Emulator, database_url: str, clock: object
) -> None:
    config = parse_config(
        CONFIG_YAML.replace("api:\n", "api:\n  metrics_token_env: METRICS_TOKEN\n"),
        environ={"METRICS_TOKEN": "scrape-me"},
    )
    async with Harness(
        emulator=emulator,
        database_url=database_url,
        config=config,
        clock=clock,  # type: ignore[arg-type]
        environ={"METRICS_TOKEN": "scrape-me"},
    ) as h:
        assert (await h.get("/metrics", token=None))[0] == 401
        assert (await h.get("/metrics", token=API_TOKEN))[0] == 401
        status, text = await h.get("/metrics", token="scrape-me")
        assert status == 200 and "pulseops_" in text
        assert (await h.get("/healthz", token=None))[0] == 200


async def test_token_commands_create_list_and_revoke(
    harness: Harness, database_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "pulseops.yml"
    config.write_text(CONFIG_YAML)
    env = {"PULSEOPS_DATABASE_URL": database_url, "PULSEOPS_CONFIG": str(config)}

    async def cli(*args: str) -> str:
        done = await asyncio.to_thread(run, "token", *args, env=env)
        assert done.returncode == 0, done.stderr
        return done.stdout

    created = await cli("create", "--name", "ci", "--scopes", "read,write")
    secret = created.strip().splitlines()[-1]
    assert secret.startswith("pulseops_") and len(secret) > 40
    listed = await cli("list")
    assert "ci\tread,write\tcreated" in listed and "tester\tread,write\tconfig" in listed
    assert secret not in listed and "api-test-token" not in listed
    assert (await harness.get("/api/v1/incidents", token=secret))[0] == 200
    # only a hash is stored
    async with harness.deps.db.read() as session:
        from sqlalchemy import text

        stored = (await session.execute(text("select * from api_tokens"))).all()
    assert secret not in repr(stored)
    refused = await asyncio.to_thread(run, "token", "create", "--name", "ci", env=env)
    assert refused.returncode == 2 and "already exists" in refused.stderr
    assert "Revoked" in await cli("revoke", "ci")
    harness.deps.api_tokens.forget()  # this replica re-reads at once (else within 5 s)
    assert (await harness.get("/api/v1/incidents", token=secret))[0] == 401
    missing = await asyncio.to_thread(run, "token", "revoke", "ci", env=env)
    assert missing.returncode == 2 and "no API token named 'ci'" in missing.stderr


async def test_rate_limit_per_token(emulator: Emulator, database_url: str, clock: object) -> None:
    limits = "api:\n  requests_per_minute: 60\n  burst: 2\n"
    config = parse_config(re.sub(r"api:\n  burst: .*\n", limits, CONFIG_YAML), environ={})
    async with Harness(
        emulator=emulator,
        database_url=database_url,
        config=config,
        clock=clock,  # type: ignore[arg-type]
    ) as h:
        assert [(await h.get("/api/v1/incidents"))[0] for _ in range(2)] == [200, 200]
        assert h.http is not None
        async with h.http.get(
            f"{h.url}/api/v1/incidents", headers={"Authorization": f"Bearer {API_TOKEN}"}
        ) as r:
            assert r.status == 429 and r.headers["Retry-After"] == "1"
        # another token has its own budget
        assert (await h.get("/api/v1/incidents", token=READ_TOKEN))[0] == 200
        h.clock.advance(1)  # type: ignore[attr-defined]
        assert (await h.get("/api/v1/incidents"))[0] == 200
