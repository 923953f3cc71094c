"""webhook-bridge: signed FreshBooks webhooks -> durable queue -> exactly-once tap runs."""

__version__ = "0.1.0"
