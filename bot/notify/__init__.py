"""Notifications beyond Slack: the providers (SMTP, Twilio, Apprise) and what they send."""
