"""The sandbox wing: `pulseops sandbox`, sample alerts, seeded history and the Slack emulator."""
