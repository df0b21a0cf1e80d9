"""Command grammar: from a :class:`Reader` positioned after the command name to a typed
command.

RFC 9051 §9 (formal syntax) for every command, and the extension grammars named in
commands.py.  Each parser function cites the rule it implements.  Dispatch is explicit:
:data:`COMMAND_GRAMMAR` and :data:`UID_GRAMMAR` map command names to functions.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable

from . import commands as c
from .reader import Reader, SyntaxFault
from .sequence_set import SequenceSet

__all__ = ["COMMAND_GRAMMAR", "SEARCH_CHARSETS", "UID_GRAMMAR", "decode_base64", "parse_search_key"]

Grammar = Callable[[Reader, str], c.Command]

_FETCH_NAME_RE = re.compile(rb"[A-Za-z0-9.]+")
_BASE64_RE = re.compile(rb"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_SECTION_TEXT_RE = re.compile(rb"[A-Za-z.]+")

#: RFC 9051 §6.4.4: charsets searched (US-ASCII and UTF-8 are required); IANA name ->
#: Python codec.  Others are refused with BADCHARSET.
SEARCH_CHARSETS = {
    "US-ASCII": "ascii",
    "UTF-8": "utf-8",
    "ISO-8859-1": "latin-1",
    "ISO-8859-2": "iso8859-2",
    "ISO-8859-15": "iso8859-15",
    "WINDOWS-1252": "cp1252",
}

MOD_SEQUENCE_MAX = (1 << 63) - 1


def _no_arguments(command: type[c.Command]) -> Grammar:
    """Commands without arguments: CAPABILITY NOOP LOGOUT STARTTLS ... (RFC 9051 §9)."""

    def parse(reader: Reader, tag: str) -> c.Command:
        reader.end()
        return command(tag=tag)

    return parse


# -- any state / not authenticated ---------------------------------------------------------


def parse_authenticate(r: Reader, tag: str) -> c.Authenticate:
    """RFC 9051 §6.2.2 authenticate = "AUTHENTICATE" SP auth-type [SP initial-resp];
    RFC 4959 §7 initial-resp = (base64 / "=")."""
    r.sp("mechanism")
    mechanism = r.atom("SASL mechanism").upper()
    initial: bytes | None = None
    if r.try_sp():
        raw = r.rest_of_line()
        initial = decode_base64(raw)
    r.end()
    return c.Authenticate(tag=tag, mechanism=mechanism, initial_response=initial)


def decode_base64(raw: bytes) -> bytes:
    """RFC 4959 §3 / RFC 9051 §6.2.2: base64 data, "=" standing for empty."""
    if raw == b"=":
        return b""
    if not raw or not _BASE64_RE.fullmatch(raw):
        raise SyntaxFault("Invalid base64 data")
    try:
        return base64.b64decode(raw, validate=True)
    except binascii.Error as exc:  # pragma: no cover - the pattern already checked
        raise SyntaxFault("Invalid base64 data") from exc


def parse_login(r: Reader, tag: str) -> c.Login:
    """RFC 9051 §6.2.3 login = "LOGIN" SP userid SP password."""
    r.sp("user name")
    user = r.astring_text("user name")
    r.sp("password")
    password = r.astring_text("password")
    r.end()
    return c.Login(tag=tag, username=user, password=password)


def parse_id(r: Reader, tag: str) -> c.Id:
    """RFC 2971 §4 id = "ID" SP id-params-list;
    id-params-list = "(" *(string SP nstring) ")" / nil."""
    r.sp("ID parameters")
    if r.nil():
        r.end()
        return c.Id(tag=tag, parameters=None)
    r.expect(b"(", "to open the ID parameter list")
    params: list[tuple[str, str | None]] = []
    while r.peek() != 0x29:
        if params:
            r.sp("ID field")
        key = r.text(r.string("ID field"), "ID field")
        r.sp("ID value")
        value = r.nstring("ID value")
        params.append((key, None if value is None else r.text(value, "ID value")))
    r.expect(b")", "to close the ID parameter list")
    r.end()
    return c.Id(tag=tag, parameters=tuple(params))


def parse_compress(r: Reader, tag: str) -> c.Compress:
    """RFC 4978 §4 compress = "COMPRESS" SP algorithm."""
    r.sp("compression mechanism")
    mechanism = r.atom("compression mechanism").upper()
    r.end()
    return c.Compress(tag=tag, mechanism=mechanism)


def parse_enable(r: Reader, tag: str) -> c.Enable:
    """RFC 9051 §6.3.1 enable = "ENABLE" 1*(SP capability)."""
    caps = []
    r.sp("capability")
    caps.append(r.atom("capability").upper())
    while r.try_sp():
        caps.append(r.atom("capability").upper())
    r.end()
    return c.Enable(tag=tag, capabilities=tuple(dict.fromkeys(caps)))


# -- mailboxes -------------------------------------------------------------------------------


def _known_set(r: Reader, what: str) -> SequenceSet:
    """RFC 7162 §7: known-uids / known-sequence-set: a sequence-set without "*"."""
    value = r.sequence_set(allow_saved=False)
    if value.has_star:
        raise r.fail(f"'*' is not allowed in {what}")
    return value


def _mod_sequence(r: Reader, *, allow_zero: bool) -> int:
    """RFC 7162 §7: mod-sequence-value = 1*DIGIT (1 .. 2^63-1), valzer allows 0."""
    value = r.number("mod-sequence", limit=MOD_SEQUENCE_MAX)
    if value == 0 and not allow_zero:
        raise r.fail("Mod-sequence must not be zero")
    return value


def _select(command: type[c.Select]) -> Grammar:
    def parse(r: Reader, tag: str) -> c.Command:
        """RFC 9051 §6.3.2 select = "SELECT" SP mailbox [select-params];
        RFC 7162 §7 select-param = "CONDSTORE" / "QRESYNC" SP "(" uidvalidity SP
        mod-sequence-value [SP known-uids] [SP seq-match-data] ")"."""
        r.sp("mailbox name")
        mailbox = r.mailbox()
        condstore = False
        qresync: c.QResync | None = None
        if r.try_sp():
            r.expect(b"(", "to open the SELECT parameters")
            first = True
            while first or r.try_sp():
                first = False
                param = r.keyword()
                if param == "CONDSTORE" and not condstore:
                    condstore = True
                elif param == "QRESYNC" and qresync is None:
                    qresync = _qresync(r)
                else:
                    raise r.fail(f"Unknown or repeated SELECT parameter {param}")
            r.expect(b")", "to close the SELECT parameters")
        r.end()
        return command(tag=tag, mailbox=mailbox, condstore=condstore, qresync=qresync)

    return parse


def _qresync(r: Reader) -> c.QResync:
    """RFC 7162 §3.2.5 / §7: the QRESYNC select parameter's value."""
    r.sp("QRESYNC parameters")
    r.expect(b"(", "to open the QRESYNC parameters")
    uidvalidity = r.nz_number("UIDVALIDITY")
    r.sp("mod-sequence")
    modseq = _mod_sequence(r, allow_zero=False)
    known: SequenceSet | None = None
    match: tuple[SequenceSet, SequenceSet] | None = None
    if r.try_sp():
        if r.peek() != 0x28:
            known = _known_set(r, "known UIDs")
            if r.try_sp():
                match = _seq_match(r)
        else:
            match = _seq_match(r)
    r.expect(b")", "to close the QRESYNC parameters")
    return c.QResync(uidvalidity, modseq, known, match)


