"""Sans-I/O IMAP protocol layer (RFC 9051 IMAP4rev2, RFC 3501 IMAP4rev1).

* ``parser``       -- :class:`~.parser.CommandParser`: bytes in, events out
  (incremental, literals streamed, resynchronising after errors).
* ``commands``     -- one typed dataclass per command.
* ``grammar``      -- the per-command grammar and the dispatch tables.
* ``reader``       -- the lexical rules (atoms, strings, literals, dates, flags).
* ``response``     -- :class:`~.response.ResponseEncoder`: responses to bytes, FETCH as
  ``bytes | LiteralRef`` pieces for streamed bodies.
* ``sequence_set`` -- :class:`~.sequence_set.SequenceSet`, resolved lazily.
* ``mailbox_name`` -- modified UTF-7 (RFC 3501 §5.1.3).

No asyncio and no store imports here: the session and server build on this.
"""
