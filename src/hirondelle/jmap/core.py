"""RFC 8620 §4 Core/echo and §6.3 Blob/copy."""

from __future__ import annotations

from typing import Any

from hirondelle.jmap import blobs, ids
from hirondelle.jmap.api import CORE, Call, method
from hirondelle.jmap.errors import MethodError
from hirondelle.jmap.standard import known_arguments


@method("Core/echo", capability=CORE, takes_account=False)
async def echo(call: Call) -> dict[str, Any]:
    """RFC 8620 §4.1: the arguments, unchanged."""
    return call.args


@method("Blob/copy", capability=CORE, takes_account=False)
async def blob_copy(call: Call) -> dict[str, Any]:
    """RFC 8620 §6.3 Blob/copy.

    Only the signed-in account is reachable (nothing is shared yet), so a copy is always
    within one account: a blob this account can read is already its own, and the copy
    returns the same id.
    """
    known_arguments(call, ["fromAccountId", "blobIds"])
    own = ids.account(call.account_id)
    if call.args.get("fromAccountId") != own:
        raise MethodError("fromAccountNotFound", "no such account to copy from")
    if call.args.get("accountId") != own:
        raise MethodError("accountNotFound", "no such account to copy to")
    blob_ids = call.args.get("blobIds")
    if not isinstance(blob_ids, list) or not all(isinstance(b, str) for b in blob_ids):
        raise MethodError(
            "invalidArguments", "blobIds must be an array of Id", arguments=["blobIds"]
        )
    copied: dict[str, str] = {}
    not_copied: dict[str, Any] = {}
    for blob_id in dict.fromkeys(blob_ids):
        if await blobs.find(call.services, call.account_id, blob_id) is None:
            not_copied[blob_id] = {"type": "notFound"}
        else:
            copied[blob_id] = blob_id
    return {
        "fromAccountId": own,
        "accountId": own,
        "copied": copied or None,
        "notCopied": not_copied or None,
    }
