"""`Mailer` on the SDK: drafts carrying the email key in an internet message header, then send.

Headers are stored in the PS_INTERNET_HEADERS property set, so the key is also a filterable
single-value extended property: that is how a retry finds a draft or a sent copy by its key.
"""

from __future__ import annotations

import base64

from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.attachment import Attachment
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.file_attachment import FileAttachment
from msgraph.generated.models.internet_message_header import InternetMessageHeader
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.message import Message
from msgraph.generated.models.recipient import Recipient
from msgraph.generated.users.item.mail_folders.item.messages.messages_request_builder import (
    MessagesRequestBuilder,
)
from msgraph.graph_service_client import GraphServiceClient

from handlers.graph.ports import OutgoingMail
from infra.graph.client import GraphCalls, no_sdk_retry
from infra.graph.errors import GraphNotFound

KEY_HEADER = "x-fleet-event-key"
KEY_PROPERTY = f"String {{00020386-0000-0000-C000-000000000046}} Name {KEY_HEADER}"


def _recipients(addresses: list[str]) -> list[Recipient]:
    return [Recipient(email_address=EmailAddress(address=address)) for address in addresses]


class SdkMailer:
    def __init__(self, calls: GraphCalls, mailbox: str | None) -> None:
        self._calls = calls
        self._mailbox = mailbox

    @property
    def mailbox(self) -> str:
        if not self._mailbox:
            raise ValueError("FLEET_GRAPH_MAILBOX is not set: no mailbox to send email from")
        return self._mailbox

    def _find(self, folder: str, key: str) -> str | None:
        query = MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
            filter=f"singleValueExtendedProperties/any(ep: ep/id eq '{KEY_PROPERTY}' "
            f"and ep/value eq '{key}')",
            select=["id"],
        )

        async def find(client: GraphServiceClient) -> str | None:
            folder_messages = client.users.by_user_id(self.mailbox).mail_folders.by_mail_folder_id(folder)
            found = await folder_messages.messages.get(RequestConfiguration(query_parameters=query))
            items = (found.value if found else None) or []
            return items[0].id if items else None

        return self._calls.run(find)

    def find_sent(self, key: str) -> bool:
        return self._find("sentitems", key) is not None

    def find_draft(self, key: str) -> str | None:
        return self._find("drafts", key)

    def create_draft(self, mail: OutgoingMail, key: str) -> str:
        attachments: list[Attachment] = [
            FileAttachment(
                odata_type="#microsoft.graph.fileAttachment",
                name=item["name"],
                content_type=item["contentType"],
                content_bytes=base64.b64decode(item["contentBytes"]),
            )
            for item in mail.attachments
        ]
        message = Message(
            subject=mail.subject,
            body=ItemBody(
                content_type=BodyType.Html if mail.body_type == "html" else BodyType.Text, content=mail.body
            ),
            to_recipients=_recipients(mail.to),
            cc_recipients=_recipients(mail.cc),
            internet_message_headers=[InternetMessageHeader(name=KEY_HEADER, value=key)],
            attachments=attachments or None,
        )

        async def create(client: GraphServiceClient) -> str:
            draft = await client.users.by_user_id(self.mailbox).messages.post(message, no_sdk_retry())
            if draft is None or not draft.id:
                raise ValueError("Graph created a draft without an id")
            return draft.id

        return self._calls.run(create)

    def send_draft(self, draft_id: str) -> bool:
        async def send(client: GraphServiceClient) -> None:
            await (
                client.users.by_user_id(self.mailbox)
                .messages.by_message_id(draft_id)
                .send.post(no_sdk_retry())
            )

        try:
            self._calls.run(send)
        except GraphNotFound:
            return False
        return True
