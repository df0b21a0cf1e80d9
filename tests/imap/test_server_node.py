"""The IMAP listeners started by a Node from the settings, as ``hirondelle serve`` does."""

from __future__ import annotations

import asyncio
import imaplib
import ssl

from hirondelle import tls
from hirondelle.config import Settings
from hirondelle.node import Node
from tests.imap.conftest import ADDRESS, PASSWORD


async def test_node_serves_imap_and_imaps_from_settings(settings: Settings) -> None:
    configured = settings.model_copy(
        update={
            "listen": settings.listen.model_copy(
                update={"imap": "127.0.0.1:0", "imaps": "127.0.0.1:0"}
            )
        }
    )
    configured = Settings.model_validate(configured.model_dump())
    tls.generate_self_signed(
        configured.certificate_path(), configured.key_path(), hostname="localhost"
    )
    node = Node(configured)
    await node.start()
    try:
        assert node.services is not None
        await node.services.accounts.add_domain("example.test")
        await node.services.accounts.add_account(ADDRESS, password=PASSWORD)
        ports = {listener.name: listener.port for listener in node.listeners}
        context = ssl.create_default_context(cafile=str(configured.certificate_path()))

        def session() -> list[str]:
            secure = imaplib.IMAP4_SSL("127.0.0.1", ports["imaps"], ssl_context=context)
            secure.login(ADDRESS, PASSWORD)
            secure.logout()
            plain = imaplib.IMAP4("127.0.0.1", ports["imap"])
            capabilities = list(plain.capabilities)
            plain.logout()
            return capabilities

        capabilities = await asyncio.to_thread(session)
        assert "STARTTLS" in capabilities and "LOGINDISABLED" in capabilities
    finally:
        await node.stop()
