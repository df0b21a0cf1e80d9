"""RFC 8621 §8: VacationResponse/get and VacationResponse/set (a singleton per account).

What is stored here is honoured at delivery by :mod:`hirondelle.mail.vacation` (one reply
per sender per interval, never to lists or robots, RFC 3834).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection

from hirondelle.jmap.api import VACATION, Call, method
from hirondelle.jmap.errors import SetError, invalid_properties
from hirondelle.jmap.pointer import PatchError, apply_patch
from hirondelle.jmap.standard import SetContext, get_args, get_response, run_set, state_string
from hirondelle.store import journal
from hirondelle.store import vacation as vacation_store
from hirondelle.store.vacation import Vacation

SINGLETON = "singleton"
PROPERTIES = ("id", "isEnabled", "fromDate", "toDate", "subject", "textBody", "htmlBody")


def _utc(value: int | None) -> str | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value // 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_json(vacation: Vacation) -> dict[str, Any]:
    return {
        "id": SINGLETON,
        "isEnabled": vacation.is_enabled,
        "fromDate": _utc(vacation.from_date),
        "toDate": _utc(vacation.to_date),
        "subject": vacation.subject,
        "textBody": vacation.text_body,
        "htmlBody": vacation.html_body,
    }


def _date(document: dict[str, Any], name: str) -> int | None:
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.endswith("Z"):
        raise invalid_properties(name, description="a UTCDate")
    try:
        moment = datetime.fromisoformat(value[:-1] + "+00:00")
    except ValueError:
        raise invalid_properties(name, description="a UTCDate") from None
    return int(moment.timestamp() * 1_000_000)


def _optional_text(document: dict[str, Any], name: str) -> str | None:
    value = document.get(name)
    if value is not None and not isinstance(value, str):
        raise invalid_properties(name)
    return value


def from_json(document: dict[str, Any]) -> Vacation:
    unknown = set(document) - set(PROPERTIES)
    if unknown:
        raise invalid_properties(*sorted(unknown))
    if document.get("id", SINGLETON) != SINGLETON:
        raise invalid_properties("id", description="the id is immutable")
    enabled = document.get("isEnabled", False)
    if not isinstance(enabled, bool):
        raise invalid_properties("isEnabled")
    from_date, to_date = _date(document, "fromDate"), _date(document, "toDate")
    if from_date is not None and to_date is not None and to_date <= from_date:
        raise invalid_properties("toDate", description="toDate must come after fromDate")
    subject = _optional_text(document, "subject")
    if subject is not None and subject != " ".join(subject.splitlines()):
        raise invalid_properties("subject", description="one line")
    return Vacation(
        is_enabled=enabled,
        from_date=from_date,
        to_date=to_date,
        subject=subject,
        text_body=_optional_text(document, "textBody"),
        html_body=_optional_text(document, "htmlBody"),
    )


@method("VacationResponse/get", capability=VACATION)
async def vacation_get(call: Call) -> dict[str, Any]:
    """RFC 8621 §8.1: the one object has the id "singleton"."""
    args = get_args(call, properties=PROPERTIES)

    def read(conn: Connection) -> tuple[int, Vacation]:
        return (
            journal.account_modseq(conn, call.account_id)[0],
            vacation_store.get(conn, call.account_id),
        )

    modseq, vacation = await call.services.database.read(read)
    wanted = [SINGLETON] if args.ids is None else args.ids
    return get_response(
        call,
        state=state_string(modseq),
        objects=[to_json(vacation)] if SINGLETON in wanted else [],
        not_found=[*(i for i in wanted if i != SINGLETON), *args.unresolved],
        properties=args.properties,
    )


@method("VacationResponse/set", capability=VACATION)
async def vacation_set(call: Call) -> dict[str, Any]:
    """RFC 8621 §8.2: only an update of "singleton"; create and destroy are refused
    with the ``singleton`` SetError."""

    def create(sctx: SetContext, creation_id: str, properties: dict[str, Any]) -> Any:
        raise SetError("singleton", "there is one VacationResponse, update it")

    def update(sctx: SetContext, object_id: str, patch: dict[str, Any]) -> None:
        if object_id != SINGLETON:
            raise SetError("notFound")
        current = to_json(vacation_store.get(sctx.ctx.conn, sctx.account_id))
        try:
            document = apply_patch(current, patch)
        except PatchError as exc:
            raise SetError("invalidPatch", str(exc)) from None
        vacation_store.put(sctx.ctx, sctx.account_id, from_json(document))

    def destroy(sctx: SetContext, object_id: str) -> None:
        raise SetError("singleton", "the VacationResponse cannot be destroyed")

    return await run_set(call, create=create, update=update, destroy=destroy)
