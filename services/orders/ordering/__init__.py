"""Placing an order (idempotent), its lifecycle from payment window to completion, expiry."""
