"""RFC 8689 REQUIRETLS: the extension on our listeners (advertised only with TLS, the MAIL
option refused without it), the policy kept with queued mail, and the outbound queue
against fake remote MXs (aiosmtpd) with and without STARTTLS, with a certificate from
the test's own CA or from one nobody trusts, with and without REQUIRETLS; and the
"TLS-Required: No" header field (§3, §4.2.2)."""

from __future__ import annotations

import asyncio
import email
import email.message
import email.policy
import smtplib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from hypothesis import given
from hypothesis import strategies as st

from hirondelle.mail.dsn import ParameterError
from hirondelle.mail.queue import QueueWorker, Route, StaticRouter, TlsPolicy, tls_policy_of
from hirondelle.services import Services
from hirondelle.smtp.server import split_requiretls
from tests.certificates import LocalCA
from tests.messages import simple_message
from tests.smtp.conftest import PASSWORD, Servers, mailbox_messages, make_account

MX_NAME = "mx.remote.test"


@dataclass
class Arrival:
    envelope: Envelope
    over_tls: bool
    requiretls: bool


class _FakeServer(SMTP):
    """aiosmtpd with the REQUIRETLS MAIL option understood (it refuses unknown ones with
    555) and STARTTLS optionally answered with 454."""

    def __init__(self, fake: TlsMX, **kwargs: object) -> None:
        self.fake = fake
        self.requiretls_given = False
        super().__init__(fake, **kwargs)  # type: ignore[arg-type]

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        address, rest = super()._getaddr(arg)
        if rest and "REQUIRETLS" in rest.upper().split():
            self.requiretls_given = True
            rest = " ".join(w for w in rest.split() if w.upper() != "REQUIRETLS")
        return address, rest

    async def smtp_STARTTLS(self, arg: str) -> None:
        if self.fake.refuse_starttls:
            await self.push("454 4.7.0 TLS not available due to temporary reason")
            return
        await super().smtp_STARTTLS(arg)


@dataclass
class TlsMX:
    """A remote MX on loopback: STARTTLS with ``tls`` (None: not offered), REQUIRETLS in
    the EHLO reply after STARTTLS when ``offer_requiretls``."""

    tls: ssl.SSLContext | None = None
    offer_requiretls: bool = True
    refuse_starttls: bool = False
    port: int = 0
    arrivals: list[Arrival] = field(default_factory=list)

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
        responses: list[str],
    ) -> list[str]:  # fmt: skip
        session.host_name = hostname
        if self.offer_requiretls and server._tls_protocol is not None:
            responses.insert(1, "250-REQUIRETLS")
        return responses

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(server, _FakeServer)
        self.arrivals.append(
            Arrival(envelope, server._tls_protocol is not None, server.requiretls_given)
        )
        return "250 2.0.0 Queued"


StartMX = Callable[..., Awaitable[TlsMX]]


@pytest.fixture
async def start_mx() -> AsyncIterator[StartMX]:
    servers: list[asyncio.Server] = []
    loop = asyncio.get_running_loop()

    async def start(**options: object) -> TlsMX:
        fake = TlsMX(**options)  # type: ignore[arg-type]

        def protocol() -> SMTP:
            return _FakeServer(fake, hostname=MX_NAME, tls_context=fake.tls, loop=loop)

        server = await loop.create_server(protocol, "127.0.0.1", 0)
        servers.append(server)
        fake.port = server.sockets[0].getsockname()[1]
        return fake

    try:
        yield start
    finally:
        for server in servers:
            server.close()
            await server.wait_closed()


@pytest.fixture
def ca(tmp_path: Path) -> LocalCA:
    return LocalCA.create(tmp_path / "ca")


def worker(services: Services, ca: LocalCA, *fakes: TlsMX) -> QueueWorker:
    return QueueWorker(
        database=services.database,
        blobs=services.blobs,
        mail=services.mail,
        settings=services.settings,
        router=StaticRouter(
            {"remote.test": [Route("127.0.0.1", fake.port, MX_NAME) for fake in fakes]}
        ),
        verified_tls=ca.client_context(),
    )


