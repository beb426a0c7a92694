"""The certificates service functions: reading, issuing, re-rendering and revoking.

The transaction rule (CONTRIBUTING.md): routes, tasks and CLI commands open the unit of
work; the functions here take it (``uow``), work in ``uow.session`` and never commit or
publish: the outbox rows they add are relayed by the unit of work after its commit.

Files are written outside any transaction. The functions of "Stored files" take a
certificate already read (the rows are not expired on commit) and touch only the storage.

Issuing spans several transactions, so :func:`issue_certificate`, alone here, takes the
``unit_of_work`` factory rather than a unit of work: it looks for the order's certificate in
one unit of work, renders and stores the PDF outside any, then records the row together with
its ``orders.certificate_issued`` outbox row in another (claim → render and store → record).
A row therefore never exists without its PDF having been written once, and the message is
never lost once the row exists. If the file is lost later, it is re-rendered from the row
on demand.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import pypdfium2 as pdfium
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from diandian_common.contracts import RenderCertificate, build
from diandian_common.outbox import enqueue
from diandian_common.timestamps import as_utc, utcnow
from diandian_common.uow import UnitOfWork

from . import settings
from .domain.formatting import certificate_number, local_date, mask_name, new_certificate_id
from .domain.verification import new_verify_token
from .models import STATUS_REVOKED, STATUS_VALID, Certificate, OutboxMessage
from .preview import pdf_preview_png
from .render import CertificateContent, render_certificate
from .storage import Storage

log = logging.getLogger(__name__)

CERTIFICATE_ISSUED_TASK = "orders.certificate_issued"
ORDERS_REVOKED_TASK = "orders.certificate_revoked"
RANKING_REVOKE_TASK = "ranking.revoke"
# Fresh identifiers are drawn again when a new row collides on a random unique value.
CREATE_ATTEMPTS = 3


@dataclass(frozen=True)
class IssueOutcome:
    certificate_id: str
    created: bool


# --- stored files (outside any transaction) ---------------------------------------------

def pdf_key(certificate_id: str) -> str:
    return f"{certificate_id}.pdf"


def preview_key(certificate_id: str) -> str:
    return f"{certificate_id}.png"


def content_of(cert: Certificate) -> CertificateContent:
    return CertificateContent(
        number=cert.number, holder=cert.holder, organization=cert.organization,
        quantity_kg=cert.quantity_kg, project=cert.project, serial_range=cert.serial_range,
        scene=cert.scene, issued_at=as_utc(cert.issued_at),
        verify_url=settings.verify_url(cert.verify_code), ledger_hash=cert.ledger_hash,
    )


def render_pdf(cert: Certificate) -> bytes:
    return render_certificate(content_of(cert), settings.display_timezone())


def stored_pdf(storage: Storage, cert: Certificate) -> bytes:
    """The certificate's PDF, re-rendered from the row (and stored again) if the file is gone."""
    pdf = storage.get(pdf_key(cert.id))
    if pdf is None:
        log.warning("PDF of certificate %s is missing from storage; re-rendering it", cert.id)
        pdf = render_pdf(cert)
        storage.put(pdf_key(cert.id), pdf)
    return pdf


def ensure_pdf_stored(storage: Storage, cert: Certificate) -> None:
    if not storage.exists(pdf_key(cert.id)):
        stored_pdf(storage, cert)


def stored_preview(storage: Storage, cert: Certificate) -> bytes:
    """The PNG preview, made from the stored PDF (and stored next to it) on first request."""
    png = storage.get(preview_key(cert.id))
    if png is None:
        try:
            png = pdf_preview_png(stored_pdf(storage, cert))
        except pdfium.PdfiumError:
            # A stored PDF that PDFium cannot open (truncated, corrupt): render it anew
            # from the database, as for a missing file.
            log.warning("stored PDF of %s is unreadable; rendering it again", cert.id)
            store_rendered(storage, cert)
            png = pdf_preview_png(stored_pdf(storage, cert))
        storage.put(preview_key(cert.id), png)
    return png


