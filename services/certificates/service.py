"""The certificates service functions: reading, issuing, re-rendering, showing the registry
records and revoking.

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

Showing the registry records (:func:`show_registry`) spans transactions too: the message is
kept in one (``registry_notices``, committed whether or not the certificate exists), copied
onto the certificate in the next, and the PDF rendered again outside any. Issuing commits
the certificate and then looks for a notice in a later transaction, the message's handler
commits the notice and then looks for the certificate: whichever commits second sees the
other's row, so a message that races the certificate's issue is never lost.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Callable, Sequence

import pypdfium2 as pdfium
from sqlalchemy import func, inspect, or_, select, update
from sqlalchemy.exc import IntegrityError

from diandian_common.backoff import wait_after
from diandian_common.contracts import RegistryCoverage, RenderCertificate, ShowRegistry, build
from diandian_common.outbox import enqueue
from diandian_common.timestamps import as_utc, utcnow
from diandian_common.uow import UnitOfWork

from . import settings
from .domain.formatting import certificate_number, local_date, mask_name, new_certificate_id
from .domain.verification import new_verify_token
from .models import STATUS_REVOKED, STATUS_VALID, Certificate, OutboxMessage, RegistryNotice
from .preview import pdf_preview_png
from .render import CertificateContent, render_certificate
from .storage import Storage

log = logging.getLogger(__name__)

CERTIFICATE_ISSUED_TASK = "orders.certificate_issued"
ORDERS_REVOKED_TASK = "orders.certificate_revoked"
RANKING_REVOKE_TASK = "ranking.revoke"
# Fresh identifiers are drawn again when a new row collides on a random unique value.
CREATE_ATTEMPTS = 3
# Renders of a certificate's PDF for one registry message: another is needed only when the
# registry grew during the last (a new record covering the same order within a render's time).
REGISTRY_RENDER_ATTEMPTS = 10


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
        registry=cert.registry_coverage,
    )


def render_pdf(cert: Certificate) -> bytes:
    started = time.perf_counter()
    pdf = render_certificate(content_of(cert), settings.display_timezone())
    # One line per render: how many renders a certificate cost shows in the logs
    # (docs/operations.md, "Certificate storage").
    log.info("rendered the PDF of certificate %s in %.2f s", cert.id, time.perf_counter() - started)
    return pdf


def render_and_store(storage: Storage, cert: Certificate) -> bytes:
    """Render the certificate's PDF and store it, once the storage says it can take it: a
    storage that cannot raises :class:`~certificates.storage.StorageUnavailable` before the
    render, which would be thrown away."""
    storage.check_writable()
    pdf = render_pdf(cert)
    storage.put(pdf_key(cert.id), pdf)
    return pdf


def stored_pdf(storage: Storage, cert: Certificate) -> bytes:
    """The certificate's PDF, re-rendered from the row (and stored again) if the file is gone."""
    pdf = storage.get(pdf_key(cert.id))
    if pdf is None:
        log.warning("PDF of certificate %s is missing from storage; re-rendering it", cert.id)
        pdf = render_and_store(storage, cert)
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
    render_and_store(storage, cert)
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
        # Public facts about the credits, like the serial range: shown masked or not.
        "registry": cert.registry_coverage,
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

def _new_certificate(facts: RenderCertificate, notice: RegistryNotice | None = None) -> Certificate:
    """A new certificate of ``facts``, showing the registry records of ``notice`` if one came
    before it."""
    token = new_verify_token()
    registry_kg = notice.anchored_kg if notice else 0
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
        registry_coverage=notice.coverage if notice else None,
        registry_kg=registry_kg,
        pdf_registry_kg=registry_kg,
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
        notice = uow.session.get(RegistryNotice, order_id)

    attempt = 0
    while existing is None and attempt < CREATE_ATTEMPTS:
        attempt += 1
        cert = _new_certificate(facts, notice)
        render_and_store(storage, cert)
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
        catch_up_registry(unit_of_work, storage, order_id)
        return IssueOutcome(cert.id, created=True)

    if existing is None:
        raise RuntimeError(f"could not create a certificate for order {order_id} "
                           f"after {CREATE_ATTEMPTS} attempts")
    ensure_pdf_stored(storage, existing)
    catch_up_registry(unit_of_work, storage, order_id)
    with unit_of_work() as uow:
        announce(uow, existing)
    log.info("certificate %s already exists for order %s; announced it again", existing.id, order_id)
    return IssueOutcome(existing.id, created=False)


