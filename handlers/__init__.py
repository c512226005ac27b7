"""Thin adapters, one module per surface; each exposes `register(app, deps)`.

Slack surfaces (Bolt): `commands`, `oncall`, `actions`, `views`, `home`. HTTP (aiohttp):
`webhooks`, `api`, `ics`.
`middleware` holds the aiohttp request-id/logging/error middleware and the Bolt error handler.
"""
