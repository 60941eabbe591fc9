"""Streaming, safe sitemap parsing with stdlib expat, linear in its input.

Memory stays bounded: `SitemapParser` takes the body chunk by chunk as it arrives, inflates gzip
(detected by its magic bytes) 64 KB at a time, and hands over the entries finished in each step.
Entity declarations, external DTDs and external entities are refused, so XML bombs and file reads
fail with `UnsafeXMLError`. Limits follow the sitemaps protocol: 50,000 entries and 50 MB
uncompressed per file; elements nest at most `MAX_DEPTH` levels deep.

Linear whatever the expat version: expat before 2.6 re-parses an unfinished token from its start
on every feed, so one huge comment fed in slices costs time quadratic in its size (a 45 MB comment
blocked for 29 s). A lexical scanner looks at every byte before expat does and refuses any single
token (text, tag, comment, CDATA section, processing instruction, declaration) longer than
`MAX_TOKEN_BYTES` with `TokenTooLargeError`; expat then never holds more than one such token.
"""

from __future__ import annotations

import datetime as dt
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from xml.parsers import expat

MAX_ENTRIES = 50_000
MAX_UNCOMPRESSED_BYTES = 50 * 1024 * 1024
MAX_LOC_LENGTH = 2048
MAX_TOKEN_BYTES = 64 * 1024
"""Longest single XML token accepted; sitemap fields are at most a few KB (a URL is <= 2,048)."""
MAX_DEPTH = 32
"""Deepest element nesting accepted: a sitemap needs four levels (an image of an entry), and
expat keeps every open element (ten million open elements held 1.2 GB)."""
INFLATE_STEP = 64 * 1024  # bytes of XML produced, scanned and parsed per step
GZIP_MAGIC = b"\x1f\x8b"
CHANGEFREQS = frozenset({"always", "hourly", "daily", "weekly", "monthly", "yearly", "never"})
_NS_SEP = "\x1f"  # expat joins namespace and local name with this; it cannot occur in XML names
_FIELDS = {
    "url": frozenset({"loc", "lastmod", "changefreq", "priority"}),
    "sitemap": frozenset({"loc", "lastmod"}),
}
_SCHEMES = ("http://", "https://")
_LOCAL_NAMES_CACHED = 64  # a hostile document may use millions of names: cache the first few
_ENTRY_OF_ROOT = {"urlset": "url", "sitemapindex": "sitemap"}
_FIELD_TEXT_LIMIT = 4 * MAX_LOC_LENGTH


