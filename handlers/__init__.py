"""Thin adapters, one module per surface; each exposes `register(app, deps)`.

Slack surfaces (Bolt): `commands`, `oncall`, `actions`, `views`, `home`; `slack_http` is the
`POST /slack/events` route in front of Bolt (signatures, replays, bodies Bolt cannot read).
HTTP (aiohttp): `webhooks`, `api`, `ics`.
Listeners and routes are top-level functions that `register` only wires, so each can be
imported and called alone: Bolt listeners read `Deps` from their context (`deps_of(context)`,
put there by `middleware.provide_deps`), routes from `request.app[DEPS]`.
`middleware` also holds the aiohttp request-id/logging/error middleware and the Bolt error handler.
`listener_runs` watches event listeners' runs (`on_event` registers one), so that a Socket Mode
event is acknowledged once its listener has finished.
"""
