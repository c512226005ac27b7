"""The report effect: compute one scheduled report and post it in its channel (once)."""

from __future__ import annotations

import asyncio
from dataclasses import astuple
from datetime import datetime

from bot.clock import Clock
from bot.config import PulseOpsConfig
from bot.delivery.effects.base import (
    Effects,
    Handler,
    file_mark,
    outcome_unknown,
    post_mark,
)
from bot.delivery.kinds import OutboxKind
from bot.errors import NotFound
from bot.render import Renderer
from bot.render.chart import WeekPoint, weekly_chart
from bot.render.report import ReportRenderer
from bot.services.report import ReportService
from bot.services.report_schedule import Period
from bot.slack.gateway import SlackGateway
from store.outbox import OutboxItem
from store.session import Database


class ReportEffects(Effects):
    """Delivers weekly reports recorded by `ReportService.sweep()` (or `post()`)."""

    def __init__(
        self,
        *,
        db: Database,
        gateway: SlackGateway,
        renderer: Renderer,
        config: PulseOpsConfig,
        clock: Clock,
        reports: ReportService,
    ) -> None:
        super().__init__(db=db, gateway=gateway, renderer=renderer, config=config, clock=clock)
        self.reports = reports
        self.view = ReportRenderer(renderer)

    def handlers(self) -> dict[str, Handler]:
        return {OutboxKind.REPORT: self._report}

    async def _report(self, item: OutboxItem) -> None:
        """Post the report of `payload.scope` for [period_start, period_end).

        The figures are computed now, as of the period's end, so a retry or a late delivery
        posts what an on-time one would have. The post is saved in the row's progress the
        moment it succeeds, and one that may have been made without being recorded (a
        timeout, a restart) is looked for by its mark before posting, so it is never posted
        twice. A fatal Slack error (the channel is
        gone, the bot is not in it) fails the row; retryable ones reschedule it.
        """
        progress, payload = item.progress, item.payload
        try:
            scope = self.reports.scope(None if payload["scope"] == "all" else payload["scope"])
        except NotFound:
            progress["skipped"] = "the team is no longer configured"
            return
        if scope.channel is None:
            progress["skipped"] = "the team has no channel any more"
            return
        period = Period(
            start=datetime.fromisoformat(str(payload["period_start"])),
            end=datetime.fromisoformat(str(payload["period_end"])),
        )
        if "posted" not in progress:
            report = await self.reports.build(
                scope=scope,
                period=period,
                late=bool(payload.get("late")),
                missed=int(payload.get("missed", 0)),
            )
            message = self.view.weekly_report(report)
            channel, ts = await self.gateway.post_message(
                scope.channel,
                text=message.text,
                blocks=message.blocks,
                mark=post_mark(item, "report"),
                look_first=outcome_unknown(item),
            )
            progress["posted"] = {"done": True, "result": [channel, ts]}
            await self._save_progress(item)
        if "chart" not in progress:
            # the last 8 weeks as a chart image, after the post; saved like the post, and an
            # upload whose answer was lost is found by its mark, so a retry never uploads
            # twice. A chart that cannot be uploaded never blocks the report.
            weeks = await self.reports.weekly_series(team_id=scope.team_id, end=period.end)
            png = await asyncio.to_thread(
                weekly_chart,
                [WeekPoint(*astuple(week)) for week in weeks],
                title=f"{scope.name}: incidents and response times, last {len(weeks)} weeks",
            )
            progress["chart"] = await self._optional(
                self.gateway.upload_file(
                    channel=progress["posted"]["result"][0],
                    filename=f"pulseops-{payload['scope']}-{period.start.date()}.png",
                    content=png,
                    title=f"{scope.name}: last {len(weeks)} weeks",
                    mark=file_mark(item, "chart"),
                    look_first=outcome_unknown(item),
                ),
                None,
            )
            await self._save_progress(item)