class SitemapError(Exception):
    """A sitemap could not be used; the message (also `reason`) is meant for users."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MalformedSitemapError(SitemapError):
    """The document is not well-formed XML, not a sitemap, or a truncated gzip stream."""


class UnsafeXMLError(SitemapError):
    """The document declares entities or refers to an external DTD or entity."""


class SitemapTooLargeError(SitemapError):
    """The uncompressed document is larger than 50 MB."""


class TooManyURLsError(SitemapError):
    """The document lists more than 50,000 entries."""


class TokenTooLargeError(SitemapError):
    """One token (text, tag, comment, CDATA, processing instruction) exceeds `MAX_TOKEN_BYTES`."""


class NestingTooDeepError(SitemapError):
    """Elements are nested more than `MAX_DEPTH` levels deep."""


@dataclass(frozen=True, slots=True)
class SitemapURL:
    """A page listed by a `<urlset>`."""

    loc: str
    lastmod: dt.datetime | None = None
    changefreq: str | None = None
    priority: float | None = None


@dataclass(frozen=True, slots=True)
class ChildSitemap:
    """A sitemap listed by a `<sitemapindex>`."""

    loc: str
    lastmod: dt.datetime | None = None


SitemapItem = SitemapURL | ChildSitemap


def parse_sitemap(
    chunks: Iterable[bytes], *, max_entries: int = MAX_ENTRIES
) -> Iterator[SitemapItem]:
    """Yield the pages or child sitemaps of a (possibly gzip-compressed) sitemap, streaming."""
    parser = SitemapParser(max_entries=max_entries)
    for chunk in chunks:
        for items in parser.feed(chunk):
            yield from items
    for items in parser.close():
        yield from items


class SitemapParser:
    """A push parser: `feed` the body's chunks as they arrive, then `close`.

    Both return an iterator with one list of finished entries per step of at most
    `INFLATE_STEP` bytes of XML, so a caller decides how much work to do at a time (and where:
    `jobs.offload.cpu` runs steps off the event loop). Exhaust it before the next call.
    """

    def __init__(
        self, *, max_entries: int = MAX_ENTRIES, max_token_bytes: int = MAX_TOKEN_BYTES
    ) -> None:
        self._handler = _Handler(max_entries)
        self._expat = _make_parser(self._handler)
        self._scanner = TokenScanner(max_token_bytes)
        self._head = b""  # the first bytes, until gzip can be told from XML
        self._inflater: zlib._Decompress | None = None
        self._started = False
        self.xml_bytes = 0
        """Bytes of XML handed to expat so far (after inflating)."""

    def feed(self, data: bytes) -> Iterator[list[SitemapItem]]:
        """Parse the next chunk of the body (compressed or not), one step at a time."""
        if not self._started:
            self._head += data
            if len(self._head) < len(GZIP_MAGIC):
                return
            data, self._head, self._started = self._head, b"", True
            if data.startswith(GZIP_MAGIC):
                self._inflater = zlib.decompressobj(wbits=31)
        steps = _slices(data) if self._inflater is None else _inflate(self._inflater, data)
        for xml in steps:
            yield self._parse(xml, final=False)

    def close(self) -> Iterator[list[SitemapItem]]:
        """Finish the document: refuse an empty, truncated or unterminated one."""
        if not self._started:
            if not self._head:
                raise MalformedSitemapError("malformed sitemap: the document is empty")
            yield self._parse(self._head, final=False)
        if self._inflater is not None and not self._inflater.eof:
            raise MalformedSitemapError("malformed gzip data: the stream is truncated")
        yield self._parse(b"", final=True)

    def _parse(self, xml: bytes, *, final: bool) -> list[SitemapItem]:
        """Check one step of XML (size, tokens), then parse it; the entries it finished."""
        if self.xml_bytes + len(xml) > MAX_UNCOMPRESSED_BYTES:
            raise SitemapTooLargeError(
                f"sitemap too large: more than {MAX_UNCOMPRESSED_BYTES // (1024 * 1024)} MB "
                "uncompressed"
            )
        self._scanner.scan(xml)
        self.xml_bytes += len(xml)
        _feed(self._expat, xml, final=final)
        return self._handler.drain()


def _make_parser(handler: _Handler) -> expat.XMLParserType:
    """An expat parser with entity handling locked down and `handler` attached."""
    parser = expat.ParserCreate(namespace_separator=_NS_SEP)
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.buffer_text = True
    parser.ordered_attributes = True  # a list, cheaper to build than a dict (and unused)
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_entity
    parser.ExternalEntityRefHandler = _refuse_external
    parser.StartElementHandler = handler.start
    parser.EndElementHandler = handler.end
    parser.CharacterDataHandler = handler.text
    return parser


def _feed(parser: expat.XMLParserType, data: bytes, *, final: bool) -> None:
    """Parse `data`, turning expat errors into `MalformedSitemapError`."""
    try:
        parser.Parse(data, final)
    except expat.ExpatError as exc:
        message = expat.ErrorString(exc.code) or "syntax error"
        raise MalformedSitemapError(
            f"malformed XML at line {exc.lineno}, column {exc.offset}: {message}"
        ) from exc


def _refuse_doctype(
    name: str, system_id: str | None, public_id: str | None, has_internal_subset: int
) -> None:
    """Allow only a bare `<!DOCTYPE name>`: no external DTD, no internal subset."""
    if system_id or public_id or has_internal_subset:
        raise UnsafeXMLError("unsafe XML: DOCTYPE declarations with a DTD are not accepted")


def _refuse_entity(name: str, *_: object) -> None:
    """Refuse every entity declaration (XML bombs, external entities)."""
    raise UnsafeXMLError(f"unsafe XML: entity declarations are not accepted ({name!r})")


def _refuse_external(*_: object) -> int:
    """Refuse every external entity reference."""
    raise UnsafeXMLError("unsafe XML: external entities are not accepted")


def _slices(data: bytes) -> Iterator[bytes]:
    """`data` in steps of at most `INFLATE_STEP` bytes."""
    if len(data) <= INFLATE_STEP:
        yield data
        return
    view = memoryview(data)
    for start in range(0, len(data), INFLATE_STEP):
        yield bytes(view[start : start + INFLATE_STEP])


def _inflate(inflater: zlib._Decompress, data: bytes) -> Iterator[bytes]:
    """Inflate `data` producing at most `INFLATE_STEP` bytes at a time (gzip bombs stay small)."""
    pending = data
    try:
        while not inflater.eof:
            xml = inflater.decompress(pending, INFLATE_STEP)
            pending = inflater.unconsumed_tail
            if xml:
                yield xml
            if not pending and len(xml) < INFLATE_STEP:  # a full step may leave output behind
                return
    except zlib.error as exc:
        raise MalformedSitemapError(f"malformed gzip data: {exc}") from exc


# Token kinds of `TokenScanner` (as named in its error), with the bytes that end them.
_TEXT = "text node or tag"
_COMMENT = "comment"
_CDATA = "CDATA section"
_PI = "processing instruction"
_DECLARATION = "declaration"
_TERMINATORS = {_COMMENT: b"-->", _CDATA: b"]]>", _PI: b"?>"}
_OPENERS = ((b"<!--", _COMMENT), (b"<![CDATA[", _CDATA), (b"<?", _PI))
_LONGEST_OPENER = 9
_SPECIAL_OPEN = re.compile(rb"<[!?]")
_DECLARATION_STOP = re.compile(rb"[>\"'\[]")


class TokenScanner:
    """Follows the XML token in progress across chunks; refuses one longer than `limit` bytes.

    O(1) work per byte, done in C by `re.search`, `bytes.find` and `bytes.split`; Python runs
    once per chunk and once per comment, CDATA section, processing instruction or declaration.
    Text and tags, the bulk of a sitemap, are checked in bulk: no `<` may occur inside a text
    node or a tag, so each lies within the gap between two `<`, and no gap may exceed the limit.
    The scanner only measures: expat judges well-formedness. It reads at most a few bytes twice
    (an opener or terminator split by a chunk boundary).
    """

    def __init__(self, limit: int = MAX_TOKEN_BYTES) -> None:
        self.limit = limit
        self.kind = _TEXT
        self.length = 0
        """Bytes of the token in progress (text and tags: since the last `<`)."""
        self._inside = b""  # in a declaration: the open quote, or `[` for a DOCTYPE's subset
        self._carry = b""  # at most 8 bytes that may start an opener or a terminator

    def scan(self, data: bytes) -> None:
        """Account for the next bytes of the document; raise `TokenTooLargeError` past the limit."""
        buffer = self._carry + data if self._carry else data
        self._carry = b""
        position = 0
        while position < len(buffer):
            if self.kind == _TEXT:
                position = self._text(buffer, position)
            elif self.kind == _DECLARATION:
                position = self._declaration(buffer, position)
            else:
                position = self._until(buffer, position, _TERMINATORS[self.kind])

    def _text(self, buffer: bytes, position: int) -> int:
        """Text and tags, up to the next comment, CDATA section, PI or declaration."""
        special = _SPECIAL_OPEN.search(buffer, position)
        if special is None:
            end = len(buffer) - 1 if buffer.endswith(b"<") else len(buffer)
            self._gaps(buffer[position:end])
            self._carry = buffer[end:]  # a final `<` may open a comment in the next chunk
            return len(buffer)
        start = special.start()
        self._gaps(buffer[position:start])
        opener = buffer[start : start + _LONGEST_OPENER]
        for prefix, kind in _OPENERS:
            if opener.startswith(prefix):
                return self._begin(kind, start, len(prefix))
            if prefix.startswith(opener):  # `<!-` at the end of the chunk: wait for more
                self._carry = opener
                return len(buffer)
        return self._begin(_DECLARATION, start, 2)

    def _gaps(self, region: bytes) -> None:
        """Text and tags only: no gap between two `<` may exceed the limit."""
        parts = region.split(b"<")
        self._grow(len(parts[0]))
        if len(parts) == 1:
            return
        if max(map(len, parts[1:-1]), default=0) >= self.limit:  # the `<` counts too
            self._refuse(_TEXT)
        self.length = 0
        self._grow(len(parts[-1]) + 1)

    def _begin(self, kind: str, start: int, opener: int) -> int:
        """Enter a comment, CDATA section, PI or declaration whose opener is at `start`."""
        self.kind, self.length = kind, 0
        self._grow(opener)
        return start + opener

    def _until(self, buffer: bytes, position: int, terminator: bytes) -> int:
        """Inside a comment, CDATA section or PI: skip to its terminator."""
        found = buffer.find(terminator, position)
        if found < 0:
            keep = max(len(buffer) - len(terminator) + 1, position)
            self._grow(keep - position)
            self._carry = buffer[keep:]  # may be the start of the terminator
            return len(buffer)
        self._grow(found + len(terminator) - position)
        self.kind, self.length = _TEXT, 0
        return found + len(terminator)

    def _declaration(self, buffer: bytes, position: int) -> int:
        """Inside `<!DOCTYPE ...>` or another `<!`: skip quoted literals and the `[...]` subset."""
        if self._inside:
            stop = buffer.find(b"]" if self._inside == b"[" else self._inside, position)
        else:
            match = _DECLARATION_STOP.search(buffer, position)
            stop = -1 if match is None else match.start()
        if stop < 0:
            self._grow(len(buffer) - position)
            return len(buffer)
        self._grow(stop + 1 - position)
        char = buffer[stop : stop + 1]
        if self._inside:
            self._inside = b""
        elif char == b">":
            self.kind, self.length = _TEXT, 0
        else:
            self._inside = char
        return stop + 1

    def _grow(self, count: int) -> None:
        """Add `count` bytes to the token in progress; refuse it past the limit."""
        self.length += count
        if self.length > self.limit:
            self._refuse(self.kind)

    def _refuse(self, kind: str) -> None:
        raise TokenTooLargeError(
            f"token too large: a {kind} of more than {self.limit:,} bytes "
            "(sitemap fields are at most a few KB)"
        )


class _Handler:
    """Expat callbacks that collect finished entries into a small pending list.

    Python runs once per start tag, end tag and text node, the bulk of the parse, so the
    callbacks do as little as they can: the depth decides first, end tags need no name (the
    element closing at a depth is the one that opened there), a field's element name maps to
    the field through a small cache (a document uses a handful of names), and its text is
    kept as one string (one piece in the common case, no list to join).
    """

    __slots__ = (
        "_fields_of",
        "depth",
        "entries",
        "entry",
        "field",
        "fields",
        "in_entry",
        "is_index",
        "max_entries",
        "pending",
        "value",
        "wanted",
    )

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self.is_index = False
        self.entry = ""  # `url` in a urlset, `sitemap` in a sitemapindex
        self.wanted: frozenset[str] = frozenset()
        self.entries = 0
        self.depth = 0
        self.in_entry = False
        self.fields: dict[str, str] = {}
        self.field: str | None = None
        self.value = ""  # the text of the field in progress
        self.pending: list[SitemapItem] = []
        self._fields_of: dict[str, str | None] = {}  # expat name -> wanted field (None: not)

    def drain(self) -> list[SitemapItem]:
        """Hand over the entries finished so far."""
        items, self.pending = self.pending, []
        return items

    def start(self, name: str, _attributes: object) -> None:
        """Track the element path: root, entry (`url`/`sitemap`), field."""
        depth = self.depth = self.depth + 1
        if depth == 3:
            if self.in_entry:
                field = self._fields_of.get(name, _UNSEEN)
                if field is _UNSEEN:
                    field = self._field_of(name)
                if field is not None and field is not _ENTRY:
                    self.field = field
                    self.value = ""
        elif depth == 2:
            kind = self._fields_of.get(name, _UNSEEN)
            if kind is _UNSEEN:  # as for a field: one lookup, the name resolved once
                kind = self._field_of(name)
            if kind is _ENTRY:
                self._start_entry()
        elif depth == 1:
            self._start_root(_local(name))
        elif depth > MAX_DEPTH:
            raise NestingTooDeepError(
                f"nesting too deep: elements nested more than {MAX_DEPTH} levels deep "
                "(a sitemap needs four)"
            )

    def end(self, _name: str) -> None:
        """Close a field or an entry."""
        depth = self.depth
        self.depth = depth - 1
        if depth == 3:
            field = self.field
            if field is not None:
                if field not in self.fields:
                    self.fields[field] = self.value
                self.field = None
        elif depth == 2 and self.in_entry:
            self._finish_entry()

    def text(self, data: str) -> None:
        """Collect a field's text, bounded in length."""
        if self.field is not None:
            value = self.value
            if len(value) < _FIELD_TEXT_LIMIT:
                self.value = value + data  # `"" + data` is `data`: no copy for one piece

    def _field_of(self, name: str) -> str | None:
        """What an expat name is: a wanted field, `_ENTRY` (the entry element) or None; cached
        for the first few names."""
        local = _local(name)
        field = local if local in self.wanted else _ENTRY if local == self.entry else None
        if len(self._fields_of) < _LOCAL_NAMES_CACHED:
            self._fields_of[name] = field
        return field

    def _start_root(self, local: str) -> None:
        if local not in _ENTRY_OF_ROOT:
            raise MalformedSitemapError(
                f"not a sitemap: the root element is <{local}>, not <urlset> or <sitemapindex>"
            )
        self.entry = _ENTRY_OF_ROOT[local]
        self.is_index = local == "sitemapindex"
        self.wanted = _FIELDS[self.entry]

    def _start_entry(self) -> None:
        self.entries += 1
        if self.entries > self.max_entries:
            raise TooManyURLsError(
                f"too many URLs: a sitemap may list at most {self.max_entries:,} entries"
            )
        self.in_entry, self.fields = True, {}

    def _finish_entry(self) -> None:
        item = _build_item(self.is_index, self.fields)
        if item is not None:
            self.pending.append(item)
        self.in_entry, self.fields = False, {}