def _seq_match(r: Reader) -> tuple[SequenceSet, SequenceSet]:
    """RFC 7162 §7 seq-match-data = "(" known-sequence-set SP known-uid-set ")"."""
    r.expect(b"(", "to open the sequence match data")
    sequences = _known_set(r, "known sequence set")
    r.sp("known UIDs")
    uids = _known_set(r, "known UID set")
    r.expect(b")", "to close the sequence match data")
    return sequences, uids


#: RFC 6154 §2 special-use attributes, canonical spelling.
SPECIAL_USE = {
    name.upper(): name
    for name in ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")
}


def parse_create(r: Reader, tag: str) -> c.Create:
    """RFC 9051 §6.3.4 create = "CREATE" SP mailbox [create-params] (RFC 4466 §2.2);
    RFC 6154 §6 create-param =/ "USE" SP "(" [use-attr *(SP use-attr)] ")"."""
    r.sp("mailbox name")
    mailbox = r.mailbox()
    uses: list[str] = []
    if r.try_sp():
        r.expect(b"(", "to open the CREATE parameters")
        param = r.keyword()
        if param != "USE":
            raise r.fail(f"Unknown CREATE parameter {param}")
        r.sp("special-use attributes")
        r.expect(b"(", "to open the special-use attributes")
        if r.peek() != 0x29:
            uses.append(_use_attr(r))
            while r.try_sp():
                uses.append(_use_attr(r))
        r.expect(b")", "to close the special-use attributes")
        r.expect(b")", "to close the CREATE parameters")
    r.end()
    return c.Create(tag=tag, mailbox=mailbox, special_use=tuple(dict.fromkeys(uses)))


def _use_attr(r: Reader) -> str:
    """RFC 6154 §6 use-attr = "\\All" / ... / use-attr-ext ("\\" atom)."""
    r.expect(b"\\", "before a special-use attribute")
    name = "\\" + r.atom("special-use attribute")
    return SPECIAL_USE.get(name.upper(), name)


def _one_mailbox(command: type[c.Delete] | type[c.Subscribe] | type[c.Unsubscribe]) -> Grammar:
    def parse(r: Reader, tag: str) -> c.Command:
        """RFC 9051 §9: DELETE / SUBSCRIBE / UNSUBSCRIBE SP mailbox."""
        r.sp("mailbox name")
        mailbox = r.mailbox()
        r.end()
        return command(tag=tag, mailbox=mailbox)

    return parse


