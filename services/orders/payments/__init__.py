"""Payment providers (the port and its adapters), confirmations, provider webhooks, refunds."""
