"""The one error tree of PulseOps; `handlers/errors.py` maps it to HTTP and Slack answers.

PulseOpsError
├── UserError          a person or a client did something wrong; carries the message to show
│   ├── NotFound       the thing named does not exist (HTTP 404)
│   ├── Forbidden      known caller, not allowed to do this (HTTP 403)
│   ├── Conflict       the request conflicts with the current state (HTTP 409)
│   ├── RequestTimeout the body did not arrive in time (HTTP 408)
│   ├── PayloadTooLarge the body is over a size or count limit (HTTP 413)
│   └── TooManyRequests over a rate limit; carries Retry-After (HTTP 429)
├── StoreUnavailable   the database cannot write now; carries Retry-After (HTTP 503)
├── AuthError          missing or wrong credentials (HTTP 401)
├── ConfigError        the configuration is invalid; carries one line per problem
├── NotifyError        an e-mail, SMS, call or push provider refused or failed
│   ├── NotifyRetryable outage, timeout, 5xx, 429: try again later
│   └── NotifyFatal     a bad number, refused credentials…: retrying cannot help
└── SlackError         a Slack Web API call failed
    ├── SlackRetryable 429, 5xx, timeouts, transient Slack errors: try again later
    │   └── SlackUnsure a call that must not repeat may have been carried out: look first
    └── SlackFatal     invalid_auth, channel_not_found, invalid_blocks…: retrying cannot help
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


class PulseOpsError(Exception):
    """Base of every error PulseOps raises on purpose."""


class UserError(PulseOpsError):
    """Bad input from a person or a client; `message` is what they should read.

    `fields` maps a field name to what is wrong with it (shown in JSON error bodies).
    """

    status = 400

    def __init__(self, message: str, *, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = dict(fields or {})

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers to answer with besides the JSON body (e.g. Retry-After)."""
        return {}


class NotFound(UserError):
    status = 404


class Forbidden(UserError):
    """The caller is known but may not do this (an API token without the scope, say)."""

    status = 403


class Conflict(UserError):
    status = 409


class PayloadTooLarge(UserError):
    status = 413


class RequestTimeout(UserError):
    """The client did not send its body in time."""

    status = 408


class TooManyRequests(UserError):
    """Over a rate limit: try again after `retry_after` seconds."""

    status = 429

    def __init__(
        self, message: str, *, retry_after: float, fields: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message, fields=fields)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return retry_after_header(self.retry_after)


class StoreUnavailable(PulseOpsError):
    """The database cannot write now (full disk, read-only, unreachable): try again later."""

    status = 503
    retry_after = 5

    @property
    def headers(self) -> dict[str, str]:
        return retry_after_header(self.retry_after)


def retry_after_header(seconds: float) -> dict[str, str]:
    """`Retry-After` in whole seconds, at least 1 (HTTP allows no fractions)."""
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


class AuthError(PulseOpsError):
    status = 401


class ConfigError(PulseOpsError):
    """Invalid configuration; `problems` holds one human-readable line per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class NotifyError(PulseOpsError):
    """A notification provider (SMTP, Twilio, an Apprise service) did not take a message;
    `reason` is the provider's own words, safe to show (no secrets)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class NotifyRetryable(NotifyError):
    """The provider may accept it later; `retry_after` in seconds, when it said. `unsure`:
    the answer was lost (a timeout), so it may have been sent: look before sending again."""

    def __init__(
        self, reason: str, *, retry_after: float | None = None, unsure: bool = False
    ) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.unsure = unsure


class NotifyFatal(NotifyError):
    """The provider refused it for good."""


class SlackError(PulseOpsError):
    """A Slack Web API call failed."""

    def __init__(self, method: str, error: str, *, status: int | None = None) -> None:
        self.method = method
        self.error = error
        self.status = status
        super().__init__(f"{method}: {error}")


class SlackRetryable(SlackError):
    """Slack may accept the same call later; `retry_after` is seconds to wait, when known."""

    def __init__(
        self,
        method: str,
        error: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(method, error, status=status)
        self.retry_after = retry_after


class SlackFatal(SlackError):
    """Retrying the same call cannot succeed."""


class SlackUnsure(SlackRetryable):
    """A call that must not be repeated blindly (a post, a channel creation) may have been
    carried out: it timed out, its connection dropped, or Slack answered 5xx.

    `in_flight` is True when Slack may still be working on it (no answer came back): wait
    before looking for its result, or the look may come before the work.
    """

    def __init__(
        self,
        method: str,
        error: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        in_flight: bool = False,
    ) -> None:
        super().__init__(method, error, status=status, retry_after=retry_after)
        self.in_flight = in_flight