def submit(
    servers: Servers,
    *,
    requiretls: bool,
    mail_options: tuple[str, ...] = (),
    extra_headers: str = "",
    to: str = "bob@remote.test",
) -> None:
    """Alice submits over implicit TLS (blocking); the 250 is asserted."""
    raw = simple_message(sender="alice@example.test", to=to, extra_headers=extra_headers)
    options = [*mail_options, *(["REQUIRETLS"] if requiretls else [])]
    with smtplib.SMTP_SSL("127.0.0.1", servers.submissions, context=servers.client_tls()) as c:
        c.login("alice@example.test", PASSWORD)
        assert c.sendmail("alice@example.test", [to], raw, options) == {}


def parse(raw: bytes) -> email.message.EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


# -- the extension on our listeners --------------------------------------------------


async def test_requiretls_is_advertised_only_over_tls(servers: Servers) -> None:
    def extensions() -> dict[str, bool]:
        found = {}
        with smtplib.SMTP("127.0.0.1", servers.mx) as client:
            client.ehlo()
            found["mx plain"] = client.has_extn("requiretls")
            client.starttls(context=servers.client_tls())
            client.ehlo()
            found["mx starttls"] = client.has_extn("requiretls")
        with smtplib.SMTP("127.0.0.1", servers.submission) as client:
            client.ehlo()
            found["submission plain"] = client.has_extn("requiretls")
        with smtplib.SMTP_SSL(
            "127.0.0.1", servers.submissions, context=servers.client_tls()
        ) as client:
            client.ehlo()
            found["submissions"] = client.has_extn("requiretls")
        with smtplib.LMTP("127.0.0.1", servers.lmtp) as client:
            client.ehlo()
            found["lmtp"] = client.has_extn("requiretls")
        return found

    assert await asyncio.to_thread(extensions) == {
        "mx plain": False,
        "mx starttls": True,
        "submission plain": False,
        "submissions": True,
        "lmtp": False,
    }


async def test_mail_with_requiretls_needs_tls(services: Services, servers: Servers) -> None:
    await make_account(services, "alice@example.test")

    def exchange() -> list[tuple[int, bytes]]:
        replies = []
        with smtplib.SMTP("127.0.0.1", servers.mx) as client:
            client.ehlo()
            replies.append(client.mail("carol@elsewhere.test", ["REQUIRETLS"]))
            client.rset()
            client.starttls(context=servers.client_tls())
            client.ehlo()
            replies.append(client.mail("carol@elsewhere.test", ["REQUIRETLS=YES"]))
            client.rset()
            replies.append(client.mail("carol@elsewhere.test", ["REQUIRETLS", "REQUIRETLS"]))
            client.rset()
            replies.append(client.mail("carol@elsewhere.test", ["requiretls", "RET=HDRS"]))
        return replies

    plain, valued, twice, accepted = await asyncio.to_thread(exchange)
    assert plain[0] == 530 and plain[1].startswith(b"5.7.10 "), plain
    assert valued[0] == 501 and valued[1].startswith(b"5.5.4 "), valued
    assert twice[0] == 501 and twice[1].startswith(b"5.5.4 "), twice
    assert accepted[0] == 250, accepted


async def test_lmtp_refuses_requiretls_as_unknown(services: Services, servers: Servers) -> None:
    def exchange() -> tuple[int, bytes]:
        with smtplib.LMTP("127.0.0.1", servers.lmtp) as client:
            client.ehlo()
            return client.mail("carol@elsewhere.test", ["REQUIRETLS"])

    code, _ = await asyncio.to_thread(exchange)
    assert code == 555, "not offered on LMTP: an unknown parameter (RFC 5321 §4.1.1.11)"