def parse_rename(r: Reader, tag: str) -> c.Rename:
    """RFC 9051 §6.3.6 rename = "RENAME" SP mailbox SP mailbox."""
    r.sp("mailbox name")
    old = r.mailbox()
    r.sp("new mailbox name")
    new = r.mailbox("new mailbox name")
    r.end()
    return c.Rename(tag=tag, mailbox=old, new_name=new)


LIST_SELECTION = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
LIST_RETURN = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE"})
STATUS_ITEMS = frozenset(
    {
        "MESSAGES",
        "UIDNEXT",
        "UIDVALIDITY",
        "UNSEEN",
        "DELETED",
        "SIZE",
        "RECENT",
        "HIGHESTMODSEQ",
        "APPENDLIMIT",
    }
)


def parse_list(r: Reader, tag: str) -> c.List:
    """RFC 9051 §6.3.9 / RFC 5258 §6: list = "LIST" [SP list-select-opts] SP mailbox
    SP mbox-or-pat [SP list-return-opts]; RFC 6154 §6 SPECIAL-USE; RFC 5819 STATUS."""
    r.sp("reference name")
    selection: set[str] = set()
    extended = False
    if r.peek() == 0x28:
        extended = True
        r.expect(b"(")
        if r.peek() != 0x29:
            selection.add(_list_option(r, LIST_SELECTION, "selection"))
            while r.try_sp():
                selection.add(_list_option(r, LIST_SELECTION, "selection"))
        r.expect(b")", "to close the LIST selection options")
        # RFC 5258 §3.1: RECURSIVEMATCH needs a base option; REMOTE alone is fine.
        if "RECURSIVEMATCH" in selection and not selection & {"SUBSCRIBED", "SPECIAL-USE"}:
            raise r.fail("RECURSIVEMATCH must be used with another selection option")
        r.sp("reference name")
    reference = r.mailbox("reference name")
    r.sp("mailbox pattern")
    patterns: list[str] = []
    if r.peek() == 0x28:
        extended = True
        r.expect(b"(")
        patterns.append(r.list_mailbox())
        while r.try_sp():
            patterns.append(r.list_mailbox())
        r.expect(b")", "to close the mailbox patterns")
    else:
        patterns.append(r.list_mailbox())
    returns: set[str] = set()
    status: tuple[str, ...] | None = None
    if r.try_sp():
        extended = True
        if r.keyword() != "RETURN":
            raise r.fail("Expected RETURN after the mailbox patterns")
        r.sp("return options")
        r.expect(b"(", "to open the LIST return options")
        first = True
        while r.peek() != 0x29:
            if not first:
                r.sp("return option")
            first = False
            option = r.keyword()
            if option == "STATUS" and status is None:
                r.sp("status items")
                status = _status_items(r)
            elif option in LIST_RETURN:
                returns.add(option)
            else:
                raise r.fail(f"Unknown LIST return option {option}")
        r.expect(b")", "to close the LIST return options")
    r.end()
    return c.List(
        tag=tag,
        reference=reference,
        patterns=tuple(patterns),
        selection=frozenset(selection),
        return_options=frozenset(returns),
        status=status,
        extended=extended,
    )


def _list_option(r: Reader, allowed: frozenset[str], kind: str) -> str:
    """RFC 5258 §3: unrecognised options are refused with BAD."""
    option = r.keyword()
    if option not in allowed:
        raise r.fail(f"Unknown LIST {kind} option {option}")
    return option


def parse_lsub(r: Reader, tag: str) -> c.Lsub:
    """RFC 3501 §6.3.9 lsub = "LSUB" SP mailbox SP list-mailbox."""
    r.sp("reference name")
    reference = r.mailbox("reference name")
    r.sp("mailbox pattern")
    pattern = r.list_mailbox()
    r.end()
    return c.Lsub(tag=tag, reference=reference, pattern=pattern)


def _status_items(r: Reader) -> tuple[str, ...]:
    """RFC 9051 §9: "(" status-att *(SP status-att) ")"."""
    r.expect(b"(", "to open the status items")
    items = [_status_item(r)]
    while r.try_sp():
        items.append(_status_item(r))
    r.expect(b")", "to close the status items")
    return tuple(dict.fromkeys(items))


def _status_item(r: Reader) -> str:
    """RFC 9051 §9 status-att; RFC 3501 RECENT; RFC 7162 HIGHESTMODSEQ; RFC 7889."""
    item = r.keyword()
    if item not in STATUS_ITEMS:
        raise r.fail(f"Invalid status item {item!r}")
    return item


def parse_status(r: Reader, tag: str) -> c.Status:
    """RFC 9051 §6.3.11 status = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")"."""
    r.sp("mailbox name")
    mailbox = r.mailbox()
    r.sp("status items")
    items = _status_items(r)
    r.end()
    return c.Status(tag=tag, mailbox=mailbox, items=items)


