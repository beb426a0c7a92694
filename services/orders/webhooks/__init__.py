"""Outbound webhooks: endpoints, events, signed deliveries with retries."""
