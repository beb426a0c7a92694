"""Who is calling about an order: the guest the gateway vouches for, or an operator.

Guests never name themselves. The gateway turns the browser's signed participant cookie
into a participant assertion (diandian_common.auth); the order's participant is that id.
Only an operator key with the ``guests`` scope (a kiosk, an integration) may name the
participant in the body, and the name is namespaced by the key, so nobody can take the
place, or the display name, of a guest they are not.

An order's personal data (names, participant id, certificate and payment links) is shown
to its participant and to operators only (:meth:`Caller.owns`); anyone else who knows the
id (order ids are on the public ledger) sees what the ledger already says.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from diandian_common.auth import Operator, acting_participant_id, internal_secret, presented_operator, request_guest
from diandian_common.errors import ApiError

from ..models import Order


@dataclass(frozen=True)
class Caller:
    participant_id: str | None  # the guest the gateway vouches for (their cookie)
    address: str | None         # the address they called from, per the gateway
    operator: Operator | None

    @property
    def address_hash(self) -> str | None:
        """A keyed hash of the caller's address: orders keep this, never the address."""
        if not self.address:
            return None
        return hmac.new(internal_secret().encode(), self.address.encode(), hashlib.sha256).hexdigest()

    def owns(self, order: Order) -> bool:
        """May this caller see the order's personal data and act on it?"""
        if self.operator is not None:
            return True
        return self.participant_id is not None and self.participant_id == order.participant_id


def current_caller() -> Caller:
    guest = request_guest()
    return Caller(guest.participant_id if guest else None, guest.address if guest else None,
                  presented_operator())


def ordering_participant(caller: Caller, participant: dict) -> dict:
    """The order's participant: the body's names with the id the platform assigns (a body
    ``participant.id`` only from an operator key with the ``guests`` scope, namespaced)."""
    participant_id = acting_participant_id(participant.get("id"), ("participant", "id"))
    if participant_id is None:
        if caller.operator is not None:
            raise ApiError(422, "validation_error", "some fields are invalid", {"participant": {"id": [
                "an operator placing an order for a guest names them in participant.id"]}})
        raise ApiError(401, "unauthorized", "placing an order needs the guest's participant cookie "
                                            "(through the gateway) or an operator key")
    return {**participant, "id": participant_id}


def require_owner(caller: Caller, order: Order) -> None:
    """403 unless the caller is the order's participant or an operator."""
    if not caller.owns(order):
        raise ApiError(403, "not_your_order", f"order {order.id} belongs to another participant")