async def test_policy_is_kept_with_the_queued_message(services: Services, servers: Servers) -> None:
    await make_account(services, "alice@example.test")
    await asyncio.to_thread(submit, servers, requiretls=True)
    await asyncio.to_thread(submit, servers, requiretls=False, extra_headers="TLS-Required: No\r\n")
    await asyncio.to_thread(submit, servers, requiretls=False)
    # §4.1: with the option, the header field is ignored.
    await asyncio.to_thread(submit, servers, requiretls=True, extra_headers="TLS-Required: No\r\n")
    entries = await QueueWorker(
        database=services.database,
        blobs=services.blobs,
        mail=services.mail,
        settings=services.settings,
    ).queue.entries()
    assert [e.tls_policy for e in entries] == ["required", "not-required", "", "required"]


def test_tls_policy_of_reads_the_header_section_only() -> None:
    no = b"From: a@b\r\nTLS-Required:   no\r\n\r\nbody\r\n"
    in_body = b"From: a@b\r\n\r\nTLS-Required: No\r\n"
    other = b"From: a@b\r\nTLS-Required: Yes\r\n\r\n"
    assert tls_policy_of(no, requiretls=False) is TlsPolicy.NOT_REQUIRED
    assert tls_policy_of(no, requiretls=True) is TlsPolicy.REQUIRED
    assert tls_policy_of(in_body, requiretls=False) is TlsPolicy.OPPORTUNISTIC
    assert tls_policy_of(other, requiretls=False) is TlsPolicy.OPPORTUNISTIC


# -- the outbound queue ------------------------------------------------------------------


async def test_requiretls_message_goes_over_verified_tls_with_the_option(
    services: Services, servers: Servers, ca: LocalCA, start_mx: StartMX
) -> None:
    alice = await make_account(services, "alice@example.test")
    fake = await start_mx(tls=ca.server_context(MX_NAME))
    await asyncio.to_thread(submit, servers, requiretls=True)
    sending = worker(services, ca, fake)
    assert await sending.run_once() == 1
    [arrival] = fake.arrivals
    assert arrival.over_tls and arrival.requiretls
    assert arrival.envelope.rcpt_tos == ["bob@remote.test"]
    assert await sending.queue.entries() == []
    assert await mailbox_messages(services, alice) == []


async def test_opportunistic_message_does_not_pass_the_option_on(
    services: Services, servers: Servers, ca: LocalCA, start_mx: StartMX
) -> None:
    await make_account(services, "alice@example.test")
    fake = await start_mx(tls=ca.server_context(MX_NAME))
    await asyncio.to_thread(submit, servers, requiretls=False)
    await worker(services, ca, fake).run_once()
    [arrival] = fake.arrivals
    assert arrival.over_tls and not arrival.requiretls


async def _bounced(services: Services, alice_id: int) -> email.message.EmailMessage:
    account = await services.accounts.get_account("alice@example.test")
    assert account.id == alice_id
    [notice] = await mailbox_messages(services, account)
    return parse(notice)


@pytest.mark.parametrize(
    "case", ["no starttls", "untrusted certificate", "wrong name", "no requiretls"]
)
async def test_a_host_that_does_not_qualify_gets_nothing_and_the_sender_a_5_7_30_bounce(
    services: Services,
    servers: Servers,
    ca: LocalCA,
    start_mx: StartMX,
    tmp_path: Path,
    case: str,
) -> None:
    alice = await make_account(services, "alice@example.test")
    if case == "no starttls":
        fake = await start_mx(tls=None)
    elif case == "untrusted certificate":
        stranger = LocalCA.create(tmp_path / "stranger", name="Untrusted CA")
        fake = await start_mx(tls=stranger.server_context(MX_NAME))
    elif case == "wrong name":
        fake = await start_mx(tls=ca.server_context("other.remote.test"))
    else:
        fake = await start_mx(tls=ca.server_context(MX_NAME), offer_requiretls=False)
    # RFC 8689 §5: RET=FULL is disregarded; the notice carries the header section only.
    await asyncio.to_thread(submit, servers, requiretls=True, mail_options=("RET=FULL",))
    sending = worker(services, ca, fake)
    await sending.run_once()
    assert fake.arrivals == []
    assert await sending.queue.entries() == []
    notice = await _bounced(services, alice.id)
    _, status, returned = notice.iter_parts()
    assert "Action: failed" in status.as_string()
    assert "Status: 5.7.30" in status.as_string()
    assert returned.get_content_type() == "text/rfc822-headers"
    assert b"Just a short note." not in returned.as_bytes()


