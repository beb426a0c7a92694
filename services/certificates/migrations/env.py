"""Alembic environment of the certificates service (see diandian_common.migrate)."""
from diandian_common.migrate import run_env
from certificates.models import Base

run_env(Base.metadata)
