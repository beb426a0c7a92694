"""Alembic environment of the gateway's database (see diandian_common.migrate)."""
from diandian_common.migrate import run_env
from gateway.models import Base

run_env(Base.metadata)