async def test_the_next_mx_that_qualifies_gets_the_message(
    services: Services, servers: Servers, ca: LocalCA, start_mx: StartMX
) -> None:
    await make_account(services, "alice@example.test")
    without = await start_mx(tls=ca.server_context(MX_NAME), offer_requiretls=False)
    qualified = await start_mx(tls=ca.server_context(MX_NAME))
    await asyncio.to_thread(submit, servers, requiretls=True)
    # The opportunistic message goes to the first MX, as before.
    await asyncio.to_thread(submit, servers, requiretls=False, to="carl@remote.test")
    await worker(services, ca, without, qualified).run_once()
    assert [a.envelope.rcpt_tos for a in without.arrivals] == [["carl@remote.test"]]
    assert [a.envelope.rcpt_tos for a in qualified.arrivals] == [["bob@remote.test"]]
    assert qualified.arrivals[0].requiretls


async def test_an_unreachable_mx_is_a_temporary_failure_not_a_bounce(
    services: Services, servers: Servers, ca: LocalCA, start_mx: StartMX
) -> None:
    alice = await make_account(services, "alice@example.test")
    fake = await start_mx(tls=ca.server_context(MX_NAME))
    fake.port = 1  # nothing listens there
    await asyncio.to_thread(submit, servers, requiretls=True)
    sending = worker(services, ca, fake)
    await sending.run_once()
    [pending] = await sending.queue.entries()
    assert pending.attempts == 1
    assert await mailbox_messages(services, alice) == []


async def test_requiretls_to_our_own_mx_end_to_end(services: Services, servers: Servers) -> None:
    """Our MX listener as the next hop: STARTTLS with its certificate (trusted here),
    REQUIRETLS offered after it; the message arrives, and a NOTIFY=SUCCESS notice for
    it comes back from that hop."""
    alice = await make_account(services, "alice@example.test")
    await asyncio.to_thread(submit, servers, requiretls=True, mail_options=("ENVID=rt1",))
    bob = await make_account(services, "bob@remote.test")
    sending = QueueWorker(
        database=services.database,
        blobs=services.blobs,
        mail=services.mail,
        settings=services.settings,
        router=StaticRouter({"remote.test": [Route("127.0.0.1", servers.mx, "localhost")]}),
        verified_tls=servers.client_tls(),
    )
    assert await sending.run_once() == 1
    [received] = await mailbox_messages(services, bob)
    assert b"with ESMTPS" in received
    assert await sending.queue.entries() == []
    assert await mailbox_messages(services, alice) == []


# -- TLS-Required: No (§3, §4.2.2) ---------------------------------------------------------


async def test_tls_required_no_falls_back_to_clear_text_when_starttls_fails(
    services: Services, servers: Servers, ca: LocalCA, start_mx: StartMX
) -> None:
    await make_account(services, "alice@example.test")
    fake = await start_mx(tls=ca.server_context(MX_NAME), refuse_starttls=True)
    await asyncio.to_thread(submit, servers, requiretls=False, extra_headers="TLS-Required: No\r\n")
    await asyncio.to_thread(submit, servers, requiretls=False, to="carl@remote.test")
    sending = worker(services, ca, fake)
    await sending.run_once()
    # The relaxed message went in clear text; the ordinary one waits for TLS to work.
    [arrival] = fake.arrivals
    assert arrival.envelope.rcpt_tos == ["bob@remote.test"] and not arrival.over_tls
    assert b"TLS-Required: No" in (arrival.envelope.original_content or b"")
    [pending] = await sending.queue.entries()
    assert pending.address == "carl@remote.test" and pending.attempts == 1
    assert "STARTTLS" in pending.last_error