def store_rendered(storage: Storage, cert: Certificate) -> None:
    """Render the PDF again and store it; the preview of the old PDF is dropped (made anew)."""
    storage.put(pdf_key(cert.id), render_pdf(cert))
    storage.delete(preview_key(cert.id))


# --- views -----------------------------------------------------------------------------

# What leads from a masked verification to the unmasked name: the certificate's id opens
# its details, PDF and preview, which all print the holder in full; the order id and the
# ledger hash lead to the order (whose personal data is its guest's alone, but the less a
# masked view links to, the less there is to combine).
UNMASKING_FIELDS = ("id", "order_id", "ledger_hash", "pdf_url", "preview_url")


def public_view(cert: Certificate, *, mask_holder: bool = False) -> dict:
    """The certificate as the API shows it (see ``schemas.CertificateSchema``).

    ``mask_holder`` hides most of the holder's name, and leaves out the fields that would
    lead to it (``UNMASKING_FIELDS``), for pages that show a verification to the public.
    """
    view = {
        "id": cert.id,
        "number": cert.number,
        "order_id": cert.order_id,
        "holder": mask_name(cert.holder) if mask_holder else cert.holder,
        "holder_masked": cert.holder_masked,
        "organization": cert.organization,
        "quantity_kg": cert.quantity_kg,
        "project": cert.project,
        "serial_range": cert.serial_range,
        "scene": cert.scene,
        "ledger_hash": cert.ledger_hash,
        "issued_at": as_utc(cert.issued_at),
        "status": cert.status,
        "revoked_at": as_utc(cert.revoked_at),
        "verify_url": settings.verify_url(cert.verify_code),
        "pdf_url": settings.pdf_url(cert.id),
        "preview_url": settings.preview_url(cert.id),
    }
    if mask_holder:
        for field in UNMASKING_FIELDS:
            del view[field]
    return view


def issued_message(cert: Certificate) -> dict:
    """Payload of ``orders.certificate_issued`` (docs/contract.md, "Messages")."""
    return build(CERTIFICATE_ISSUED_TASK, order_id=cert.order_id, certificate_id=cert.id,
                 verify_code=cert.verify_code, verify_url=settings.verify_url(cert.verify_code),
                 pdf_url=settings.pdf_url(cert.id))



# --- reading ----------------------------------------------------------------------------

def get_certificate(uow: UnitOfWork, certificate_id: str) -> Certificate | None:
    return uow.session.get(Certificate, certificate_id)


def find_by_order(uow: UnitOfWork, order_id: str) -> Certificate | None:
    return uow.session.scalars(select(Certificate).where(Certificate.order_id == order_id)).one_or_none()


def find_by_code(uow: UnitOfWork, code: str) -> Certificate | None:
    """The certificate a genuine verification code names; None for altered or unknown codes."""
    token = settings.verification_codes().token_of(code)
    if token is None:
        return None
    return uow.session.scalars(select(Certificate).where(Certificate.verify_token == token)).one_or_none()


def certificates_to_rerender(uow: UnitOfWork, certificate_ids: Sequence[str] | None) -> list[Certificate]:
    """The certificates named (every one with None), oldest first."""
    query = select(Certificate).order_by(Certificate.created_at)
    if certificate_ids is not None:
        query = query.where(Certificate.id.in_(certificate_ids))
    return list(uow.session.scalars(query))


# --- issuing: claim → render and store → record -----------------------------------------

def _new_certificate(facts: RenderCertificate) -> Certificate:
    token = new_verify_token()
    return Certificate(
        id=new_certificate_id(),
        number=certificate_number(local_date(facts.issued_at, settings.display_timezone())),
        order_id=facts.order_id,
        holder=facts.holder,
        organization=facts.organization,
        holder_masked=facts.mask_holder,
        quantity_kg=facts.quantity_kg,
        project=asdict(facts.project),
        serial_range=facts.serial_range,
        scene=asdict(facts.scene) if facts.scene else None,
        ledger_hash=facts.ledger_hash,
        issued_at=facts.issued_at,
        verify_token=token,
        verify_code=settings.verification_codes().code_for(token),
        status=STATUS_VALID,
        created_at=utcnow(),
    )