# --- the registry records: note → copy onto the certificate → render again -----------------

def registry_json(coverage: RegistryCoverage) -> dict:
    """The message's registry as the certificate stores and shows it."""
    return {"anchored_kg": coverage.anchored_kg, "complete": coverage.complete,
            "records": [{"cancellation_id": r.cancellation_id, "url": r.url,
                         "retired_on": r.retired_on.isoformat(), "anchored_kg": r.anchored_kg}
                        for r in coverage.records]}


def note_registry(uow: UnitOfWork, message: ShowRegistry) -> bool:
    """Keep the message as the order's notice unless one with as many kilograms anchored is
    kept already (anchoring only grows: a repeated or older message changes nothing).
    Whether it was kept. Two first notices of one order at once: one commit fails with an
    ``IntegrityError`` and :func:`show_registry` tries again."""
    anchored_kg = message.registry.anchored_kg
    notice = uow.session.scalars(_locked(uow, select(RegistryNotice).where(
        RegistryNotice.order_id == message.order_id))).one_or_none()
    if notice is not None and notice.anchored_kg >= anchored_kg:
        return False
    if notice is None:
        notice = RegistryNotice(order_id=message.order_id)
        uow.session.add(notice)
    notice.coverage = registry_json(message.registry)
    notice.anchored_kg = anchored_kg
    notice.received_at = utcnow()
    return True


def _locked(uow: UnitOfWork, query):
    """``query`` locking its rows on PostgreSQL (SQLite's write lock serialises writers)."""
    return query if uow.session.get_bind().dialect.name == "sqlite" else query.with_for_update()


def apply_notice(uow: UnitOfWork, order_id: str) -> Certificate | None:
    """Copy the order's notice onto its certificate when it anchors more; the certificate
    (None if there is none yet)."""
    cert = uow.session.scalars(_locked(uow, select(Certificate).where(
        Certificate.order_id == order_id))).one_or_none()
    notice = uow.session.get(RegistryNotice, order_id)
    if cert is not None and notice is not None and notice.anchored_kg > cert.registry_kg:
        cert.registry_coverage = notice.coverage
        cert.registry_kg = notice.anchored_kg
        log.info("certificate %s of order %s: %s kg anchored at the registry", cert.id, order_id,
                 notice.anchored_kg)
    return cert


def mark_pdf_rendered(uow: UnitOfWork, certificate_id: str, registry_kg: int) -> bool:
    """Record that the stored PDF shows ``registry_kg``, unless the certificate moved on
    meanwhile (then the PDF just stored may be older than another's: render it again)."""
    result = uow.session.execute(update(Certificate).where(
        Certificate.id == certificate_id, Certificate.registry_kg == registry_kg)
        .values(pdf_registry_kg=registry_kg))
    return result.rowcount == 1


def refresh_pdf(unit_of_work: Callable[[], UnitOfWork], storage: Storage, cert: Certificate) -> bool:
    """Render the certificate's PDF again if it shows fewer anchored kilograms than the
    certificate (as just read); whether it did. Outside transactions: render and store, then
    mark. A mark refused (the registry grew while rendering, and a slower render may have
    stored an older PDF over a newer one) renders again from the row as it is now."""
    if cert.pdf_registry_kg == cert.registry_kg:
        return False
    for _attempt in range(REGISTRY_RENDER_ATTEMPTS):
        store_rendered(storage, cert)
        with unit_of_work() as uow:
            if mark_pdf_rendered(uow, cert.id, cert.registry_kg):
                log.info("rendered certificate %s again: %s kg anchored", cert.id, cert.registry_kg)
                return True
            cert = get_certificate(uow, cert.id)
    raise RuntimeError(f"the registry of certificate {cert.id} kept changing while its PDF was "
                       f"rendered ({REGISTRY_RENDER_ATTEMPTS} times)")


def catch_up_registry(unit_of_work: Callable[[], UnitOfWork], storage: Storage, order_id: str) -> None:
    """Copy the order's notice onto its certificate if it anchors more, then render the PDF
    again if it is behind. Run after the certificate or the notice is committed (see the
    module's docstring: whichever comes second sees the other)."""
    with unit_of_work() as uow:
        cert = apply_notice(uow, order_id)
    if cert is not None:
        refresh_pdf(unit_of_work, storage, cert)


