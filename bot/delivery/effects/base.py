"""What every outbox effect shares: the worker's dependencies, optional steps, saved progress."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any

from bot.clock import Clock
from bot.config import PulseOpsConfig
from bot.errors import SlackFatal
from bot.render import Renderer
from bot.slack.gateway import SlackGateway
from bot.slack.lookup import FileMark, PostMark
from store.outbox import OutboxItem, OutboxRepository
from store.session import Database

log = logging.getLogger(__name__)

Handler = Callable[[OutboxItem], Awaitable[None]]


class LeaseBusy(Exception):
    """Another worker is editing this incident's messages; try again shortly."""


class GiveUp(Exception):
    """This row can never be delivered (an endpoint refused it for good): mark it dead."""


class Postpone(Exception):
    """Deliver this row again in `after` seconds (a workflow step waiting for its retry)."""

    def __init__(self, after: float, reason: str) -> None:
        super().__init__(reason)
        self.after = after


class Effects(ABC):
    """The effects of one area, built on the worker's dependencies.

    A handler delivers one outbox row. It may raise SlackRetryable or LeaseBusy (the worker
    reschedules the row) or SlackFatal (the row fails); steps it has done are noted in
    `item.progress`, which the worker saves when the row completes or is rescheduled.
    """

    def __init__(
        self,
        *,
        db: Database,
        gateway: SlackGateway,
        renderer: Renderer,
        config: PulseOpsConfig,
        clock: Clock,
    ) -> None:
        self.db = db
        self.gateway = gateway
        self.renderer = renderer
        self.config = config
        self.clock = clock

    @abstractmethod
    def handlers(self) -> dict[str, Handler]:
        """The outbox kinds this area delivers, each with its handler."""

    async def _save_progress(self, item: OutboxItem) -> None:
        """Persist `item.progress` now, in its own transaction, so a step that must not
        repeat stays on record even if the worker dies before the row completes."""
        await self.db.write_grouped(
            lambda session: OutboxRepository(session).save_progress(
                item_id=item.id, progress=item.progress
            )
        )

    async def _optional(self, step: Awaitable[object], incident_id: int | None) -> dict[str, Any]:
        """Run a step the incident can live without: a fatal Slack error is noted, not raised.

        Retryable errors still propagate, so the step is tried again later.
        """
        try:
            result = await step
        except SlackFatal as exc:
            log.warning(
                "optional slack step failed",
                extra={"incident_id": incident_id, "method": exc.method, "error": exc.error},
            )
            return {"done": False, "error": f"{exc.method}: {exc.error}"}
        return {"done": True, "result": result} if result else {"done": True}


# progress key: a delivery of this row ended on a call that may have been carried out
UNSURE = "unsure"


def outcome_unknown(item: OutboxItem) -> bool:
    """Whether an earlier delivery of this row may have done Slack work it could not record:
    it ended on a call whose answer was lost (a timeout, a 5xx), or it never finished (its
    process died). Then each post or channel is looked for before it is made. The worker
    notes both in the row's progress, which keeps the note until the row is done."""
    return bool(item.progress.get(UNSURE))


def post_mark(item: OutboxItem, step: str) -> PostMark:
    """The mark of this row's post for `step`, by which a later delivery finds it again."""
    return PostMark(
        outbox_id=item.id, step=step, since=item.created_at, incident_id=item.incident_id
    )


def file_mark(item: OutboxItem, step: str) -> FileMark:
    """The mark of this row's upload for `step`, by which a later delivery finds it again."""
    return FileMark(outbox_id=item.id, step=step, since=item.created_at)
