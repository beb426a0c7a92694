"""Alembic environment of the calculator service (see diandian_common.migrate)."""
from diandian_common.migrate import run_env
from calculator.models import Base

run_env(Base.metadata)
