"""Routes of projects and issuances (on the orders blueprint)."""
from __future__ import annotations

from flask.views import MethodView

from diandian_common.auth import operator_required

from ..blueprint import OPERATOR, blp
from ..wiring import unit_of_work
from . import service
from .schemas import (
    IssuanceCreateSchema,
    IssuanceSchema,
    ProjectCreateSchema,
    ProjectListSchema,
    ProjectSchema,
    ProjectUpdateSchema,
)


@blp.route("/projects")
class Projects(MethodView):
    @blp.response(200, ProjectListSchema)
    def get(self):
        with unit_of_work() as uow:
            return {"items": service.project_views(uow.session, service.all_projects(uow.session))}

    @operator_required
    @blp.doc(**OPERATOR)
    @blp.arguments(ProjectCreateSchema)
    @blp.response(201, ProjectSchema)
    @blp.alt_response(409, description="project_code_taken")
    def post(self, data):
        """Create a project (operator); its inventory comes from issuances."""
        with unit_of_work() as uow:
            return service.project_view(service.add_project(uow, **data))


@blp.route("/projects/<string:project_id>")
class ProjectResource(MethodView):
    @blp.response(200, ProjectSchema)
    def get(self, project_id):
        with unit_of_work() as uow:
            return service.project_view(service.get_project(uow, project_id))

    @operator_required
    @blp.doc(**OPERATOR)
    @blp.arguments(ProjectUpdateSchema)
    @blp.response(200, ProjectSchema)
    def patch(self, changes, project_id):
        """Change the price or descriptive fields (operator); a new price applies to new
        orders only. Code, registry and vintage name retired serials and never change."""
        with unit_of_work() as uow:
            return service.project_view(service.update_project(uow, project_id, changes))


@blp.route("/projects/<string:project_id>/issuances", methods=["POST"])
@operator_required
@blp.doc(**OPERATOR)
@blp.arguments(IssuanceCreateSchema)
@blp.response(201, IssuanceSchema)
@blp.alt_response(409, description="serials_overlap")
def create_issuance(data, project_id):
    """Record serials first..last issued to the project by its registry (operator)."""
    with unit_of_work() as uow:
        return service.issuance_view(service.record_issuance(uow, project_id, data["first"], data["last"]))
