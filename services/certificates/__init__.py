"""Certificates service: renders the bilingual certificate of honour, stores it, verifies it."""
