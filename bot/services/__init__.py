"""Application services: incidents, alert ingest, escalation, on-call, handoffs, insight."""