def parse_append(r: Reader, tag: str) -> c.Append:
    """RFC 9051 §6.3.12 / RFC 3502 §6: append = "APPEND" SP mailbox 1*append-message;
    append-message = [SP flag-list] [SP date-time] SP append-data;
    append-data = literal / literal8 (RFC 3516) / "UTF8" SP "(" literal8 ")" (RFC 6855 §4)."""
    r.sp("mailbox name")
    mailbox = r.mailbox()
    messages: list[c.AppendMessage] = []
    while not messages or not r.at_end():
        r.sp("message")
        flags: tuple[str, ...] = ()
        when = None
        if r.peek() == 0x28:
            flags = r.flag_list()
            r.sp("message")
        if r.peek() == 0x22:
            when = r.date_time()
            r.sp("message")
        utf8 = False
        if r.peek() not in (0x7B, 0x7E):
            if r.keyword() != "UTF8":
                raise r.fail("Expected a message literal")
            utf8 = True
            r.sp("message")
            r.expect(b"(", "before the UTF8 message literal")
            if r.peek() != 0x7E:
                raise r.fail("UTF8 APPEND data must be a literal8 (~{n})")
        content = r.literal("message", allow_binary=True)
        binary = r.last_literal_binary
        if utf8:
            r.expect(b")", "after the UTF8 message literal")
        messages.append(
            c.AppendMessage(
                content=content, flags=flags, internal_date=when, binary=binary, utf8=utf8
            )
        )
    return c.Append(tag=tag, mailbox=mailbox, messages=tuple(messages))


def parse_getquota(r: Reader, tag: str) -> c.GetQuota:
    """RFC 9208 §6 getquota = "GETQUOTA" SP quota-root-name."""
    r.sp("quota root")
    root = r.astring_text("quota root")
    r.end()
    return c.GetQuota(tag=tag, root=root)


def parse_getquotaroot(r: Reader, tag: str) -> c.GetQuotaRoot:
    """RFC 9208 §6 getquotaroot = "GETQUOTAROOT" SP mailbox."""
    r.sp("mailbox name")
    mailbox = r.mailbox()
    r.end()
    return c.GetQuotaRoot(tag=tag, mailbox=mailbox)


def parse_setquota(r: Reader, tag: str) -> c.SetQuota:
    """RFC 9208 §6 setquota = "SETQUOTA" SP quota-root-name SP setquota-list;
    setquota-list = "(" [setquota-resource *(SP setquota-resource)] ")"."""
    r.sp("quota root")
    root = r.astring_text("quota root")
    r.sp("quota limits")
    r.expect(b"(", "to open the quota limits")
    limits: list[tuple[str, int]] = []
    while r.peek() != 0x29:
        if limits:
            r.sp("quota resource")
        resource = r.keyword()
        r.sp("quota limit")
        limits.append((resource, r.number64("quota limit")))
    r.expect(b")", "to close the quota limits")
    r.end()
    return c.SetQuota(tag=tag, root=root, limits=tuple(limits))


# -- selected state ----------------------------------------------------------------------


def parse_expunge(r: Reader, tag: str) -> c.Expunge:
    """RFC 9051 §6.4.3 expunge = "EXPUNGE"."""
    r.end()
    return c.Expunge(tag=tag)


def parse_uid_expunge(r: Reader, tag: str) -> c.Expunge:
    """RFC 9051 §6.4.9 uid-expunge = "UID" SP "EXPUNGE" SP sequence-set."""
    r.sp("UID set")
    uids = r.sequence_set()
    r.end()
    return c.Expunge(tag=tag, uids=uids)


def _search_return(r: Reader) -> tuple[str, ...] | None:
    """RFC 4731 §3 / RFC 9051 §9: search-return-opts = SP "RETURN" SP "("
    [search-return-opt *(SP search-return-opt)] ")"; RFC 5182 SAVE."""
    line, pos = r.line, r.pos
    if line[pos : pos + 8].upper() != b" RETURN ":
        return None
    r.pos += 8
    r.expect(b"(", "to open the RETURN options")
    options: list[str] = []
    while r.peek() != 0x29:
        if options:
            r.sp("return option")
        option = r.keyword()
        if option not in {"MIN", "MAX", "ALL", "COUNT", "SAVE"}:
            raise r.fail(f"Unknown search return option {option}")
        options.append(option)
    r.expect(b")", "to close the RETURN options")
    return tuple(dict.fromkeys(options))


def _charset(r: Reader) -> str:
    """RFC 9051 §9 charset = atom / quoted; refused with BADCHARSET if unknown."""
    raw = r.quoted().decode("ascii", "replace") if r.peek() == 0x22 else r.atom("charset")
    name = raw.upper()
    if name not in SEARCH_CHARSETS:
        raise r.fail(f"Unsupported charset {raw}", code="BADCHARSET")
    return name


