"""Alert ingestion: webhook body parsers (one per integration type) producing domain Alerts."""

from bot.ingest.parsers import (
    PARSERS,
    Parser,
    parse_alertmanager,
    parse_generic,
    parse_pagerduty,
    validation_problems,
)

__all__ = [
    "PARSERS",
    "Parser",
    "parse_alertmanager",
    "parse_generic",
    "parse_pagerduty",
    "validation_problems",
]
