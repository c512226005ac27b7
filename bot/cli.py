"""The `pulseops` command line: serve, sandbox, config check, route test, db upgrade, report weekly,
token."""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.errors import ConfigError

if TYPE_CHECKING:
    from bot.domain.silences import Silence

EXIT_CONFIG = 2


def _fail(problems: Sequence[str]) -> int:
    for line in problems:
        print(f"error: {line}", file=sys.stderr)
    return EXIT_CONFIG


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the service against Slack (HTTP mode, or Socket Mode with SLACK_APP_TOKEN)."""
    from bot.config import load_config, load_settings
    from bot.logs import configure_logging
    from bot.server import run_serve

    try:
        settings = load_settings()
        tls = {"tls_cert": args.tls_cert, "tls_key": args.tls_key}
        settings = settings.model_copy(
            update={name: Path(value) for name, value in tls.items() if value}
        )
        settings.require_for_serve()
        config = load_config(Path(args.config) if args.config else settings.config_path)
    except ConfigError as exc:
        return _fail(exc.problems)
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    try:
        run_serve(
            settings, config, host=args.host or settings.host, port=args.port or settings.port
        )
    except ConfigError as exc:  # e.g. Slack refused the app-level token
        return _fail(exc.problems)
    except OSError as exc:
        host = args.host or settings.host
        message = _address_in_use(exc, host=host, ports=(args.port or settings.port,))
        if message is None:
            raise
        return _fail([message.replace("another sandbox still running?", "already running?")])
    return 0


def _address_in_use(exc: OSError, *, host: str, ports: Sequence[int]) -> str | None:
    """The one-line explanation of a port already taken, or None for other errors."""
    if exc.errno != errno.EADDRINUSE and "address already in use" not in str(exc).lower():
        return None
    taken = [p for p in ports if _port_taken(host, p)] or list(ports)
    listed = " or ".join(str(p) for p in taken)
    return (
        f"port {listed} on {host} is already in use (another sandbox still running?); "
        "stop it, or choose another port with "
        + ("--port and --bot-port" if len(ports) > 1 else "--port")
    )


def _port_taken(host: str, port: int) -> bool:
    import socket

    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pulseops")
    except PackageNotFoundError:
        return "unknown"


def cmd_sandbox(args: argparse.Namespace) -> int:
    """Run the whole product offline against the built-in Slack emulator."""
    from bot.sandbox.runner import run_sandbox

    try:
        asyncio.run(
            run_sandbox(
                host=args.host,
                port=args.port,
                bot_port=args.bot_port,
                db=args.db,
                config_path=Path(args.config) if args.config else None,
                rate_limits=args.rate_limits,
                latency_ms=args.latency_ms,
                seed_weeks=args.seed_history,
                fresh=args.fresh,
            )
        )
    except ConfigError as exc:
        return _fail(exc.problems)
    except OSError as exc:
        message = _address_in_use(exc, host=args.host, ports=(args.port, args.bot_port))
        if message is None:
            raise
        return _fail([message])
    except KeyboardInterrupt:
        pass
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    """Validate a configuration file; exit 0 when valid, 2 with every problem otherwise."""
    from bot.config import config_check

    return config_check(Path(args.file), os.environ)


def cmd_route_test(args: argparse.Namespace) -> int:
    """Show what the routes, labels and classifier make of each alert in a webhook body."""
    import json
    from datetime import UTC

    from bot.config import load_config
    from bot.ingest.dryrun import explain, pick_integration

    try:
        config = load_config(Path(args.config), environ=os.environ)
    except ConfigError as exc:
        return _fail(exc.problems)
    try:
        body = json.loads(Path(args.alert).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return _fail([f"{args.alert}: not a JSON webhook body ({exc})"])
    now = datetime.now(UTC)
    silences = asyncio.run(_current_silences(args.database_url, now)) if args.database_url else []
    try:
        integration = pick_integration(config, args.integration, body)
        for line in explain(config, integration, body, now, silences):
            print(line)
    except ValueError as exc:
        return _fail([f"{args.alert}: {exc}"])
    return 0


async def _current_silences(database_url: str, now: datetime) -> list[Silence]:
    """The silences active or pending in the database at `database_url` (read only)."""
    from store.session import Database
    from store.silences import SilenceRepository

    db = Database(database_url)
    try:
        async with db.read() as session:
            return await SilenceRepository(session).current(now=now)
    finally:
        await db.dispose()


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """Apply the database migrations (the service also does this at start-up)."""
    from bot.config import load_settings
    from store import migrate
    from store.session import Database

    try:
        settings = load_settings()
    except ConfigError as exc:
        return _fail(exc.problems)

    async def run() -> str | None:
        db = Database(args.database_url or settings.database_url)
        try:
            await migrate.upgrade(db)
            return await migrate.current_revision(db)
        finally:
            await db.dispose()

    print(f"database at revision {asyncio.run(run())}")
    return 0


def cmd_report_weekly(args: argparse.Namespace) -> int:
    """Print a weekly report, or post the latest (once: the scheduled job will not repeat it)."""
    from bot.config import load_config, load_settings

    try:
        settings = load_settings()
        if args.database_url:
            settings = settings.model_copy(update={"database_url": args.database_url})
        config = load_config(Path(args.config) if args.config else settings.config_path)
        if args.post and settings.slack_bot_token is None:
            raise ConfigError(["SLACK_BOT_TOKEN is not set: --post needs the bot token"])
        if args.post and args.week != "last":
            raise ConfigError(["--post posts the latest complete week only: drop --week"])
        missing = _missing_sqlite_file(settings.database_url)
        if missing is not None:
            raise ConfigError(
                [
                    f"no database at {missing}: give --database-url or PULSEOPS_DATABASE_URL "
                    "(the sandbox's, from where it was started: "
                    "sqlite+aiosqlite:///pulseops-sandbox.db)"
                ]
            )
    except ConfigError as exc:
        return _fail(exc.problems)
    return asyncio.run(
        _report_weekly(settings, config, team=args.team, post=args.post, week=args.week)
    )


async def _user_names(gateway: Any, users: list[str]) -> dict[str, str]:
    """People's names for the terminal (users.info), where Slack answers within 5 s; the
    others keep their ids."""
    from bot.errors import SlackError

    async def name(user: str) -> tuple[str, str | None]:
        try:
            answer = await asyncio.wait_for(gateway.call("users.info", user=user), 5)
        except (SlackError, TimeoutError, OSError):
            return user, None
        info = answer.get("user") or {}
        profile = info.get("profile") or {}
        return user, profile.get("display_name") or info.get("real_name") or info.get("name")

    found = await asyncio.gather(*(name(user) for user in users))
    return {user: text for user, text in found if text}


def _missing_sqlite_file(url: str) -> str | None:
    """The path of a SQLite database URL whose file does not exist (reading must not create
    an empty database as a side effect), else None."""
    from sqlalchemy import make_url

    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return None if Path(parsed.database).exists() else parsed.database


async def _report_weekly(
    settings: Any, config: Any, *, team: str | None, post: bool, week: str
) -> int:
    from bot.app import create_app
    from bot.delivery.kinds import OutboxKind
    from bot.deps import DEPS
    from bot.errors import UserError
    from bot.render.report import ReportRenderer, mentioned_users, to_terminal
    from store import migrate
    from store.reports import ReportRepository

    try:
        app = create_app(settings, config, run_jobs=False)
    except ConfigError as exc:
        return _fail(exc.problems)
    app.freeze()
    deps = app[DEPS]
    try:
        if await migrate.current_revision(deps.db) != migrate.head_revision():
            return _fail(["the database is not up to date: run `pulseops db upgrade` first"])
        scope = deps.reports.scope(team)
        if not post:
            chosen = deps.reports.period_of_week(scope, week)
            report = await deps.reports.build(scope=scope, period=chosen)
            message = ReportRenderer(deps.renderer).weekly_report(report)
            names = {}
            if settings.slack_bot_token is not None:
                names = await _user_names(deps.gateway, mentioned_users(message))
            sys.stdout.write(to_terminal(message, names))
            return 0
        period = deps.reports.latest_period(scope)
        if period is None:
            return _fail([f"the report schedule {scope.cron!r} has no completed period yet"])
        posting = await deps.reports.post(team_id=team)
        if not posting.enqueued:
            when = posting.recorded_at.isoformat() if posting.recorded_at else "earlier"
            print(f"The {scope.name} report for this period was already posted ({when}).")
            return 0
        await deps.outbox.drain()
        async with deps.db.read() as session:
            delivery = await ReportRepository(session).delivery(
                kind=OutboxKind.REPORT, scope=scope.id, period_start=period.start
            )
        status, error = delivery or ("pending", None)
        if status == "done":
            print(f"Posted the {scope.name} report to {scope.channel}.")
            return 0
        print(
            f"The {scope.name} report is recorded but not delivered yet ({error or status}); "
            "a running service retries it.",
            file=sys.stderr,
        )
        return 1
    except UserError as exc:
        return _fail([exc.message])
    finally:
        await app.cleanup()


def cmd_token(args: argparse.Namespace) -> int:
    """`pulseops token create|list|revoke`: API tokens kept (hashed) in the database."""
    from bot.config import load_config, load_settings

    try:
        settings = load_settings()
        config = load_config(Path(args.config) if args.config else settings.config_path)
    except ConfigError as exc:
        return _fail(exc.problems)
    return asyncio.run(_token(args, settings, config))


async def _token(args: argparse.Namespace, settings: Any, config: Any) -> int:
    from bot.clock import SystemClock
    from bot.errors import UserError
    from bot.services.api_tokens import ApiTokens, parse_scopes
    from store import migrate
    from store.session import Database

    db = Database(args.database_url or settings.database_url)
    try:
        await migrate.upgrade(db)
        tokens = ApiTokens(db=db, config=config, clock=SystemClock(), environ=os.environ)
        if args.token_command == "create":
            stored, secret = await tokens.create(name=args.name, scopes=parse_scopes(args.scopes))
            print(f"Created API token {stored.name!r} with scopes {', '.join(stored.scopes)}.")
            print("Its secret is shown this once only; PulseOps keeps just a hash:")
            print(secret)
        elif args.token_command == "list":
            for info in await tokens.list(config):
                created = f"  created {info.created_at}" if info.created_at else ""
                print(f"{info.name}\t{','.join(info.scopes)}\t{info.source}{created}")
        else:
            await tokens.revoke(name=args.name)
            print(f"Revoked API token {args.name!r}.")
        return 0
    except UserError as exc:
        return _fail([exc.message])
    finally:
        await db.dispose()


def cmd_import(args: argparse.Namespace) -> int:
    """Write a pulseops.yml fragment from PagerDuty, Opsgenie or Grafana OnCall API bodies."""
    from bot.config import load_settings
    from bot.services.importer import read_mapping

    try:
        settings = load_settings()
        mapping = read_mapping(Path(args.mapping)) if args.mapping else {}
    except ConfigError as exc:
        return _fail(exc.problems)
    try:
        text, notes = asyncio.run(_import(args, settings, mapping))
    except ConfigError as exc:
        return _fail(exc.problems)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    for note in notes:
        print(f"not carried over: {note}", file=sys.stderr)
    return 0


async def _import(args: argparse.Namespace, settings: Any, mapping: dict[str, str]) -> Any:
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.services.importer import import_fragment
    from bot.slack.gateway import SlackGateway

    gateway = None
    if settings.slack_bot_token is not None:  # match people by e-mail with users.lookupByEmail
        client = AsyncWebClient(
            token=settings.slack_bot_token.get_secret_value(),
            base_url=settings.slack_api_url,
            timeout=int(settings.slack_timeout),
        )
        gateway = SlackGateway(client)
    return await import_fragment(
        args.tool,
        [Path(f) for f in args.files],
        mapping=mapping,
        gateway=gateway,
        default_team=args.team,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pulseops", description="Slack-native incident response service."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the service against Slack")
    serve.add_argument("--config", help="YAML config (default: $PULSEOPS_CONFIG or pulseops.yml)")
    serve.add_argument("--host", help="listen address (default: $PULSEOPS_HOST or 0.0.0.0)")
    serve.add_argument("--port", type=int, help="listen port (default: $PULSEOPS_PORT or 3000)")
    serve.add_argument(
        "--tls-cert", help="serve HTTPS: PEM certificate (chain) file (default: $PULSEOPS_TLS_CERT)"
    )
    serve.add_argument(
        "--tls-key", help="serve HTTPS: PEM private key file (default: $PULSEOPS_TLS_KEY)"
    )
    serve.set_defaults(func=cmd_serve)

    imp = sub.add_parser(
        "import",
        help="write a pulseops.yml fragment from PagerDuty, Opsgenie or Grafana OnCall",
        description=(
            "Read JSON bodies saved from the tool's REST API (schedules, escalation policies, "
            "services, users) and print a pulseops.yml fragment. People are matched to Slack "
            "users by e-mail (users.lookupByEmail, with SLACK_BOT_TOKEN) or by --mapping."
        ),
    )
    imp.add_argument("tool", choices=["pagerduty", "opsgenie", "grafana-oncall"])
    imp.add_argument("files", nargs="+", metavar="FILE", help="JSON bodies from the tool's API")
    imp.add_argument("--mapping", help="YAML file: source user id or e-mail -> Slack user ID")
    imp.add_argument(
        "--team", default="imported", help="team id for what names no team (default: imported)"
    )
    imp.add_argument("--output", "-o", help="write the fragment here instead of stdout")
    imp.set_defaults(func=cmd_import)

    sandbox = sub.add_parser("sandbox", help="run offline against the built-in Slack emulator")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=3001, help="emulator port (default 3001)")
    sandbox.add_argument("--bot-port", type=int, default=3000, help="PulseOps port (default 3000)")
    sandbox.add_argument("--db", default="pulseops-sandbox.db", help="SQLite file for the sandbox")
    sandbox.add_argument("--config", help="YAML config (default: the bundled example)")
    sandbox.add_argument(
        "--fresh",
        action="store_true",
        help="start over: delete the database and the saved Slack workspace beside it",
    )
    sandbox.add_argument("--rate-limits", action="store_true", help="enforce Slack's rate limits")
    sandbox.add_argument(
        "--seed-history",
        nargs="?",
        type=int,
        const=4,
        default=0,
        metavar="WEEKS",
        help="fill an empty database with WEEKS (default 4) of past incidents",
    )
    sandbox.add_argument(
        "--latency-ms", type=int, default=0, help="latency added to each Slack call"
    )
    sandbox.set_defaults(func=cmd_sandbox)

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="validate a configuration file")
    check.add_argument("file")
    check.set_defaults(func=cmd_config_check)

    route_cmd = sub.add_parser("route", help="routing tools")
    route_sub = route_cmd.add_subparsers(dest="route_command", required=True)
    route_test = route_sub.add_parser(
        "test", help="show which route matches each alert of a webhook body, and why"
    )
    route_test.add_argument("--config", required=True, help="YAML config")
    route_test.add_argument(
        "--integration", help="the integration it arrives at (default: the first that accepts it)"
    )
    route_test.add_argument(
        "--database-url",
        default=None,
        help="also check the current silences in this database (read only)",
    )
    route_test.add_argument("alert", help="a webhook body (JSON file), e.g. Alertmanager's")
    route_test.set_defaults(func=cmd_route_test)

    db = sub.add_parser("db", help="database tools")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser("upgrade", help="apply migrations")
    upgrade.add_argument("--database-url", help="default: $PULSEOPS_DATABASE_URL")
    upgrade.set_defaults(func=cmd_db_upgrade)

    report = sub.add_parser("report", help="reports")
    report_sub = report.add_subparsers(dest="report_command", required=True)
    weekly = report_sub.add_parser(
        "weekly", help="the latest weekly report: print it (default) or post it to Slack"
    )
    weekly.add_argument("--team", help="a team id (default: the overall report)")
    weekly.add_argument("--config", help="YAML config (default: $PULSEOPS_CONFIG or pulseops.yml)")
    weekly.add_argument("--database-url", help="default: $PULSEOPS_DATABASE_URL")
    weekly.add_argument(
        "--week",
        default="last",
        help="last (the latest complete period, default), this (the one in progress, so far) "
        "or an ISO week such as 2026-W48 (the period starting in it)",
    )
    how = weekly.add_mutually_exclusive_group()
    how.add_argument("--print", action="store_true", help="write it to the terminal (default)")
    how.add_argument(
        "--post",
        action="store_true",
        help="post it to the team's (or the incidents) channel, unless already posted",
    )
    weekly.set_defaults(func=cmd_report_weekly)

    token = sub.add_parser("token", help="API tokens: create, list, revoke")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    create = token_sub.add_parser("create", help="create a token; its secret is shown once")
    create.add_argument("--name", required=True, help="shown on timelines as api:NAME")
    create.add_argument("--scopes", default="read", help="comma-separated: read,write,admin")
    listing = token_sub.add_parser("list", help="configured and created tokens (no secrets)")
    revoke = token_sub.add_parser("revoke", help="delete a created token")
    revoke.add_argument("name")
    for command in (create, listing, revoke):
        command.add_argument("--config", help="YAML config (default: $PULSEOPS_CONFIG)")
        command.add_argument("--database-url", help="default: $PULSEOPS_DATABASE_URL")
        command.set_defaults(func=cmd_token)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
