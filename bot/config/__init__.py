"""Configuration: environment `Settings` and the YAML file's models, validated with line numbers."""

from __future__ import annotations

from bot.config.heartbeats import HeartbeatConfig
from bot.config.models import (
    INTEGRATION_TYPES,
    IncidentsConfig,
    IntegrationConfig,
    ServiceConfig,
    SlackConfig,
    TeamConfig,
)
from bot.config.oncall import (
    ROTATION_TYPES,
    EscalationLevel,
    EscalationPolicyConfig,
    EscalationTarget,
    RotationConfig,
    ScheduleConfig,
)
from bot.config.root import (
    EXAMPLE_CONFIG_PATH,
    PulseOpsConfig,
    config_check,
    load_config,
    parse_config,
)
from bot.config.settings import Settings, load_settings

__all__ = [
    "EXAMPLE_CONFIG_PATH",
    "EscalationLevel",
    "EscalationPolicyConfig",
    "EscalationTarget",
    "HeartbeatConfig",
    "INTEGRATION_TYPES",
    "IncidentsConfig",
    "IntegrationConfig",
    "PulseOpsConfig",
    "ROTATION_TYPES",
    "RotationConfig",
    "ScheduleConfig",
    "ServiceConfig",
    "Settings",
    "SlackConfig",
    "TeamConfig",
    "config_check",
    "load_config",
    "load_settings",
    "parse_config",
]
