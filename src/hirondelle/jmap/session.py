"""RFC 8620 §2: the JMAP Session resource (``/.well-known/jmap``)."""

from __future__ import annotations

from typing import Any

from hirondelle.config import Settings
from hirondelle.jmap import ids, principal
from hirondelle.jmap.api import (
    CALENDARS,
    CAPABILITIES,
    CONTACTS,
    CORE,
    MAIL,
    PRINCIPALS,
    SUBMISSION,
    VACATION,
    Limits,
)
from hirondelle.store import mailboxes
from hirondelle.store.directory import Account

# Where the API lives, below the node's HTTP root.
API_PATH = "/jmap/api/"
UPLOAD_PATH = "/jmap/upload/{accountId}/"
DOWNLOAD_PATH = "/jmap/download/{accountId}/{blobId}/{name}?type={type}"
EVENT_SOURCE_PATH = "/jmap/eventsource/?types={types}&closeafter={closeafter}&ping={ping}"

# RFC 8621 §1.3 emailQuerySortOptions: the Email/query sorts jmap/email_query.py takes.
EMAIL_QUERY_SORT_OPTIONS = [
    "receivedAt",
    "sentAt",
    "size",
    "from",
    "to",
    "subject",
    "hasKeyword",
    "allInThreadHaveKeyword",
    "someInThreadHaveKeyword",
]


def limits_for(settings: Settings) -> Limits:
    """The core limits of this node: uploads as large as the largest message accepted."""
    return Limits(max_size_upload=int(settings.limits.max_message_size))


def account_capabilities(settings: Settings) -> dict[str, Any]:
    return {
        MAIL: {
            # RFC 8621 §1.3.1
            "maxMailboxesPerEmail": None,
            "maxMailboxDepth": mailboxes.MAX_DEPTH,
            "maxSizeMailboxName": mailboxes.MAX_NAME_LENGTH,
            "maxSizeAttachmentsPerEmail": int(settings.limits.max_message_size),
            "emailQuerySortOptions": EMAIL_QUERY_SORT_OPTIONS,
            "mayCreateTopLevelMailbox": True,
        },
        # RFC 8621 §1.3.2: no delayed sending (FUTURERELEASE) yet.
        SUBMISSION: {"maxDelayedSend": 0, "submissionExtensions": {}},
        VACATION: {},
        # RFC 9610 §1.4.1: a card is in one address book here.
        CONTACTS: {"maxAddressBooksPerCard": 1, "mayCreateAddressBook": True},
        # draft-ietf-jmap-calendars §2.1: an event is in one calendar here.
        CALENDARS: {"maxCalendarsPerEvent": 1, "mayCreateCalendar": True},
    }


def session_resource(
    settings: Settings, account: Account, *, base_url: str, state: str
) -> dict[str, Any]:
    """RFC 8620 §2 Session object for ``account``; URLs are absolute on ``base_url``
    (scheme and host the client used)."""
    base = base_url.rstrip("/")
    account_id = ids.account(account.id)
    capabilities: dict[str, Any] = {c: {} for c in CAPABILITIES}
    capabilities[CORE] = limits_for(settings).to_json()
    return {
        "capabilities": capabilities,
        "accounts": {
            account_id: {
                "name": account.address,
                "isPersonal": True,
                "isReadOnly": False,
                "accountCapabilities": {
                    **account_capabilities(settings),
                    # RFC 9670 §1.2
                    PRINCIPALS: principal.account_capability(account),
                },
            }
        },
        "primaryAccounts": {c: account_id for c in CAPABILITIES if c != CORE},
        "username": account.address,
        "apiUrl": base + API_PATH,
        "downloadUrl": base + DOWNLOAD_PATH,
        "uploadUrl": base + UPLOAD_PATH,
        "eventSourceUrl": base + EVENT_SOURCE_PATH,
        "state": state,
    }
