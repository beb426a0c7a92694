"""The gateway: the platform's only public entry (routing, health, pages)."""