def show_registry(unit_of_work: Callable[[], UnitOfWork], storage: Storage, message: ShowRegistry) -> bool:
    """Handle one ``certificates.show_registry``; any number of times, in any order.

    The notice is committed first, whether or not the certificate exists; then it is copied
    onto the certificate (if issued) and the PDF rendered again. A certificate issued later
    takes the notice when it is issued. Returns whether the notice was new."""
    for attempt in range(2):
        try:
            with unit_of_work() as uow:
                noted = note_registry(uow, message)
            break
        except IntegrityError:  # the order's first notice, inserted at once by another delivery
            if attempt:
                raise
    catch_up_registry(unit_of_work, storage, message.order_id)
    return noted


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
    cert.revocation_refund = bool(refund)
    _announce_revocation(uow, cert, orders=True, ranking=True)
    log.info("revoked certificate %s of order %s", cert.id, cert.order_id)
    return cert


def _announce_revocation(uow: UnitOfWork, cert: Certificate, *, orders: bool, ranking: bool) -> None:
    if ranking:
        enqueue(uow.session, OutboxMessage, RANKING_REVOKE_TASK,
                build(RANKING_REVOKE_TASK, order_id=cert.order_id))
    if orders:
        enqueue(uow.session, OutboxMessage, ORDERS_REVOKED_TASK, build(
            ORDERS_REVOKED_TASK, order_id=cert.order_id, certificate_id=cert.id,
            reason=cert.revocation_reason, refund=cert.revocation_refund))


# --- the revocation audit -----------------------------------------------------------------
#
# Orders and ranking confirm each revocation they applied (certificates.revocation_recorded).
# A revocation message the broker lost (an unsynced AOF tail, a failover) would otherwise leave
# the kilograms on the boards or the order unrefunded for good: the audit sends the message of
# whoever has not confirmed again, each copy waiting twice as long as the one before
# (diandian_common.backoff), and both consumers apply a revocation once.

ACKNOWLEDGED_BY = {"orders": Certificate.revocation_orders_acked_at,
                   "ranking": Certificate.revocation_ranking_acked_at}


def revocation_recorded(uow: UnitOfWork, order_id: str, recorded_by: str) -> bool:
    """``recorded_by`` (orders or ranking) applied the revocation of the order's certificate;
    whether this is the first time it said so."""
    column = ACKNOWLEDGED_BY[recorded_by]
    acknowledged = uow.session.execute(
        update(Certificate).where(Certificate.order_id == order_id, Certificate.status == STATUS_REVOKED,
                                  column.is_(None)).values({column: utcnow()}))
    return bool(acknowledged.rowcount)


@dataclass(frozen=True)
class RevocationAudit:
    unacknowledged: int   # revocations over the grace old that orders or ranking has not confirmed
    resent: int           # of them, those whose messages were sent again now

    @property
    def waiting(self) -> int:
        return self.unacknowledged - self.resent


def audit_revocations(uow: UnitOfWork, grace: timedelta, limit: int = 500,
                      now: datetime | None = None) -> RevocationAudit:
    """Send ``orders.certificate_revoked`` and ``ranking.revoke`` again for revocations older
    than ``grace`` that orders or ranking has not confirmed, at most ``limit`` per pass."""
    now = now or utcnow()
    unacknowledged = select(Certificate).where(
        Certificate.status == STATUS_REVOKED, Certificate.revoked_at <= now - grace,
        or_(Certificate.revocation_orders_acked_at.is_(None),
            Certificate.revocation_ranking_acked_at.is_(None)))
    found = uow.session.scalar(select(func.count()).select_from(unacknowledged.subquery())) or 0
    due = unacknowledged.where(or_(Certificate.revocation_not_before.is_(None),
                                   Certificate.revocation_not_before <= now))
    certificates = uow.session.scalars(due.order_by(Certificate.revoked_at).limit(limit)).all()
    for cert in certificates:
        _announce_revocation(uow, cert, orders=cert.revocation_orders_acked_at is None,
                             ranking=cert.revocation_ranking_acked_at is None)
        cert.revocation_resends += 1
        cert.revocation_not_before = now + wait_after(cert.revocation_resends, grace)
    return RevocationAudit(unacknowledged=found, resent=len(certificates))