_UNSEEN = ""  # not a field name: marks an expat name not looked up yet
_ENTRY = "\x1f"  # not a field name: marks the entry element (`url`, `sitemap`)


def _local(name: str) -> str:
    """The local name of an expat name (`namespace` + `_NS_SEP` + `local`)."""
    return name.rpartition(_NS_SEP)[2]


def _build_item(is_index: bool, fields: dict[str, str]) -> SitemapItem | None:
    """The item for an entry's fields, or None when its `<loc>` is missing or unusable."""
    loc = fields.get("loc", "").strip()
    if (
        not loc
        or len(loc) > MAX_LOC_LENGTH
        or not (loc.startswith(_SCHEMES) or loc[:8].lower().startswith(_SCHEMES))
    ):
        return None
    lastmod = parse_lastmod(fields.get("lastmod"))
    if is_index:
        return ChildSitemap(loc, lastmod)
    changefreq = fields.get("changefreq")
    priority = fields.get("priority")
    return SitemapURL(
        loc,
        lastmod,
        None if changefreq is None else _CHANGEFREQ_OF.get(changefreq) or _changefreq(changefreq),
        None if priority is None else _PRIORITY_OF.get(priority) or _priority(priority),
    )


def parse_lastmod(value: str | None) -> dt.datetime | None:
    """Parse a W3C datetime (`2024`, `2024-05`, `2024-05-01`, `2024-05-01T10:00Z`) as UTC."""
    if not value or not value.strip():
        return None
    text = value.strip()
    if len(text) in (4, 7):  # YYYY or YYYY-MM
        text = f"{text}-01-01"[:10] if len(text) == 4 else f"{text}-01"
    if "Z" in text or "z" in text:
        text = text.replace("Z", "+00:00").replace("z", "+00:00")
    try:
        parsed = dt.datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=dt.UTC)
        return parsed.astimezone(dt.UTC)
    except (ValueError, OverflowError):  # `0001-01-01T00:00+01:00` is before year 1 in UTC
        return None


_CHANGEFREQ_OF = {word: word for word in CHANGEFREQS}  # the common case: no strip, no lower
_PRIORITY_OF = {f"{tenths / 10:.1f}": tenths / 10 for tenths in range(1, 11)}  # 0.1 ... 1.0


def _changefreq(value: str | None) -> str | None:
    """The change frequency if it is one of the protocol's words."""
    if not value:
        return None
    word = value.strip().lower()
    return word if word in CHANGEFREQS else None


def _priority(value: str | None) -> float | None:
    """The priority if it is a number from 0.0 to 1.0."""
    if not value:  # most entries have none: skip the exception path (measurably faster)
        return None
    try:
        priority = float(value.strip())
    except ValueError:
        return None
    return priority if 0.0 <= priority <= 1.0 else None
