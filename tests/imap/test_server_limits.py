"""Robustness and transport: COMPRESS=DEFLATE, UTF8=ACCEPT APPEND, pipelining, literal
handling, the autologout timer, and garbage input that must never stop a session."""

from __future__ import annotations

import random
import socket
import zlib

from tests.imap.conftest import ImapServer
from tests.messages import simple_message


def test_compress_deflate_both_ways(imap: ImapServer) -> None:
    imap.deliver(simple_message(subject="Squeezed"))
    raw = imap.raw()
    raw.login()
    raw.command("COMPRESS DEFLATE")
    deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    inflate = zlib.decompressobj(-15)
    raw.send(
        deflate.compress(b"c1 SELECT INBOX\r\nc2 FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]\r\n")
    )
    raw.send(deflate.flush(zlib.Z_SYNC_FLUSH))
    received = b""
    while b"c2 OK" not in received:
        chunk = raw.sock.recv(65536)
        assert chunk, received
        received += inflate.decompress(chunk)
    assert b"c1 OK [READ-WRITE]" in received
    assert b"Subject: Squeezed\r\n" in received
    raw.send(deflate.compress(b"c3 COMPRESS DEFLATE\r\n") + deflate.flush(zlib.Z_SYNC_FLUSH))
    received = b""
    while b"c3 " not in received:
        received += inflate.decompress(raw.sock.recv(65536))
    assert b"c3 NO [COMPRESSIONACTIVE]" in received
    raw.close()


def test_utf8_append_after_enable(imap: ImapServer) -> None:
    raw = imap.raw()
    raw.login()
    raw.command("ENABLE UTF8=ACCEPT")
    message = simple_message(subject="Crème brûlée")
    raw.send(b"a APPEND INBOX UTF8 (~{%d+}\r\n" % len(message) + message + b")\r\n")
    assert raw.until_tagged(b"a")[-1].startswith(b"a OK [APPENDUID")
    raw.command("SELECT INBOX")
    assert "Crème brûlée".encode() in raw.command("FETCH 1 ENVELOPE")[0]
    raw.close()


def test_pipelined_commands_are_answered_in_order(imap: ImapServer) -> None:
    raw = imap.raw()
    raw.send(
        b'p1 LOGIN alice@example.test "correct horse battery"\r\np2 SELECT INBOX\r\n'
        b"p3 NOOP\r\np4 LOGOUT\r\n"
    )
    tags = [line.split(b" ", 1)[0] for line in raw.until_tagged(b"p4") if not line.startswith(b"*")]
    assert tags == [b"p1", b"p2", b"p3", b"p4"]
    raw.close()


def test_synchronising_literal_gets_a_continuation(imap: ImapServer) -> None:
    raw = imap.raw()
    raw.send(b"a LOGIN {18}\r\n")
    assert raw.line().startswith(b"+ ")
    raw.send(b'alice@example.test "correct horse battery"\r\n')
    assert raw.until_tagged(b"a")[-1].startswith(b"a OK")
    raw.close()


def test_autologout_after_the_idle_timer(imap: ImapServer) -> None:
    # The configured minimum is 60 s; the test shortens it below what the schema allows.
    object.__setattr__(imap.services.settings.limits, "imap_idle_timeout_seconds", 1)
    raw = imap.raw()
    raw.sock.settimeout(10)
    assert raw.line().startswith(b"* BYE")
    raw.close()


def test_garbage_lines_never_stop_the_session(imap: ImapServer) -> None:
    rng = random.Random(20261122)
    alphabet = bytes(b for b in range(1, 256) if b not in b"\r\n{}")
    raw = imap.raw()
    raw.login()
    raw.command("SELECT INBOX")
    for _ in range(200):
        line = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        if line[:1].isalnum() and b"LOGOUT" in line.upper():
            continue
        raw.send(line + b"\r\n")
        if line.strip():
            reply = raw.line()
            while reply.startswith(b"* ") and not reply.startswith(b"* BAD"):
                reply = raw.line()
            assert b" BAD " in reply or b" NO " in reply or b" OK " in reply, (line, reply)
        raw.command("NOOP")
    raw.close()


def test_stopping_the_listener_says_bye(imap: ImapServer) -> None:
    raw = imap.raw()
    raw.login()
    for listener in imap.listeners:
        imap.run(listener.stop())
    raw.sock.settimeout(10)
    assert raw.line().startswith(b"* BYE")
    raw.close()


def test_a_client_that_stops_reading_does_not_hold_up_others(imap: ImapServer) -> None:
    big = simple_message(body=("x" * 998 + "\r\n") * 1000)  # about 1 MB
    for _ in range(8):
        imap.append("INBOX", big)
    stalled = imap.raw()
    stalled.login()
    stalled.command("SELECT INBOX")
    stalled.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.send(b"big FETCH 1:* BODY.PEEK[]\r\n")  # about 8 MB it never reads
    other = imap.raw()
    other.sock.settimeout(5)
    other.login()
    other.command("SELECT INBOX")
    assert other.command("FETCH 8 (UID RFC822.SIZE)")[0].startswith(b"* 8 FETCH (UID 8")
    other.close()
    stalled.close()