def _search(uid: bool) -> Grammar:
    def parse(r: Reader, tag: str) -> c.Command:
        """RFC 9051 §6.4.4 search = "SEARCH" [search-return-opts] SP search-program;
        search-program = ["CHARSET" SP charset SP] search-key *(SP search-key)."""
        options = _search_return(r)
        r.sp("search criteria")
        charset: str | None = None
        if r.line[r.pos : r.pos + 8].upper() == b"CHARSET ":
            r.pos += 8
            charset = _charset(r)
            r.sp("search criteria")
        criteria = _search_program(r, charset or "UTF-8")
        return c.Search(
            tag=tag, uid=uid, charset=charset, criteria=criteria, return_options=options
        )

    return parse


def _search_program(r: Reader, charset: str) -> c.SearchKey:
    """1*(search-key) separated by SP, to the end of the command."""
    keys = [parse_search_key(r, charset)]
    while not r.at_end():
        r.sp("search key")
        keys.append(parse_search_key(r, charset))
    return keys[0] if len(keys) == 1 else c.SearchAnd(tuple(keys))


_FLAG_KEYS = {
    "ANSWERED": ("\\Answered", True),
    "DELETED": ("\\Deleted", True),
    "DRAFT": ("\\Draft", True),
    "FLAGGED": ("\\Flagged", True),
    "SEEN": ("\\Seen", True),
    "RECENT": ("\\Recent", True),
    "OLD": ("\\Recent", False),
    "UNANSWERED": ("\\Answered", False),
    "UNDELETED": ("\\Deleted", False),
    "UNDRAFT": ("\\Draft", False),
    "UNFLAGGED": ("\\Flagged", False),
    "UNSEEN": ("\\Seen", False),
}
_TEXT_KEYS = frozenset({"BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO"})
_DATE_KEYS = frozenset({"BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"})
_MAX_SEARCH_DEPTH = 64


def parse_search_key(r: Reader, charset: str, depth: int = 0) -> c.SearchKey:
    """RFC 9051 §6.4.4 / §9 search-key; RFC 3501 NEW OLD RECENT; RFC 7162 §3.1.5
    MODSEQ; RFC 5032 OLDER YOUNGER; RFC 5182 "$"."""
    if depth > _MAX_SEARCH_DEPTH:
        raise r.fail("Search criteria nested too deeply")
    char = r.peek()
    if char == 0x28:  # "(" search-key *(SP search-key) ")"
        r.pos += 1
        keys = [parse_search_key(r, charset, depth + 1)]
        while r.try_sp():
            keys.append(parse_search_key(r, charset, depth + 1))
        r.expect(b")", "to close the search key list")
        return keys[0] if len(keys) == 1 else c.SearchAnd(tuple(keys))
    if char in b"0123456789*$" and char != -1:
        return c.SearchSet(r.sequence_set())
    key = r.keyword()
    if key == "ALL":
        return c.SearchAll()
    flag = _FLAG_KEYS.get(key)
    if flag is not None:
        return c.SearchFlag(flag[0], flag[1])
    if key == "NEW":
        return c.SearchNew()
    if key in _TEXT_KEYS:
        r.sp(f"{key} string")
        return c.SearchText(key, _search_string(r, charset))
    if key in _DATE_KEYS:
        r.sp(f"{key} date")
        return c.SearchDate(key, r.date())
    if key == "HEADER":
        r.sp("header field name")
        field = r.text(r.astring("header field name"), "header field name")
        r.sp("header value")
        return c.SearchHeader(field, _search_string(r, charset))
    if key in ("KEYWORD", "UNKEYWORD"):
        r.sp("keyword")  # flag-keyword = atom: never a system flag
        return c.SearchFlag(r.atom("keyword"), key == "KEYWORD")
    if key in ("LARGER", "SMALLER"):
        r.sp("size")
        return c.SearchSize(key == "LARGER", r.number64("size"))
    if key in ("OLDER", "YOUNGER"):
        r.sp("interval")
        return c.SearchWithin(key == "OLDER", r.nz_number("interval"))
    if key == "UID":
        r.sp("UID set")
        return c.SearchSet(r.sequence_set(), uid=True)
    if key == "NOT":
        r.sp("search key")
        return c.SearchNot(parse_search_key(r, charset, depth + 1))
    if key == "OR":
        r.sp("search key")
        left = parse_search_key(r, charset, depth + 1)
        r.sp("search key")
        return c.SearchOr(left, parse_search_key(r, charset, depth + 1))
    if key == "MODSEQ":
        return _search_modseq(r)
    raise r.fail(f"Unknown search key {key}")


