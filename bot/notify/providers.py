"""The providers of one running service, built once from the config and the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot.config import PulseOpsConfig
from bot.config.paging import NotificationsConfig
from bot.notify.senders import AppriseSender, SmtpSender, TwilioClient


@dataclass(frozen=True, slots=True)
class Providers:
    """The configured providers and the secret that signs e-mail links (None: not set up)."""

    config: NotificationsConfig
    smtp: SmtpSender | None
    twilio: TwilioClient | None
    apprise: AppriseSender
    link_secret: bytes | None


def build_providers(config: PulseOpsConfig, environ: Mapping[str, str]) -> Providers:
    """Senders for the configured providers, their secrets read from `environ`."""
    settings = config.notifications
    smtp = None
    if settings.smtp is not None:
        smtp = SmtpSender(
            settings.smtp,
            username=environ.get(settings.smtp.username_env or "") or None,
            password=environ.get(settings.smtp.password_env or "") or None,
        )
    twilio = None
    if settings.twilio is not None:
        twilio = TwilioClient(
            settings.twilio,
            account_sid=environ.get(settings.twilio.account_sid_env, ""),
            auth_token=environ.get(settings.twilio.auth_token_env, ""),
        )
    secret = environ.get(settings.link_secret_env or "") or None
    return Providers(
        config=settings,
        smtp=smtp,
        twilio=twilio,
        apprise=AppriseSender(timeout=settings.apprise_timeout.total_seconds()),
        link_secret=secret.encode() if secret else None,
    )
