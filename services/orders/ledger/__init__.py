"""Retirement: serials allocated to paid orders and the hash-chained public ledger."""
