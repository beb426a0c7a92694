"""Alembic environment of the orders service (see diandian_common.migrate)."""
from diandian_common.migrate import run_env
from orders.models import Base

run_env(Base.metadata)
