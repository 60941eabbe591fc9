"""Streaming, safe sitemap parsing with stdlib expat.

Memory stays bounded: input is inflated and parsed chunk by chunk and items are yielded as they
complete. Entity declarations, external DTDs and external entities are refused, so XML bombs and
file reads fail with `UnsafeXMLError`. Limits follow the sitemaps protocol: 50,000 entries and
50 MB uncompressed per file.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from xml.parsers import expat

MAX_ENTRIES = 50_000
MAX_UNCOMPRESSED_BYTES = 50 * 1024 * 1024
MAX_LOC_LENGTH = 2048
INFLATE_STEP = 64 * 1024  # bytes of XML produced per decompression step
GZIP_MAGIC = b"\x1f\x8b"
CHANGEFREQS = frozenset({"always", "hourly", "daily", "weekly", "monthly", "yearly", "never"})
_NS_SEP = "\x1f"  # expat joins namespace and local name with this; it cannot occur in XML names
_FIELDS = {"url": {"loc", "lastmod", "changefreq", "priority"}, "sitemap": {"loc", "lastmod"}}
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
    handler = _Handler(max_entries)
    parser = _make_parser(handler)
    for data in _inflate(chunks):
        _feed(parser, data, final=False)
        yield from handler.drain()
    _feed(parser, b"", final=True)
    yield from handler.drain()


def _make_parser(handler: _Handler) -> expat.XMLParserType:
    """An expat parser with entity handling locked down and `handler` attached."""
    parser = expat.ParserCreate(namespace_separator=_NS_SEP)
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.buffer_text = True
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


def _inflate(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Yield the XML bytes: gzip (by magic bytes) inflated step by step; 50 MB at most."""
    stream = iter(chunks)
    head = b""
    for chunk in stream:
        head += chunk
        if len(head) >= len(GZIP_MAGIC):
            break
    if not head:
        raise MalformedSitemapError("malformed sitemap: the document is empty")
    if head.startswith(GZIP_MAGIC):
        yield from _cap(_gunzip(head, stream))
    else:
        yield from _cap(_prepend(head, stream))


def _prepend(head: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    """`head`, then the rest of the chunks."""
    yield head
    yield from rest


def _gunzip(head: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    """Inflate a gzip stream producing at most `INFLATE_STEP` bytes at a time."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        for compressed in _prepend(head, rest):
            pending = compressed
            while pending and not inflater.eof:
                yield inflater.decompress(pending, INFLATE_STEP)
                pending = inflater.unconsumed_tail
    except zlib.error as exc:
        raise MalformedSitemapError(f"malformed gzip data: {exc}") from exc
    if not inflater.eof:
        raise MalformedSitemapError("malformed gzip data: the stream is truncated")


def _cap(data: Iterator[bytes]) -> Iterator[bytes]:
    """Pass `data` through, refusing it past `MAX_UNCOMPRESSED_BYTES`."""
    total = 0
    for chunk in data:
        total += len(chunk)
        if total > MAX_UNCOMPRESSED_BYTES:
            raise SitemapTooLargeError(
                f"sitemap too large: more than {MAX_UNCOMPRESSED_BYTES // (1024 * 1024)} MB "
                "uncompressed"
            )
        yield chunk


class _Handler:
    """Expat callbacks that collect finished entries into a small pending list."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self.root = ""
        self.entry = ""  # `url` in a urlset, `sitemap` in a sitemapindex
        self.entries = 0
        self.depth = 0
        self.in_entry = False
        self.fields: dict[str, str] = {}
        self.field: str | None = None
        self.text_parts: list[str] = []
        self.text_length = 0
        self.pending: list[SitemapItem] = []

    def drain(self) -> list[SitemapItem]:
        """Hand over the entries finished so far."""
        items, self.pending = self.pending, []
        return items

    def start(self, name: str, _attributes: dict[str, str]) -> None:
        """Track the element path: root, entry (`url`/`sitemap`), field."""
        local = name.rpartition(_NS_SEP)[2]
        self.depth += 1
        if self.depth == 1:
            self._start_root(local)
        elif self.depth == 2 and local == self.entry:
            self._start_entry()
        elif self.depth == 3 and self.in_entry and local in _FIELDS[self.entry]:
            self.field = local
            self.text_parts, self.text_length = [], 0

    def end(self, name: str) -> None:
        """Close a field or an entry."""
        local = name.rpartition(_NS_SEP)[2]
        if self.depth == 3 and self.field == local:
            self.fields.setdefault(local, "".join(self.text_parts))
            self.field = None
        elif self.depth == 2 and self.in_entry and local == self.entry:
            self._finish_entry()
        self.depth -= 1

    def text(self, data: str) -> None:
        """Collect a field's text, bounded in length."""
        if self.field is not None and self.text_length < _FIELD_TEXT_LIMIT:
            self.text_parts.append(data)
            self.text_length += len(data)

    def _start_root(self, local: str) -> None:
        if local not in _ENTRY_OF_ROOT:
            raise MalformedSitemapError(
                f"not a sitemap: the root element is <{local}>, not <urlset> or <sitemapindex>"
            )
        self.root, self.entry = local, _ENTRY_OF_ROOT[local]

    def _start_entry(self) -> None:
        self.entries += 1
        if self.entries > self.max_entries:
            raise TooManyURLsError(
                f"too many URLs: a sitemap may list at most {self.max_entries:,} entries"
            )
        self.in_entry, self.fields = True, {}

    def _finish_entry(self) -> None:
        item = _build_item(self.root, self.fields)
        if item is not None:
            self.pending.append(item)
        self.in_entry, self.fields = False, {}


def _build_item(root: str, fields: dict[str, str]) -> SitemapItem | None:
    """The item for an entry's fields, or None when its `<loc>` is missing or unusable."""
    loc = fields.get("loc", "").strip()
    if not loc or len(loc) > MAX_LOC_LENGTH or not loc.lower().startswith(("http://", "https://")):
        return None
    lastmod = parse_lastmod(fields.get("lastmod"))
    if root == "sitemapindex":
        return ChildSitemap(loc=loc, lastmod=lastmod)
    return SitemapURL(
        loc=loc,
        lastmod=lastmod,
        changefreq=_changefreq(fields.get("changefreq")),
        priority=_priority(fields.get("priority")),
    )


def parse_lastmod(value: str | None) -> dt.datetime | None:
    """Parse a W3C datetime (`2024`, `2024-05`, `2024-05-01`, `2024-05-01T10:00Z`) as UTC."""
    if not value or not value.strip():
        return None
    text = value.strip()
    if len(text) in (4, 7):  # YYYY or YYYY-MM
        text = f"{text}-01-01"[:10] if len(text) == 4 else f"{text}-01"
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


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
