"""Importers of schedules, escalation policies and services from PagerDuty, Opsgenie and
Grafana OnCall (`pulseops import`): `model` holds the neutral form and the fragment writer."""
