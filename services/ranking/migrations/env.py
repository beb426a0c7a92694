"""Alembic environment of the ranking service (see diandian_common.migrate)."""
from diandian_common.migrate import run_env
from ranking.models import Base

run_env(Base.metadata)
