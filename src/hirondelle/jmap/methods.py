"""Every module that declares JMAP methods, imported once so that the registry
(:data:`hirondelle.jmap.api.METHODS`) is complete before the first request.

Add a line here for a new module of methods.
"""

from __future__ import annotations

from hirondelle.jmap import (
    calendars,
    contacts,
    core,
    email,
    email_query,
    email_set,
    identity,
    mailbox,
    principal,
    push_subscription,
    snippet,
    submission,
    thread,
    vacation,
)

MODULES = (
    core,
    mailbox,
    thread,
    email,
    email_set,
    email_query,
    vacation,
    identity,
    submission,
    snippet,
    calendars,
    contacts,
    principal,
    push_subscription,
)
