"""The parser against the expat-callback parser it replaced, kept here as the reference.

Both parse the same generated documents (namespaces and prefixes, CDATA, comments, processing
instructions, entities, whitespace, DOCTYPEs, markup inside fields, deep nesting, encodings,
gzip, malformed endings) fed in the same chunks, and must agree step by step: the entries each
step hands over, then the error's class and message, if any.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import random
from collections.abc import Iterable
from xml.parsers import expat

import pytest

from {{ cookiecutter.project_slug }}.sitemaps import parser as sitemap_parser
from {{ cookiecutter.project_slug }}.sitemaps.parser import (
    MAX_DEPTH,
    MAX_ENTRIES,
    MAX_TOKEN_BYTES,
    MAX_UNCOMPRESSED_BYTES,
    MalformedSitemapError,
    NestingTooDeepError,
    SitemapError,
    SitemapItem,
    SitemapParser,
    SitemapURL,
    TokenScanner,
    TooManyURLsError,
    UnsafeXMLError,
)

UTC = dt.UTC
SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
Outcome = list[list[SitemapItem] | str]


def outcome(parser: SitemapParser | ReferenceParser, chunks: Iterable[bytes]) -> Outcome:
    """What a caller sees: each step's entries, then the error (class and message), if any."""
    seen: Outcome = []
    try:
        for chunk in chunks:
            seen.extend(parser.feed(chunk))
        seen.extend(parser.close())
    except SitemapError as exc:
        seen.append(f"{type(exc).__name__}: {exc.reason}")
    return seen


def both(data: bytes, chunks: list[bytes], max_entries: int = MAX_ENTRIES) -> Outcome:
    """The outcome of both parsers on `chunks` (of `data`), asserted equal."""
    expected = outcome(ReferenceParser(max_entries=max_entries), chunks)
    assert outcome(SitemapParser(max_entries=max_entries), chunks) == expected, data
    return expected


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[start : start + size] for start in range(0, len(data), size)]


# A small document with one of everything; its entries, whatever the chunks.
SMALL = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<!-- generated -->\n"
    b'<?xml-stylesheet type="text/xsl" href="s.xsl"?>\n'
    b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
    b' xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">\n'
    b"  <url>\n"
    b"    <loc> https://a.example/?x=1&amp;y=&#50;&#x33; </loc>\n"
    b"    <lastmod>2024-05-01T10:00Z</lastmod>\n"
    b"    <image:image><image:loc>https://a.example/i.png</image:loc></image:image>\n"
    b"  </url>\n"
    b"  <url><loc><![CDATA[https://a.example/<b>]]></loc><changefreq>Daily</changefreq>"
    b"<priority>0.8</priority></url>\n"
    b"  <url><loc>https://a.exa<!-- split -->mple/c<?pi x?>d</loc></url>\n"
    b"  <sm:url xmlns:sm='http://www.sitemaps.org/schemas/sitemap/0.9'>"
    b"<sm:loc>https://a.example/e</sm:loc><loc>https://a.example/ignored</loc></sm:url>\n"
    b"  <url><loc>https://a.example/<i>f</i>g</loc></url>\n"
    b"  <url><loc>/relative</loc></url>\n"
    b"</urlset>\n"
    b"<!-- end -->\n"
)
SMALL_ITEMS = [
    SitemapURL("https://a.example/?x=1&y=23", dt.datetime(2024, 5, 1, 10, tzinfo=UTC)),
    SitemapURL("https://a.example/<b>", None, "daily", 0.8),
    SitemapURL("https://a.example/cd"),
    SitemapURL("https://a.example/e"),
    SitemapURL("https://a.example/fg"),
]


def entries(seen: Outcome) -> list[SitemapItem]:
    assert all(isinstance(step, list) for step in seen), seen[-1]
    return [item for step in seen if isinstance(step, list) for item in step]


