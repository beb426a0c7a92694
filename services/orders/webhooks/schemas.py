"""Request and response schemas of webhook endpoints and deliveries."""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from ..schema_fields import ID, SLUG
from ..webhooks.domain import rules as webhook_rules

# --- outbound webhooks ----------------------------------------------------------------

class WebhookCreateSchema(Schema):
    url = fields.String(required=True, validate=validate.Length(min=1, max=webhook_rules.MAX_URL_LENGTH))
    events = fields.List(fields.String(validate=validate.OneOf(webhook_rules.EVENT_TYPES)), required=True,
                         validate=validate.Length(min=1, max=len(webhook_rules.EVENT_TYPES)))
    scene = fields.String(load_default=None, allow_none=True, validate=SLUG,
                          metadata={"description": "only this scene's events; all events when absent"})
    description = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))


class WebhookUpdateSchema(Schema):
    url = fields.String(validate=validate.Length(min=1, max=webhook_rules.MAX_URL_LENGTH))
    events = fields.List(fields.String(validate=validate.OneOf(webhook_rules.EVENT_TYPES)),
                         validate=validate.Length(min=1, max=len(webhook_rules.EVENT_TYPES)))
    description = fields.String(allow_none=True, validate=validate.Length(max=200))
    active = fields.Boolean(truthy={True}, falsy={False}, metadata={"description": "false disables the endpoint"})

    @validates_schema
    def _something_to_change(self, data, **_kwargs):
        if not data:
            raise ValidationError("give at least one field to change", "_schema")


class WebhookSchema(Schema):
    id = fields.String()
    url = fields.String()
    events = fields.List(fields.String())
    scene = fields.String(allow_none=True)
    description = fields.String(allow_none=True)
    active = fields.Boolean()
    created_at = fields.String()
    updated_at = fields.String()


class WebhookCreatedSchema(WebhookSchema):
    secret = fields.String(metadata={"description": "signs every delivery; shown this once"})


class WebhookListSchema(Schema):
    items = fields.List(fields.Nested(WebhookSchema))


class DeliveryQuerySchema(Schema):
    status = fields.String(validate=validate.OneOf(("pending", "succeeded", "failed")))
    event_type = fields.String(validate=validate.OneOf(webhook_rules.EVENT_TYPES))
    event_id = fields.String(validate=ID)
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    after = fields.Integer(validate=validate.Range(min=1), metadata={"description": "next_after of the previous page"})


class DeliveryEventSchema(Schema):
    id = fields.String()
    type = fields.String()
    created_at = fields.String()


class AttemptSchema(Schema):
    attempt = fields.Integer()
    started_at = fields.String()
    duration_ms = fields.Integer()
    status_code = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)
    succeeded = fields.Boolean()


class DeliverySchema(Schema):
    id = fields.Integer()
    endpoint_id = fields.String()
    event = fields.Nested(DeliveryEventSchema)
    status = fields.String(metadata={"description": "pending, succeeded or failed (after the last retry)"})
    attempts = fields.Integer()
    next_attempt_at = fields.String(allow_none=True)
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    delivered_at = fields.String(allow_none=True)
    created_at = fields.String()
    log = fields.List(fields.Nested(AttemptSchema))


class DeliveryPageSchema(Schema):
    items = fields.List(fields.Nested(DeliverySchema))
    next_after = fields.Integer(allow_none=True)