def _search_modseq(r: Reader) -> c.SearchModSeq:
    """RFC 7162 §7 search-modsequence = "MODSEQ" [search-modseq-ext] SP
    mod-sequence-valzer; search-modseq-ext = SP entry-name SP entry-type-req."""
    r.sp("mod-sequence")
    if r.peek() == 0x22:
        entry = r.quoted().decode("utf-8", "replace")
        if not entry.lower().startswith("/flags/") or len(entry) == 7:
            raise r.fail(f"Invalid MODSEQ entry name {entry!r}")
        flag = entry[7:]
        canonical = {k.upper(): v for k, v in _CANONICAL_FLAGS.items()}.get(flag.upper(), flag)
        r.sp("entry type")
        entry_type = r.keyword().lower()
        if entry_type not in ("priv", "shared", "all"):
            raise r.fail(f"Invalid MODSEQ entry type {entry_type!r}")
        r.sp("mod-sequence")
        return c.SearchModSeq(_mod_sequence(r, allow_zero=True), canonical, entry_type)
    return c.SearchModSeq(_mod_sequence(r, allow_zero=True))


_CANONICAL_FLAGS = {
    "\\Answered": "\\Answered",
    "\\Flagged": "\\Flagged",
    "\\Deleted": "\\Deleted",
    "\\Seen": "\\Seen",
    "\\Draft": "\\Draft",
}


def _search_string(r: Reader, charset: str) -> str:
    """An astring in the search's charset (RFC 9051 §6.4.4 CHARSET)."""
    raw = r.astring("search string")
    try:
        return raw.decode(SEARCH_CHARSETS[charset])
    except UnicodeDecodeError as exc:
        raise r.fail(f"Search string is not valid {charset}") from exc


# -- FETCH -----------------------------------------------------------------------------

_SIMPLE_FETCH = {attr.value: attr for attr in c.FetchAttribute}


def _fetch(uid: bool) -> Grammar:
    def parse(r: Reader, tag: str) -> c.Command:
        """RFC 9051 §6.4.5 fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" /
        fetch-att / "(" fetch-att *(SP fetch-att) ")") [fetch-modifiers];
        RFC 7162 §7 fetch-modifier = "CHANGEDSINCE" SP mod-sequence-valzer / "VANISHED"."""
        r.sp("sequence set")
        numbers = r.sequence_set()
        r.sp("fetch items")
        macro = None
        items: list[c.FetchItem] = []
        if r.peek() == 0x28:
            r.pos += 1
            items.append(_fetch_att(r))
            while r.try_sp():
                items.append(_fetch_att(r))
            r.expect(b")", "to close the fetch items")
        else:
            match = _FETCH_NAME_RE.match(r.line, r.pos)
            name = match.group().decode().upper() if match else ""
            if name in c.FETCH_MACROS:
                r.pos = match.end() if match else r.pos
                macro = name
                items.extend(c.FETCH_MACROS[name])
            else:
                items.append(_fetch_att(r))
        changed_since = None
        vanished = False
        if r.try_sp():
            r.expect(b"(", "to open the FETCH modifiers")
            first = True
            while first or r.try_sp():
                first = False
                modifier = r.keyword()
                if modifier == "CHANGEDSINCE" and changed_since is None:
                    r.sp("mod-sequence")
                    changed_since = _mod_sequence(r, allow_zero=True)
                elif modifier == "VANISHED" and not vanished:
                    vanished = True
                else:
                    raise r.fail(f"Unknown or repeated FETCH modifier {modifier}")
            r.expect(b")", "to close the FETCH modifiers")
        r.end()
        if vanished and (not uid or changed_since is None):
            # RFC 7162 §3.2.6: VANISHED only in UID FETCH, and with CHANGEDSINCE.
            raise r.fail("VANISHED requires UID FETCH with CHANGEDSINCE")
        return c.Fetch(
            tag=tag,
            uid=uid,
            sequence_set=numbers,
            items=tuple(dict.fromkeys(items)),
            macro=macro,
            changed_since=changed_since,
            vanished=vanished,
        )

    return parse


def _fetch_att(r: Reader) -> c.FetchItem:
    """RFC 9051 §9 fetch-att."""
    match = _FETCH_NAME_RE.match(r.line, r.pos)
    if not match:
        raise r.fail(f"Invalid fetch item {r.context()!r}")
    raw = match.group().decode()
    name = raw.upper()
    r.pos = match.end()
    bracket = r.peek() == 0x5B
    if name in ("BODY", "BODY.PEEK") and bracket:
        section = _section(r)
        return c.FetchBody(section, _partial(r), peek=name == "BODY.PEEK")
    if name in ("BINARY", "BINARY.PEEK", "BINARY.SIZE"):
        if not bracket:
            raise r.fail(f"Missing section after {name}")
        part = _section_binary(r)
        if name == "BINARY.SIZE":
            return c.FetchBinarySize(part)
        return c.FetchBinary(part, _partial(r), peek=name == "BINARY.PEEK")
    attr = _SIMPLE_FETCH.get(name)
    if attr is None or bracket:
        raise r.fail(f"Invalid fetch item {raw!r}")
    return attr


