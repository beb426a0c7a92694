"""Pure logic of the certificates service (no Flask, no SQLAlchemy, no Redis)."""