def test_a_small_document_split_at_every_boundary() -> None:
    for cut in range(len(SMALL) + 1):
        assert entries(both(SMALL, [SMALL[:cut], SMALL[cut:]])) == SMALL_ITEMS


def test_a_small_document_in_small_chunks() -> None:
    for size in (1, 2, 3, 5, 8, 13):
        assert entries(both(SMALL, pieces(SMALL, size))) == SMALL_ITEMS


def test_a_small_gzip_document_split_at_every_boundary() -> None:
    data = gzip.compress(SMALL)
    for cut in range(len(data) + 1):
        assert entries(both(data, [data[:cut], data[cut:]])) == SMALL_ITEMS


@pytest.mark.parametrize("seed", range(8))
def test_generated_documents_agree(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(50):
        data = document(rng)
        max_entries = rng.choice([MAX_ENTRIES] * 8 + [1, 3])
        sizes = [len(data) or 1, 64, rng.randint(2, 40)]
        if rng.random() < 0.2:
            sizes.append(1)
        for size in sizes:
            both(data, pieces(data, size), max_entries)
        zipped = gzip.compress(data)
        both(zipped, pieces(zipped, rng.choice([7, 100, len(zipped)])), max_entries)


def test_many_steps_agree() -> None:
    """Entries spread over many 64 KB steps, some of them still open at a step's end."""
    rng = random.Random(99)
    body = b"".join(entry(rng, "url", "", deep=False).encode() + b"\n" for _ in range(3000))
    data = b'<urlset xmlns="%s" xmlns:image="urn:image">%s</urlset>' % (SITEMAP_NS.encode(), body)
    for size in (1000, 65_536, len(data)):
        assert len(entries(both(data, pieces(data, size)))) > 1000


@pytest.mark.parametrize(
    ("document_", "error"),
    [
        (b"<urlset><url>" + b"<a>" * (MAX_DEPTH - 1) + b"</a>", NestingTooDeepError),
        (b"<urlset><url>" + b"<a>" * (MAX_DEPTH - 1) + b"<<", NestingTooDeepError),
        (b"<urlset><url/><url/><url>" + b"<a>" * MAX_DEPTH, TooManyURLsError),
        (b"<urlset><url>" + b"<a>" * MAX_DEPTH + b"</a></url><url/><url/>", NestingTooDeepError),
        (b"<rss><url>" + b"<a>" * MAX_DEPTH, MalformedSitemapError),
        (b"<urlset><url></urlset>", MalformedSitemapError),
        (b'<!DOCTYPE urlset SYSTEM "x.dtd"><urlset>', UnsafeXMLError),
        (b"<!DOCTYPE urlset [<!ENTITY a 'b'>]><urlset/>", UnsafeXMLError),
        (b"<!DOCTYPE urlset [<!ENTITY a 'b'><urlset/>", UnsafeXMLError),
        (b"<urlset/><!DOCTYPE urlset>", MalformedSitemapError),
    ],
)
def test_the_first_error_in_document_order_wins(document_: bytes, error: type) -> None:
    """Several errors in one step: the one expat met first, as before."""
    for size in (1, 5, len(document_)):
        seen = both(document_, pieces(document_, size), max_entries=2)
        assert isinstance(seen[-1], str)
        assert seen[-1].startswith(error.__name__)


def test_a_field_keeps_its_first_characters_whatever_the_chunks() -> None:
    """A field's text past 8,192 characters is ignored, however the document is split
    (the reference kept a chunk-dependent prefix)."""
    data = b"<urlset><url><loc>https://a.example/" + b" " * 9000 + b"x</loc></url></urlset>"
    for size in (1, 100, 5000, len(data)):
        assert list(sitemap_parser.parse_sitemap(pieces(data, size))) == [
            SitemapURL("https://a.example/")
        ]


def test_items_are_the_dataclass_s_own() -> None:
    """`_build_item` sets a `SitemapURL`'s slots directly: every field, as `SitemapURL(...)`
    does, and the item stays frozen."""
    assert {field.name for field in dataclasses.fields(SitemapURL)} == set(
        sitemap_parser._URL_SLOTS
    )
    fields = {"loc": "https://a.example/", "lastmod": "2024-05-01", "priority": "0.5"}
    made = sitemap_parser._build_item(False, fields | {"changefreq": "Daily"})
    expected = SitemapURL("https://a.example/", dt.datetime(2024, 5, 1, tzinfo=UTC), "daily", 0.5)
    assert made == expected
    assert repr(made) == repr(expected)
    assert hash(made) == hash(expected)
    assert sitemap_parser._build_item(False, fields) == dataclasses.replace(
        expected, changefreq=None
    )
    assert isinstance(made, SitemapURL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.loc = "https://b.example/"  # type: ignore[misc]


@pytest.mark.parametrize("limit", [5, 64, 300])
def test_the_token_scanner_agrees_with_the_one_it_replaced(limit: int) -> None:
    """The gaps between `<` are measured one by one only when one may be too long."""
    rng = random.Random(limit)
    alphabet = [b"<", b"a", b"a" * 7, b"a" * 70, b">", b"<!--", b"-->", b"<![CDATA[", b"]]>"]
    for _ in range(300):
        data = b"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60)))
        size = rng.randint(1, 90)
        results = []
        for scanner in (TokenScanner(limit), ReferenceScanner(limit)):
            try:
                for chunk in pieces(data, size):
                    scanner.scan(chunk)
                results.append(("ok", scanner.kind, scanner.length))
            except SitemapError as exc:
                results.append(("refused", exc.reason, 0))
        assert results[0] == results[1], data


# Generated documents.

DOCTYPES = [""] * 30 + [
    "<!DOCTYPE urlset>\n",
    "<!DOCTYPE urlset>\n",
    '<!DOCTYPE urlset SYSTEM "http://x.example/s.dtd">\n',
    '<!DOCTYPE urlset PUBLIC "-//X//Y" "s.dtd">\n',
    '<!DOCTYPE urlset [<!ENTITY e "x">]>\n',
    "<!DOCTYPE urlset [ ]>\n",
]
MISC = ["", "", "\n  ", "<!-- c -->", "<?pi data?>", "\r\n\t", "<!---->"]
LOCS = [
    "https://a.example/p",
    "http://a.example/q?a=1&amp;b=2",
    "  https://a.example/space  ",
    "HTTPS://A.EXAMPLE/UPPER",
    "https://a.example/&#233;t&#xE9;",
    "<![CDATA[https://a.example/cdata?a<b]]>",
    "https://a.<!-- x -->example/split",
    "https://a.example/<b>bold</b>/tail",
    "/relative",
    "ftp://a.example/",
    "",
    "https://a.example/" + "x" * 2100,
    "https://a.example/caf\u00e9",
    "\n  https://a.example/lines\n",
    "https://a.example/&lt;&gt;&quot;&apos;",
]
LASTMODS = ["2024", "2024-05", "2024-05-01", " 2024-05-01T10:00Z ", "2024-05-01T10:00:00+02:00"]
LASTMODS += ["yesterday", "", "2024-05-01T10:00:00z", "0001-01-01T00:00:00+01:00"]
CHANGEFREQS = ["daily", " Weekly ", "NEVER", "sometimes", ""]
PRIORITIES = ["0.5", "1.0", "1", " 0.3 ", "2.0", "-0.1", "abc", ""]


def document(rng: random.Random) -> bytes:
    """A sitemap-like document: mostly valid, sometimes hostile or malformed."""
    root = rng.choice(["urlset"] * 8 + ["sitemapindex"] * 3 + ["rss"])
    entry_name = {"urlset": "url", "sitemapindex": "sitemap", "rss": "item"}[root]
    prefix = rng.choice(["", "", "", "sm:"])
    namespace = rng.choice([SITEMAP_NS, SITEMAP_NS, "urn:other", ""])
    declaration = f'xmlns{":" + prefix[:-1] if prefix else ""}="{namespace}"' if namespace else ""
    if prefix and not namespace:
        declaration = f'xmlns:{prefix[:-1]}="{SITEMAP_NS}"'
    encoding = rng.choice(["utf-8", "utf-8", "utf-8", "iso-8859-1", "utf-16"])
    parts = []
    if encoding != "utf-8" or rng.random() < 0.7:
        parts.append(f'<?xml version="1.0" encoding="{encoding}"?>\n')
    parts += [rng.choice(MISC), rng.choice(DOCTYPES), rng.choice(MISC)]
    parts.append(f"<{prefix}{root} {declaration} xmlns:image='urn:image' a='1'>")
    for _ in range(rng.randint(0, 12)):
        parts.append(rng.choice(MISC))
        if rng.random() < 0.1:
            parts.append(rng.choice(["<other>text</other>", "<loc>https://a.example/x</loc>"]))
        name = entry_name if rng.random() < 0.9 else "sitemap" if root == "urlset" else "url"
        parts.append(entry(rng, name, prefix, deep=rng.random() < 0.03))
    parts.append(f"</{prefix}{root}>")
    parts.append(rng.choice(MISC))
    text = "".join(parts)
    roll = rng.random()
    if roll < 0.05:
        text = text[: rng.randint(0, len(text))]
    elif roll < 0.08:
        text = text.replace("</loc>", "</lok>", 1)
    elif roll < 0.1:
        text += "<junk/>"
    elif roll < 0.12:
        text = text.replace("https://", "https://&nbsp;", 1)
    return text.encode(encoding)


def entry(rng: random.Random, name: str, prefix: str, *, deep: bool) -> str:
    """One `<url>` (or `<sitemap>`, ...): fields in any order, repeats, extensions."""
    fields = [f"<{prefix}loc>{rng.choice(LOCS)}</{prefix}loc>"] if rng.random() < 0.8 else []
    for _ in range(rng.randint(0, 6)):
        kind = rng.choice(["loc", "loc", "lastmod", "changefreq", "priority", "image", "other"])
        value = {
            "loc": LOCS,
            "lastmod": LASTMODS,
            "changefreq": CHANGEFREQS,
            "priority": PRIORITIES,
        }.get(kind)
        if value is not None:
            field_prefix = prefix if rng.random() < 0.9 else rng.choice(["", "image:"])
            if rng.random() < 0.1:
                fields.append(f"<{field_prefix}{kind}/>")
            else:
                fields.append(f"<{field_prefix}{kind}>{rng.choice(value)}</{field_prefix}{kind}>")
        elif kind == "image":
            fields.append(
                "<image:image><image:loc>https://a.example/i.png</image:loc></image:image>"
            )
        else:
            fields.append("<other x='1'>text<inner/>more</other>")
        fields.append(rng.choice(MISC))
    if deep:
        levels = rng.randint(MAX_DEPTH - 4, MAX_DEPTH)
        fields.insert(rng.randint(0, len(fields)), "<d>" * levels + "</d>" * levels)
    return f"<{prefix}{name}>{''.join(fields)}</{prefix}{name}>"


# The parser this module replaced: expat with Python callbacks for every tag and text node.

_NS_SEP = "\x1f"
_UNSEEN = ""
_ENTRY = "\x1f"


class ReferenceScanner(TokenScanner):
    """`TokenScanner` measuring every gap between two `<` (as before)."""

    def _gaps(self, region: bytes) -> None:
        parts = region.split(b"<")
        self._grow(len(parts[0]))
        if len(parts) == 1:
            return
        if max(map(len, parts[1:-1]), default=0) >= self.limit:
            self._refuse("text node or tag")
        self.length = 0
        self._grow(len(parts[-1]) + 1)


class ReferenceParser(SitemapParser):
    """The previous `SitemapParser`: the same front end (gzip, steps, size and token limits),
    each step parsed by expat with callbacks."""

    def __init__(self, *, max_entries: int = MAX_ENTRIES) -> None:
        super().__init__(max_entries=max_entries)
        self._scanner = ReferenceScanner(MAX_TOKEN_BYTES)
        self._reference = ReferenceHandler(max_entries)
        self._expat = expat.ParserCreate(namespace_separator=_NS_SEP)
        self._expat.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        self._expat.buffer_text = True
        self._expat.ordered_attributes = True
        self._expat.StartDoctypeDeclHandler = sitemap_parser._refuse_doctype
        self._expat.EntityDeclHandler = sitemap_parser._refuse_entity
        self._expat.ExternalEntityRefHandler = sitemap_parser._refuse_external
        self._expat.StartElementHandler = self._reference.start
        self._expat.EndElementHandler = self._reference.end
        self._expat.CharacterDataHandler = self._reference.text

    def _parse(self, xml: bytes, *, final: bool) -> list[SitemapItem]:
        if self.xml_bytes + len(xml) > MAX_UNCOMPRESSED_BYTES:
            raise sitemap_parser.SitemapTooLargeError(
                f"sitemap too large: more than {MAX_UNCOMPRESSED_BYTES // (1024 * 1024)} MB "
                "uncompressed"
            )
        self._scanner.scan(xml)
        self.xml_bytes += len(xml)
        sitemap_parser._feed(self._expat, xml, final=final)
        items, self._reference.pending = self._reference.pending, []
        return items


class ReferenceHandler:
    """The previous expat callbacks, as they were."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self.is_index = False
        self.entry = ""
        self.wanted: frozenset[str] = frozenset()
        self.entries = 0
        self.depth = 0
        self.in_entry = False
        self.fields: dict[str, str] = {}
        self.field: str | None = None
        self.value = ""
        self.pending: list[SitemapItem] = []
        self._fields_of: dict[str, str | None] = {}

    def start(self, name: str, _attributes: object) -> None:
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
            if kind is _UNSEEN:
                kind = self._field_of(name)
            if kind is _ENTRY:
                self.entries += 1
                if self.entries > self.max_entries:
                    raise TooManyURLsError(
                        f"too many URLs: a sitemap may list at most {self.max_entries:,} entries"
                    )
                self.in_entry, self.fields = True, {}
        elif depth == 1:
            local = name.rpartition(_NS_SEP)[2]
            if local not in sitemap_parser._ENTRY_OF_ROOT:
                raise MalformedSitemapError(
                    f"not a sitemap: the root element is <{local}>, not <urlset> or <sitemapindex>"
                )
            self.entry = sitemap_parser._ENTRY_OF_ROOT[local]
            self.is_index = local == "sitemapindex"
            self.wanted = sitemap_parser._FIELDS[self.entry]
        elif depth > MAX_DEPTH:
            raise NestingTooDeepError(
                f"nesting too deep: elements nested more than {MAX_DEPTH} levels deep "
                "(a sitemap needs four)"
            )

    def end(self, _name: str) -> None:
        depth = self.depth
        self.depth = depth - 1
        if depth == 3:
            field = self.field
            if field is not None:
                if field not in self.fields:
                    self.fields[field] = self.value
                self.field = None
        elif depth == 2 and self.in_entry:
            item = sitemap_parser._build_item(self.is_index, self.fields)
            if item is not None:
                self.pending.append(item)
            self.in_entry, self.fields = False, {}

    def text(self, data: str) -> None:
        if self.field is not None:
            value = self.value
            if len(value) < 4 * sitemap_parser.MAX_LOC_LENGTH:
                self.value = value + data

    def _field_of(self, name: str) -> str | None:
        local = name.rpartition(_NS_SEP)[2]
        field = local if local in self.wanted else _ENTRY if local == self.entry else None
        if len(self._fields_of) < 64:
            self._fields_of[name] = field
        return field
