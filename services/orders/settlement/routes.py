"""Settlement routes (operator key): owners, statements (JSON or CSV), payouts, verification."""
from __future__ import annotations

from flask import Response
from flask.views import MethodView

from diandian_common.auth import operator_required
from diandian_common.web import Blueprint

from ..blueprint import OPERATOR
from ..ledger.routes import wants_csv
from ..wiring import unit_of_work
from . import service as settlement
from .schemas import (
    OwnerCreateSchema,
    OwnerListSchema,
    OwnerSchema,
    OwnerUpdateSchema,
    PayoutCreateSchema,
    PayoutListSchema,
    PayoutSchema,
    ReconciliationSchema,
    SettlementQuerySchema,
    StatementListSchema,
)

blp = Blueprint("settlement", __name__, url_prefix="/api/v1",
                description="Money to project owners: owners, monthly statements, payouts, reconciliation")


@blp.route("/settlements")
class Statements(MethodView):
    @operator_required
    @blp.doc(**OPERATOR, responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}})
    @blp.arguments(SettlementQuerySchema, location="query")
    @blp.response(200, StatementListSchema)
    def get(self, args):
        """Statements per owner, project and month (``SETTLEMENT_TIMEZONE``, Asia/Shanghai
        by default): ``gross_fen`` (captured − refunded) = ``fee_fen`` + ``net_fen``;
        ``paid_fen`` is what payouts transferred. ``Accept: text/csv`` for accountants."""
        with unit_of_work() as uow:
            views = settlement.statement_views(uow, settlement.statements(uow, **args))
        if not wants_csv():
            return {"items": views}
        name = "-".join(["diandian-settlement", *(v for v in (args.get("project"), args.get("period")) if v)])
        return Response(settlement.csv_document(views).encode("utf-8"),  # BOM, CRLF: Excel reads UTF-8
                        content_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


@blp.route("/settlements/owners")
class Owners(MethodView):
    @operator_required
    @blp.doc(**OPERATOR)
    @blp.response(200, OwnerListSchema)
    def get(self):
        """Every owner."""
        with unit_of_work() as uow:
            return {"items": [settlement.owner_view(o) for o in settlement.list_owners(uow)]}

    @operator_required
    @blp.doc(**OPERATOR)
    @blp.arguments(OwnerCreateSchema)
    @blp.response(201, OwnerSchema)
    @blp.alt_response(409, description="owner_name_taken")
    def post(self, data):
        """Register a company that receives a project's money; attach it to projects with
        ``PATCH /api/v1/projects/{id} {"owner_id": …}``."""
        with unit_of_work() as uow:
            return settlement.owner_view(settlement.create_owner(uow, **data))


@blp.route("/settlements/owners/<string:owner_id>")
class OwnerResource(MethodView):
    @operator_required
    @blp.doc(**OPERATOR)
    @blp.response(200, OwnerSchema)
    def get(self, owner_id):
        with unit_of_work() as uow:
            return settlement.owner_view(settlement.get_owner(uow, owner_id))

    @operator_required
    @blp.doc(**OPERATOR)
    @blp.arguments(OwnerUpdateSchema)
    @blp.response(200, OwnerSchema)
    def patch(self, changes, owner_id):
        """Change the name, payout account or contact."""
        with unit_of_work() as uow:
            return settlement.owner_view(settlement.update_owner(uow, owner_id, changes))


@blp.route("/settlements/payouts")
class Payouts(MethodView):
    @operator_required
    @blp.doc(**OPERATOR)
    @blp.arguments(SettlementQuerySchema, location="query")
    @blp.response(200, PayoutListSchema)
    def get(self, args):
        """Payouts recorded, by month."""
        with unit_of_work() as uow:
            return {"items": [settlement.payout_view(p) for p in settlement.list_payouts(uow, **args)]}

    @operator_required
    @blp.doc(**OPERATOR)
    @blp.arguments(PayoutCreateSchema)
    @blp.response(201, PayoutSchema)
    @blp.alt_response(200, schema=PayoutSchema, description="the same payout recorded before (same reference)")
    @blp.alt_response(404, description="no such owner, project or statement")
    @blp.alt_response(409, description="period_open, statement_paid, exceeds_net, owner_unknown, "
                                       "payout_reference_taken")
    def post(self, data):
        """Record money transferred to an owner against the statement of a month that is
        over. Payouts of a statement never add up to more than its net; the same
        ``reference`` again with the same details answers the first payout (200)."""
        with unit_of_work() as uow:
            payout, created = settlement.record_payout(uow, **data)
            return settlement.payout_view(payout), 201 if created else 200


@blp.route("/settlements/verify")
class Verify(MethodView):
    @operator_required
    @blp.doc(**OPERATOR)
    @blp.response(200, ReconciliationSchema)
    def get(self):
        """The reconciliation of ``flask --app orders.app settlement verify``: ``ok`` false
        names the first difference found."""
        with unit_of_work() as uow:
            return settlement.reconciliation_view(settlement.reconcile(uow))
