"""Routes of the public ledger and its summary (on the orders blueprint)."""
from __future__ import annotations

import csv
import io

from flask import Response, request, stream_with_context
from flask.views import MethodView

from diandian_common.auth import operator_required

from ..blueprint import OPERATOR, blp
from ..catalogue import service as catalogue
from ..wiring import unit_of_work
from . import registry, service
from .domain import chain
from .schemas import (
    LedgerPageWithVerificationSchema,
    LedgerQuerySchema,
    LedgerSummarySchema,
    RegistryRetirementCreateSchema,
    RegistryRetirementListSchema,
    RegistryRetirementSchema,
)

CSV_BATCH = 1000


def wants_csv() -> bool:
    return request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv"


def _ledger_csv(project: str | None, after: int) -> Response:
    """Every entry after ``after`` (no paging), read in batches while streaming."""
    with unit_of_work() as uow:  # an unknown project is a 404 before streaming starts
        service.entries(uow.session, project=project, after=after, limit=1)

    def lines():
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(chain.CSV_COLUMNS)
        cursor = after
        while True:
            with unit_of_work() as uow:
                batch = [(e.seq, e.prev_hash, e.hash, e.body) for e in
                         service.entries(uow.session, project=project, after=cursor, limit=CSV_BATCH)]
            for row in batch:
                writer.writerow(chain.csv_row(*row))
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if len(batch) < CSV_BATCH:
                return
            cursor = batch[-1][0]

    return Response(stream_with_context(lines()), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="diandian-ledger.csv"'})


@blp.route("/ledger")
class Ledger(MethodView):
    @blp.arguments(LedgerQuerySchema, location="query")
    @blp.response(200, LedgerPageWithVerificationSchema)
    @blp.doc(responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}})
    def get(self, args):
        """Retirements in chain order. ``hash = sha256(prev_hash + canonical JSON of the entry
        without seq, prev_hash and hash)``; ``verification`` spells it out. With
        ``Accept: text/csv``: every entry (``after`` and ``project`` apply, not ``limit``) as CSV
        for auditors, with the exact hashed text in ``canonical_body``."""
        if wants_csv():
            return _ledger_csv(args.get("project"), args["after"])
        with unit_of_work() as uow:
            entries = service.entries(uow.session, project=args.get("project"), after=args["after"],
                                      limit=args["limit"] + 1)
            page = entries[: args["limit"]]
            next_after = page[-1].seq if len(entries) > args["limit"] else None
            anchors = registry.coverage_of_orders(uow.session, [e.order_id for e in page])
            return {"items": [service.entry_view(e) for e in page],
                    "registry_anchors": service.registry_anchors(page, anchors),
                    "next_after": next_after,
                    "verification": chain.VERIFICATION}


@blp.route("/ledger/summary")
class LedgerSummary(MethodView):
    @blp.response(200, LedgerSummarySchema)
    def get(self):
        """Per project: kilograms retired, the owners' share of what buyers paid (less
        refunds) and the money transferred to the owners so far; ``total`` sums them."""
        with unit_of_work() as uow:
            views = catalogue.project_views(uow.session, catalogue.all_projects(uow.session))
        items = [{"project_id": v["id"], "project_code": v["code"], "name": v["name"], "name_en": v["name_en"],
                  "owner": v["owner"], "retired_kg": v["retired_kg"], "owner_net_fen": v["owner_net_fen"],
                  "paid_to_owner_fen": v["paid_to_owner_fen"]} for v in views]
        total = {k: sum(item[k] for item in items) for k in ("retired_kg", "owner_net_fen", "paid_to_owner_fen")}
        return {"items": items, "total": total}


@blp.route("/projects/<string:project_id>/registry-retirements")
class RegistryRetirements(MethodView):
    @blp.response(200, RegistryRetirementListSchema)
    def get(self, project_id):
        """The registry cancellations recorded for the project, in the order they cover its
        retired serials, and the retired kilograms none covers yet (``unanchored_kg``)."""
        with unit_of_work() as uow:
            return registry.project_records(uow.session, project_id)

    @operator_required
    @blp.doc(**OPERATOR)
    @blp.arguments(RegistryRetirementCreateSchema)
    @blp.response(201, RegistryRetirementSchema)
    @blp.alt_response(409, description="cancellation_recorded, not_enough_retired")
    def post(self, data, project_id):
        """Record a cancellation made at the project's registry (operator): it covers the next
        ``quantity_t`` × 1000 of the project's retired serials, in serial order, not yet covered."""
        with unit_of_work() as uow:
            return registry.record_view(registry.record(uow, project_id, **data))