async def test_notice_about_a_requiretls_message_to_a_remote_sender_is_queued_requiretls(
    services: Services, servers: Servers
) -> None:
    """A remote sender's REQUIRETLS message reaches our MX for a local alias that
    forwards to a remote address with NOTIFY=SUCCESS: the "relayed" notice (RFC 8689 §5)
    goes back with REQUIRETLS, the forwarded copy keeps it too."""
    await make_account(services, "alice@example.test")
    await services.aliases.add("team@example.test", ["ghost@remote.test"])

    def send() -> None:
        raw = simple_message(sender="carol@elsewhere.test", to="team@example.test")
        with smtplib.SMTP("127.0.0.1", servers.mx) as client:
            client.starttls(context=servers.client_tls())
            refused = client.sendmail(
                "carol@elsewhere.test",
                ["team@example.test", "alice@example.test"],
                raw,
                ["REQUIRETLS"],
                ["NOTIFY=SUCCESS"],
            )
            assert refused == {}

    await asyncio.to_thread(send)
    sending = QueueWorker(
        database=services.database,
        blobs=services.blobs,
        mail=services.mail,
        settings=services.settings,
    )
    entries = await sending.queue.entries()
    by_address = {e.address: e for e in entries}
    assert by_address["ghost@remote.test"].tls_policy == "required"
    # alice was delivered locally: the "delivered" notice to carol is queued, REQUIRETLS.
    notice = by_address["carol@elsewhere.test"]
    assert notice.mail_from == "" and notice.tls_policy == "required"


# -- properties of the two small parsers ----------------------------------------------

_words = st.lists(
    st.sampled_from(
        ["REQUIRETLS", "requiretls", "RequireTLS", "REQUIRETLS=YES", "REQUIRETLS=", "RET=HDRS",
         "SIZE=100", "ENVID=x", "SMTPUTF8", "REQUIRETLSX", "BODY=8BITMIME"]
    ),
    max_size=6,
)  # fmt: skip


@given(_words)
def test_split_requiretls_takes_exactly_the_option(words: list[str]) -> None:
    named = [w for w in words if w.partition("=")[0].upper() == "REQUIRETLS"]
    try:
        found, others = split_requiretls(words)
    except ParameterError:
        assert len(named) > 1 or any("=" in w for w in named)
        return
    assert found == (len(named) == 1)
    assert others == [w for w in words if w not in named]


_fields = st.lists(
    st.sampled_from(
        ["From: a@b", "Subject: TLS-Required: No", "TLS-Required: Yes", "X-TLS-Required: No",
         "TLS-Required: No", "tls-required:no", "TLS-Required:\tNo "]
    ),
    max_size=5,
)  # fmt: skip


@given(_fields, st.booleans(), st.booleans())
def test_tls_policy_follows_the_header_section(
    fields: list[str], requiretls: bool, in_body: bool
) -> None:
    head = "".join(f"{f}\r\n" for f in (["From: a@b"] if in_body else fields))
    body = "".join(f"{f}\r\n" for f in fields) if in_body else "text\r\n"
    raw = f"{head}\r\n{body}".encode()
    relaxed = not in_body and any(
        name.lower() == "tls-required" and value.strip().lower() == "no"
        for name, _, value in (f.partition(":") for f in fields)
    )
    expected = (
        TlsPolicy.REQUIRED
        if requiretls
        else TlsPolicy.NOT_REQUIRED
        if relaxed
        else TlsPolicy.OPPORTUNISTIC
    )
    assert tls_policy_of(raw, requiretls=requiretls) is expected
