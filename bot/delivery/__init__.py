"""Outbound delivery: the outbox worker, its kinds, and the effects that talk to Slack."""