def _section(r: Reader) -> c.Section:
    """RFC 9051 §9 section = "[" [section-spec] "]"; section-spec = section-msgtext /
    (section-part ["." section-text]); section-text = section-msgtext / "MIME"."""
    r.expect(b"[")
    part: list[int] = []
    text: str | None = None
    fields: tuple[str, ...] = ()
    if r.peek() != 0x5D:
        if 0x30 <= r.peek() <= 0x39:
            part.append(r.nz_number("section part"))
            while r.peek_is(b"."):
                r.pos += 1
                if 0x30 <= r.peek() <= 0x39:
                    part.append(r.nz_number("section part"))
                else:
                    text, fields = _section_text(r, allow_mime=True)
                    break
        else:
            text, fields = _section_text(r, allow_mime=False)
    r.expect(b"]", "to close the section")
    return c.Section(tuple(part), text, fields)


def _section_text(r: Reader, *, allow_mime: bool) -> tuple[str, tuple[str, ...]]:
    """RFC 9051 §9 section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list
    / "TEXT"; header-list = "(" header-fld-name *(SP header-fld-name) ")"."""
    match = _SECTION_TEXT_RE.match(r.line, r.pos)
    text = match.group().decode().upper() if match else ""
    if match:
        r.pos = match.end()
    if text in ("HEADER", "TEXT") or (text == "MIME" and allow_mime):
        return text, ()
    if text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        r.sp("header list")
        r.expect(b"(", "to open the header list")
        fields = [r.text(r.astring("header field name"), "header field name").upper()]
        while r.try_sp():
            fields.append(r.text(r.astring("header field name"), "header field name").upper())
        r.expect(b")", "to close the header list")
        return text, tuple(dict.fromkeys(fields))
    raise r.fail(f"Invalid section {text or r.context()!r}")


def _section_binary(r: Reader) -> tuple[int, ...]:
    """RFC 9051 §9 section-binary = "[" [section-part] "]"."""
    r.expect(b"[")
    part: list[int] = []
    if r.peek() != 0x5D:
        part.append(r.nz_number("section part"))
        while r.peek_is(b"."):
            r.pos += 1
            part.append(r.nz_number("section part"))
    r.expect(b"]", "to close the section")
    return tuple(part)


def _partial(r: Reader) -> tuple[int, int] | None:
    """RFC 9051 §9 partial = "<" number64 "." nz-number64 ">"."""
    if r.peek() != 0x3C:
        return None
    r.pos += 1
    origin = r.number64("partial origin")
    r.expect(b".", "in partial range")
    length = r.nz_number("partial length", limit=(1 << 63) - 1)
    r.expect(b">", "to close the partial range")
    return origin, length


# -- STORE COPY MOVE ---------------------------------------------------------------------

_STORE_ITEM_RE = re.compile(rb"([+-]?)FLAGS(\.SILENT)?", re.IGNORECASE)


def _store(uid: bool) -> Grammar:
    def parse(r: Reader, tag: str) -> c.Command:
        """RFC 9051 §6.4.6 store = "STORE" SP sequence-set [store-modifiers] SP
        store-att-flags; RFC 7162 §7 store-modifier = "UNCHANGEDSINCE" SP
        mod-sequence-valzer; store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP
        (flag-list / (flag *(SP flag)))."""
        r.sp("sequence set")
        numbers = r.sequence_set()
        r.sp("store item")
        unchanged_since = None
        if r.peek() == 0x28:
            r.pos += 1
            first = True
            while first or r.try_sp():
                first = False
                modifier = r.keyword()
                if modifier != "UNCHANGEDSINCE" or unchanged_since is not None:
                    raise r.fail(f"Unknown or repeated STORE modifier {modifier}")
                r.sp("mod-sequence")
                unchanged_since = _mod_sequence(r, allow_zero=True)
            r.expect(b")", "to close the STORE modifiers")
            r.sp("store item")
        match = _STORE_ITEM_RE.match(r.line, r.pos)
        if not match or (r.line[match.end() : match.end() + 1] not in (b" ", b"")):
            raise r.fail(f"Invalid STORE item {r.context()!r}")
        r.pos = match.end()
        mode = c.StoreMode(match.group(1).decode())
        silent = match.group(2) is not None
        r.sp("flags")
        if r.peek() == 0x28:
            flags = r.flag_list()
        else:
            found = [r.flag()]
            while r.try_sp():
                found.append(r.flag())
            flags = tuple(dict.fromkeys(found))
        r.end()
        return c.Store(
            tag=tag,
            uid=uid,
            sequence_set=numbers,
            mode=mode,
            silent=silent,
            flags=flags,
            unchanged_since=unchanged_since,
        )

    return parse


