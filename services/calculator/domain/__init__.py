"""Pure calculator logic: no Flask, no SQLAlchemy, no Redis."""
