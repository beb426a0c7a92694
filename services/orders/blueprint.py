"""The orders service's main blueprint: the routes of catalogue, ordering, payments and
ledger attach to it (one OpenAPI tag, as before the split); settlement and webhooks have
their own. app.py imports every routes module before registering it."""
from __future__ import annotations

from diandian_common.web import Blueprint

blp = Blueprint("orders", "orders", url_prefix="/api/v1", description="Projects, orders, payments, ledger")

# flask-smorest documentation of the operator-only routes (X-API-Key).
OPERATOR = {"security": [{"ApiKeyAuth": []}]}
