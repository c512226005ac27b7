"""Who may do what from Slack (`permissions` in the YAML): a check before any change.

An action the configuration leaves out is open to everyone in the workspace, as before. A
rule allows the members of the team concerned (the incident's, or the schedule's), one person,
or the members of a Slack user group (asked of Slack; if Slack cannot answer, the group does
not count, so a refusal never turns into a permission).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from bot.config import PulseOpsConfig
from bot.config.api import PermissionRule
from bot.errors import Forbidden, SlackError
from bot.render import Replies
from bot.slack.gateway import SlackGateway

log = logging.getLogger(__name__)

Action = Literal["resolve", "override", "silence", "run_workflow", "roles", "severity"]

_SAID = {  # how a refusal names the action
    "run_workflow": "run workflows on",
    "roles": "set roles on",
    "severity": "change the severity of",
}


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why someone may not: the action and the rules that would have allowed it."""

    action: Action
    rules: tuple[PermissionRule, ...]
    team_name: str | None


class Permissions:
    """Checks a Slack user against the `permissions` rules of one action."""

    def __init__(self, *, config: PulseOpsConfig, gateway: SlackGateway) -> None:
        self.config = config
        self.gateway = gateway

    async def refusal(self, action: Action, *, user: str, team_id: str | None) -> Refusal | None:
        """None when `user` may do `action` (for the team `team_id`), else why not."""
        rules: tuple[PermissionRule, ...] | None = getattr(self.config.permissions, action)
        if rules is None:
            return None
        team = self.config.team(team_id) if team_id else None
        for rule in rules:
            if rule.user is not None and rule.user == user:
                return None
            if rule.team_members and team is not None and user in team.members:
                return None
            if rule.user_group is not None and user in await self._group(rule.user_group):
                return None
        return Refusal(action=action, rules=rules, team_name=team.name if team else None)

    async def require(
        self, action: Action, *, user: str, team_id: str | None, replies: Replies
    ) -> None:
        """Raise Forbidden (its message names who may) unless `user` may do `action`."""
        refused = await self.refusal(action, user=user, team_id=team_id)
        if refused is not None:
            raise Forbidden(
                replies.not_permitted(
                    action=_SAID.get(refused.action, refused.action),
                    rules=refused.rules,
                    team_name=refused.team_name,
                )
            )

    async def _group(self, group_id: str) -> set[str]:
        try:
            answer = await self.gateway.call("usergroups.users.list", usergroup=group_id)
        except SlackError as exc:
            log.warning(
                "could not read a user group for a permission check",
                extra={"usergroup": group_id, "error": exc.error},
            )
            return set()
        return {str(u) for u in answer.get("users", [])}
