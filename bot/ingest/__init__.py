"""The alert path: parsers (one per integration type), the pipeline's stages and decisions.

`build_pipeline(config)` in `bot.ingest.pipeline` assembles the stages in order.
"""

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
