"""`email.send`: one email through Graph, sent once however often the event is delivered.

Graph's `sendMail` has no idempotency key, so the fleet sends in two steps: it creates a draft
carrying the event's key in an internet message header (`x-fleet-event-key`), records the
draft's id in the database, then sends that draft. A retry (after a timeout, a 503/504 or a
dropped connection once the request left) looks up what was done: a recorded draft that is no
longer there was sent, and the key found in Sent Items means sent; only an unsent draft is sent.

Remaining risk, stated plainly: Graph accepts a send (202) and delivers it asynchronously; if a
retry runs while an accepted draft has neither left Drafts nor reached Sent Items, sending that
draft again may deliver a second copy. The retry's backoff (seconds) makes that window small,
not empty. A mailbox that does not keep sent items, or an operator deleting the draft or the
sent copy between attempts, also defeats the lookup. A crash after the draft is created and
before its id is recorded leaves an unsent draft, which the retry finds by its header.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from handlers.envelope import Event
from handlers.errors import InvalidEvent, RetryableError
from handlers.graph.ports import Mailer, OutgoingMail, SendRecords

INLINE_ATTACHMENT_LIMIT = 3 * 1024 * 1024
"""Graph takes attachments inline in one request up to 3 MB in all; larger need upload sessions."""


def email_key(event: Event) -> str:
    """The key a message carries: the event's idempotency key, hashed to a header-safe token."""
    return hashlib.sha256(f"{event.source}\n{event.id}".encode()).hexdigest()[:32]


def _addresses(data: dict[str, Any], name: str, *, required: bool) -> list[str]:
    value = data.get(name, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and "@" in v for v in value):
        raise InvalidEvent(f"data.{name}", "must be an email address or a list of them")
    if required and not value:
        raise InvalidEvent(f"data.{name}", "must name at least one recipient")
    return value


def _attachments(data: dict[str, Any]) -> list[dict[str, str]]:
    raw = data.get("attachments", [])
    if not isinstance(raw, list):
        raise InvalidEvent("data.attachments", "must be a list")
    total, out = 0, []
    for index, item in enumerate(raw):
        field = f"data.attachments[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InvalidEvent(field, "must be an object with name, contentType and contentBytes")
        try:
            total += len(base64.b64decode(str(item.get("contentBytes", "")), validate=True))
        except (binascii.Error, ValueError):
            raise InvalidEvent(f"{field}.contentBytes", "must be base64") from None
        content_type = str(item.get("contentType", "application/octet-stream"))
        out.append({"name": item["name"], "contentType": content_type, "contentBytes": item["contentBytes"]})
    if total > INLINE_ATTACHMENT_LIMIT:
        raise InvalidEvent("data.attachments", f"{total} bytes, over Graph's inline limit of 3 MB")
    return out


def parse_mail(event: Event) -> OutgoingMail:
    data = event.data
    if not isinstance(data, dict):
        raise InvalidEvent("data", "must be an object with to, subject and html or text")
    subject = data.get("subject")
    if not isinstance(subject, str):
        raise InvalidEvent("data.subject", "must be a string")
    html, text = data.get("html"), data.get("text")
    if not isinstance(html, str) and not isinstance(text, str):
        raise InvalidEvent("data", "needs an html or a text body")
    return OutgoingMail(
        to=_addresses(data, "to", required=True),
        cc=_addresses(data, "cc", required=False),
        subject=subject,
        body=html if isinstance(html, str) else str(text),
        body_type="html" if isinstance(html, str) else "text",
        attachments=_attachments(data),
    )


def send_email(event: Event, *, attempt: int, mailer: Mailer, email_sends: SendRecords) -> None:
    """Send the email once: draft with the key, record the draft, send it (module docstring).

    Claim: the send is outside the database; the claim stops two workers running it at once,
    and the draft-then-send lookup covers the window the claim cannot (an ambiguous failure).
    """
    mail = parse_mail(event)
    key = email_key(event)
    draft_id = email_sends.draft_for(key) or mailer.find_draft(key)
    if attempt > 1 and mailer.find_sent(key):
        email_sends.record_sent(key)
        return
    if draft_id is None:
        draft_id = mailer.create_draft(mail, key)
    email_sends.record_draft(key, draft_id)
    if mailer.send_draft(draft_id):
        email_sends.record_sent(key)
        return
    if mailer.find_sent(key):  # the draft left Drafts because an earlier attempt sent it
        email_sends.record_sent(key)
        return
    email_sends.record_draft(key, "")  # the draft vanished unsent: the next attempt drafts anew
    raise RetryableError("the draft disappeared before it was sent; drafting again")