def _copy(command: type[c.Copy] | type[c.Move], uid: bool) -> Grammar:
    def parse(r: Reader, tag: str) -> c.Command:
        """RFC 9051 §6.4.7 copy = "COPY" SP sequence-set SP mailbox; §6.4.8 MOVE."""
        r.sp("sequence set")
        numbers = r.sequence_set()
        r.sp("mailbox name")
        mailbox = r.mailbox()
        r.end()
        return command(tag=tag, uid=uid, sequence_set=numbers, mailbox=mailbox)

    return parse


# -- SORT THREAD ------------------------------------------------------------------------

SORT_KEYS = frozenset(
    {"ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO"}
)
THREAD_ALGORITHMS = frozenset({"ORDEREDSUBJECT", "REFERENCES"})


def _sort(uid: bool) -> Grammar:
    def parse(r: Reader, tag: str) -> c.Command:
        """RFC 5256 §5 sort = ["UID" SP] "SORT" SP sort-criteria SP search-criteria;
        RFC 5267 §3.2 (ESORT) search-return-opts; RFC 5957 §3 DISPLAYFROM DISPLAYTO."""
        options = _search_return(r)
        r.sp("sort criteria")
        r.expect(b"(", "to open the sort criteria")
        criteria: list[c.SortCriterion] = []
        while True:
            key = r.keyword()
            reverse = key == "REVERSE"
            if reverse:
                r.sp("sort key")
                key = r.keyword()
            if key not in SORT_KEYS:
                raise r.fail(f"Unknown sort key {key}")
            criteria.append(c.SortCriterion(key, reverse))
            if not r.try_sp():
                break
        r.expect(b")", "to close the sort criteria")
        r.sp("charset")
        charset = _charset(r)
        r.sp("search criteria")
        search = _search_program(r, charset)
        return c.Sort(
            tag=tag,
            uid=uid,
            criteria=tuple(criteria),
            charset=charset,
            search=search,
            return_options=options,
        )

    return parse


def _thread(uid: bool) -> Grammar:
    def parse(r: Reader, tag: str) -> c.Command:
        """RFC 5256 §5 thread = ["UID" SP] "THREAD" SP thread-alg SP search-criteria."""
        r.sp("threading algorithm")
        algorithm = r.keyword()
        if algorithm not in THREAD_ALGORITHMS:
            raise r.fail(f"Unknown threading algorithm {algorithm}")
        r.sp("charset")
        charset = _charset(r)
        r.sp("search criteria")
        search = _search_program(r, charset)
        return c.Thread(tag=tag, uid=uid, algorithm=algorithm, charset=charset, search=search)

    return parse


#: Command name -> grammar (RFC 9051 §9 command-any / command-auth / command-nonauth /
#: command-select, and the extensions).
COMMAND_GRAMMAR: dict[str, Grammar] = {
    "CAPABILITY": _no_arguments(c.Capability),
    "NOOP": _no_arguments(c.Noop),
    "LOGOUT": _no_arguments(c.Logout),
    "ID": parse_id,
    "COMPRESS": parse_compress,
    "STARTTLS": _no_arguments(c.StartTLS),
    "AUTHENTICATE": parse_authenticate,
    "LOGIN": parse_login,
    "ENABLE": parse_enable,
    "SELECT": _select(c.Select),
    "EXAMINE": _select(c.Examine),
    "CREATE": parse_create,
    "DELETE": _one_mailbox(c.Delete),
    "RENAME": parse_rename,
    "SUBSCRIBE": _one_mailbox(c.Subscribe),
    "UNSUBSCRIBE": _one_mailbox(c.Unsubscribe),
    "LIST": parse_list,
    "LSUB": parse_lsub,
    "NAMESPACE": _no_arguments(c.Namespace),
    "STATUS": parse_status,
    "APPEND": parse_append,
    "IDLE": _no_arguments(c.Idle),
    "GETQUOTA": parse_getquota,
    "GETQUOTAROOT": parse_getquotaroot,
    "SETQUOTA": parse_setquota,
    "CHECK": _no_arguments(c.Check),
    "CLOSE": _no_arguments(c.Close),
    "UNSELECT": _no_arguments(c.Unselect),
    "EXPUNGE": parse_expunge,
    "SEARCH": _search(False),
    "FETCH": _fetch(False),
    "STORE": _store(False),
    "COPY": _copy(c.Copy, False),
    "MOVE": _copy(c.Move, False),
    "SORT": _sort(False),
    "THREAD": _thread(False),
}

#: RFC 9051 §9 uid = "UID" SP (copy / move / fetch / search / store / uid-expunge);
#: RFC 5256 UID SORT / UID THREAD.
UID_GRAMMAR: dict[str, Grammar] = {
    "COPY": _copy(c.Copy, True),
    "MOVE": _copy(c.Move, True),
    "FETCH": _fetch(True),
    "SEARCH": _search(True),
    "STORE": _store(True),
    "EXPUNGE": parse_uid_expunge,
    "SORT": _sort(True),
    "THREAD": _thread(True),
}
