"""Test-wide safety: in-process tests never publish to a real broker.

The end-to-end tests (tests/stack.py) start their own Redis and pass their processes a
clean environment, so this only affects tests that import Celery apps directly.

diandian_common.testing is the suite's plugin: the ``redis_server`` and ``redis_url`` fixtures.
"""
import os

os.environ["CELERY_BROKER_URL"] = "memory://"

pytest_plugins = ["diandian_common.testing"]