def record_new(uow: UnitOfWork, cert: Certificate) -> None:
    """Add a new certificate (its PDF stored already) and its ``orders.certificate_issued``.
    A second certificate for the order, or a random value that collided, fails the commit
    with an ``IntegrityError``."""
    uow.session.add(cert)
    enqueue(uow.session, OutboxMessage, CERTIFICATE_ISSUED_TASK, issued_message(cert))


def announce(uow: UnitOfWork, cert: Certificate) -> None:
    """Announce an existing certificate again (repairs a lost ``orders.certificate_issued``)."""
    enqueue(uow.session, OutboxMessage, CERTIFICATE_ISSUED_TASK, issued_message(cert))


def _committed(cert: Certificate) -> bool:
    """Whether ``cert`` was committed: a rolled-back insert leaves the object without identity."""
    return inspect(cert).has_identity


def issue_certificate(unit_of_work: Callable[[], UnitOfWork], storage: Storage,
                      facts: RenderCertificate) -> IssueOutcome:
    """Handle one ``certificates.render`` message; safe to run any number of times per order.

    Takes the ``unit_of_work`` factory, not a unit of work: each step below is a transaction
    of its own, and rendering and storing the PDF happen between them, outside any.

    The first run creates the certificate; every later run (a redelivery, or a duplicate
    that lost the race on ``order_id``) makes sure the PDF exists and announces the
    existing certificate again, which repairs a lost ``orders.certificate_issued``.
    """
    order_id = facts.order_id
    with unit_of_work() as uow:
        existing = find_by_order(uow, order_id)

    attempt = 0
    while existing is None and attempt < CREATE_ATTEMPTS:
        attempt += 1
        cert = _new_certificate(facts)
        storage.put(pdf_key(cert.id), render_pdf(cert))
        try:
            with unit_of_work() as uow:
                record_new(uow, cert)
        except IntegrityError:
            # Another delivery of this message won the race, or a random number collided.
            storage.delete(pdf_key(cert.id))
            with unit_of_work() as uow:
                existing = find_by_order(uow, order_id)
            continue
        except BaseException:
            if not _committed(cert):  # a row without its PDF must never exist
                storage.delete(pdf_key(cert.id))
            raise
        log.info("issued certificate %s (%s) for order %s", cert.id, cert.number, order_id)
        return IssueOutcome(cert.id, created=True)

    if existing is None:
        raise RuntimeError(f"could not create a certificate for order {order_id} "
                           f"after {CREATE_ATTEMPTS} attempts")
    ensure_pdf_stored(storage, existing)
    with unit_of_work() as uow:
        announce(uow, existing)
    log.info("certificate %s already exists for order %s; announced it again", existing.id, order_id)
    return IssueOutcome(existing.id, created=False)


# --- revoking ---------------------------------------------------------------------------

def revoke(uow: UnitOfWork, certificate_id: str, reason: str, refund: bool = False) -> Certificate | None:
    """Mark the certificate revoked, tell ranking to drop the order's kilograms and tell
    orders (which emits ``certificate.revoked`` and, with ``refund``, refunds the buyer).

    Revoking a revoked certificate changes nothing and sends nothing. None if unknown.
    """
    cert = uow.session.get(Certificate, certificate_id)
    if cert is None or cert.status == STATUS_REVOKED:
        return cert
    cert.status = STATUS_REVOKED
    cert.revoked_at = utcnow()
    cert.revocation_reason = reason.strip()
    enqueue(uow.session, OutboxMessage, RANKING_REVOKE_TASK,
            build(RANKING_REVOKE_TASK, order_id=cert.order_id))
    enqueue(uow.session, OutboxMessage, ORDERS_REVOKED_TASK, build(
        ORDERS_REVOKED_TASK, order_id=cert.order_id, certificate_id=cert.id,
        reason=cert.revocation_reason, refund=bool(refund)))
    log.info("revoked certificate %s of order %s", cert.id, cert.order_id)
    return cert
