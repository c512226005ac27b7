"""PulseOps: a Slack-native incident response service (config, app factory, CLI, domain services)."""

__version__ = "0.1.0"
