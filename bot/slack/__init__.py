"""Everything that talks to Slack's Web API goes through `SlackGateway`."""

from bot.slack.gateway import SlackGateway, backoff_delay, classify

__all__ = ["SlackGateway", "backoff_delay", "classify"]
