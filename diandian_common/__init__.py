"""Cross-cutting plumbing shared by every Diandian service.

Only infrastructure lives here (configuration, database set-up, the error format,
Celery settings, the transactional outbox, health checks, logging). Domain code
never does: each service owns its own models, rules and messages.
"""
