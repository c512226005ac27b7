"""PulseOps: Slack-native incident response (config, app factory, CLI, domain services)."""

__version__ = "0.1.0"
