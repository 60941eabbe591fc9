"""Streaming sitemap parsing: fields, gzip, limits and hostile XML."""

from __future__ import annotations

import datetime as dt
import gzip
import sys
import time
import tracemalloc
from collections.abc import Iterator

import pytest

from {{ cookiecutter.project_slug }}.sitemaps.parser import (
    INFLATE_STEP,
    MAX_DEPTH,
    MAX_ENTRIES,
    MAX_TOKEN_BYTES,
    ChildSitemap,
    MalformedSitemapError,
    NestingTooDeepError,
    SitemapItem,
    SitemapParser,
    SitemapTooLargeError,
    SitemapURL,
    TokenScanner,
    TokenTooLargeError,
    TooManyURLsError,
    UnsafeXMLError,
    parse_lastmod,
    parse_sitemap,
)

from tests.localserver import FIXTURES
from tests.sitemaps.conftest import HEADER, URLSET_OPEN, gzip_stream, one_huge_token, url_entries

SITEMAPS = FIXTURES / "sitemaps"
UTC = dt.UTC


def read(name: str) -> bytes:
    return (SITEMAPS / name).read_bytes()


def pieces(data: bytes, size: int) -> Iterator[bytes]:
    """`data` in pieces of `size` bytes (splits tags, entities and gzip headers)."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def parse_all(data: bytes, size: int = 4096) -> list[SitemapItem]:
    return list(parse_sitemap(pieces(data, size)))


PAGES_A = [
    SitemapURL(
        "https://shop.example.com/",
        dt.datetime(2024, 5, 1, tzinfo=UTC),
        "daily",
        1.0,
    ),
    SitemapURL(
        "https://shop.example.com/products?id=1&color=red",
        dt.datetime(2024, 5, 1, 10, tzinfo=UTC),
        None,
        None,
    ),
    SitemapURL("https://shop.example.com/caf%C3%A9", dt.datetime(2023, 1, 1, tzinfo=UTC)),
]


def test_urlset_fields() -> None:
    """Image extension locs, entries without loc and relative locs are left out."""
    assert parse_all(read("pages-a.xml")) == PAGES_A


def test_urlset_without_namespace() -> None:
    assert parse_all(read("pages-b.xml")) == [
        SitemapURL("https://blog.example.com/one"),
        SitemapURL("https://blog.example.com/two"),
    ]


def test_sitemap_index() -> None:
    items = parse_all(read("index.xml"))
    assert items[:2] == [
        ChildSitemap(
            "http://SERVER/files/sitemaps/pages-a.xml.gz",
            dt.datetime(2024, 5, 1, 8, tzinfo=UTC),
        ),
        ChildSitemap("http://SERVER/files/sitemaps/pages-b.xml.gz"),
    ]
    assert len(items) == 3


@pytest.mark.parametrize("size", [1, 7, 100_000])
def test_gzip_is_detected_and_inflated(size: int) -> None:
    assert parse_all(gzip.compress(read("pages-a.xml")), size) == PAGES_A


def test_one_byte_chunks_of_plain_xml() -> None:
    assert parse_all(read("pages-a.xml"), 1) == PAGES_A


def test_items_are_yielded_while_streaming() -> None:
    """The first item arrives before the rest of the document has been read."""
    consumed = 0

    def counted() -> Iterator[bytes]:
        nonlocal consumed
        for chunk in url_entries(10_000):
            consumed += 1
            yield chunk

    items = parse_sitemap(counted())
    next(items)
    assert consumed <= 2


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024", dt.datetime(2024, 1, 1, tzinfo=UTC)),
        ("2024-05", dt.datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-01T10:30:00+02:00", dt.datetime(2024, 5, 1, 8, 30, tzinfo=UTC)),
        ("2024-05-01T10:30Z", dt.datetime(2024, 5, 1, 10, 30, tzinfo=UTC)),
        ("yesterday", None),
        ("0001-01-01T00:00:00+01:00", None),  # before year 1 in UTC: out of range, not a crash
        ("9999-12-31T23:00:00-05:00", None),
        ("", None),
        (None, None),
    ],
)
def test_lastmod_formats(value: str | None, expected: dt.datetime | None) -> None:
    assert parse_lastmod(value) == expected


def test_malformed_xml() -> None:
    with pytest.raises(MalformedSitemapError) as caught:
        parse_all(read("malformed.xml"))
    assert caught.value.reason.startswith("malformed XML at line 5")


def test_not_a_sitemap() -> None:
    with pytest.raises(MalformedSitemapError) as caught:
        parse_all(read("feed.xml"))
    assert "root element is <rss>" in caught.value.reason


@pytest.mark.parametrize("data", [b"", b"   \n", b"<urlset><url><loc>https://a.example/"])
def test_empty_or_truncated_documents(data: bytes) -> None:
    with pytest.raises(MalformedSitemapError):
        parse_all(data)


def test_truncated_or_corrupt_gzip() -> None:
    data = gzip.compress(read("pages-a.xml"))
    with pytest.raises(MalformedSitemapError, match="truncated"):
        parse_all(data[: len(data) // 2])
    with pytest.raises(MalformedSitemapError, match="malformed gzip"):
        parse_all(data[:10] + b"\x00garbage" * 20)


def test_billion_laughs_is_refused_quickly() -> None:
    started = time.perf_counter()
    with pytest.raises(UnsafeXMLError) as caught:
        parse_all(read("bomb.xml"))
    assert caught.value.reason.startswith("unsafe XML:")
    assert time.perf_counter() - started < 1.0


def test_external_entity_is_refused() -> None:
    with pytest.raises(UnsafeXMLError) as caught:
        parse_all(read("xxe.xml"))
    assert "root:" not in str(caught.value)  # nothing of /etc/passwd


def test_external_dtd_is_refused() -> None:
    with pytest.raises(UnsafeXMLError, match="DOCTYPE"):
        parse_all(read("external-dtd.xml"))


def test_undeclared_entity_is_malformed() -> None:
    data = b"<urlset><url><loc>https://a.example/&nbsp;</loc></url></urlset>"
    with pytest.raises(MalformedSitemapError, match="undefined entity"):
        parse_all(data)


def test_fifty_thousand_urls_are_accepted() -> None:
    assert sum(1 for _ in parse_sitemap(url_entries(MAX_ENTRIES))) == MAX_ENTRIES


def test_fifty_thousand_and_one_urls_are_refused() -> None:
    with pytest.raises(TooManyURLsError) as caught:
        for _ in parse_sitemap(gzip_stream(url_entries(MAX_ENTRIES + 1))):
            pass
    assert caught.value.reason == "too many URLs: a sitemap may list at most 50,000 entries"


def test_gzip_past_fifty_megabytes_is_refused(oversized_gzip: bytes) -> None:
    assert len(oversized_gzip) < 1024 * 1024  # small on the wire
    with pytest.raises(SitemapTooLargeError, match="more than 50 MB"):
        for _ in parse_sitemap(pieces(oversized_gzip, 64 * 1024)):
            pass


def test_plain_stream_past_fifty_megabytes_is_refused() -> None:
    def endless() -> Iterator[bytes]:
        yield b"<urlset>"
        while True:
            yield b"<!--" + b"x" * 32_000 + b"-->"

    with pytest.raises(SitemapTooLargeError):
        for _ in parse_sitemap(endless()):
            pass


def test_memory_stays_bounded() -> None:
    """Parsing 50,000 URLs (about 6 MB, gzip-compressed) peaks far below the document's size.

    The peak covers the test's own chunk generator and compressor too; the parser holds one
    inflated step (64 KB) and the items completed in it.
    """
    total = sum(len(chunk) for chunk in url_entries(MAX_ENTRIES))
    tracemalloc.start()
    try:
        count = sum(1 for _ in parse_sitemap(gzip_stream(url_entries(MAX_ENTRIES))))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == MAX_ENTRIES
    assert total > 5_000_000
    assert peak < min(total / 5, 2 * 1024 * 1024), f"peak {peak} bytes for {total} bytes"


def peak_while_parsing(chunks: Iterator[bytes]) -> tuple[list[SitemapItem], int]:
    """The items of a document and the peak of Python memory while parsing it."""
    tracemalloc.start()
    try:
        items = list(parse_sitemap(chunks))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return items, peak


def repeated(head: bytes, piece: bytes, count: int, tail: bytes) -> Iterator[bytes]:
    """`head`, `piece` `count` times, `tail`, made lazily in chunks of 1,000 pieces."""
    yield head
    for _ in range(count // 1000):
        yield piece * 1000
    yield tail


def test_memory_stays_bounded_inside_one_huge_entry() -> None:
    """An entry still open at the end of a step keeps only its open elements: 10 MB of images
    in one `<url>` peak below 2 MB, as do its fields and text between elements."""
    image = b"<image:image><image:loc>https://example.com/i.png</image:loc></image:image>"
    head = HEADER + URLSET_OPEN[:-2] + b' xmlns:image="urn:image"><url>'
    items, peak = peak_while_parsing(
        repeated(head + b"<loc>https://example.com/</loc>", image, 140_000, b"</url></urlset>")
    )
    assert items == [SitemapURL("https://example.com/")]
    assert peak < 2 * 1024 * 1024, peak
    items, peak = peak_while_parsing(  # in a field: its first 8,192 characters are kept
        repeated(
            head + b"<loc>https://example.com/",
            b"<b/>" + b"x" * 60,
            160_000,
            b"</loc></url></urlset>",
        )
    )
    assert items == []
    assert peak < 2 * 1024 * 1024, peak


def test_memory_stays_bounded_for_text_split_by_comments() -> None:
    """Text that comments or CDATA sections split is one text node to the tree builder: the
    builder's pending text is flushed into the tree after every step, and dropped there."""
    for piece in (b"t" * 60 + b"<!---->", b"<![CDATA[" + b"t" * 60 + b"]]>"):
        for head, tail in (
            (URLSET_OPEN + b"<url><loc>https://example.com/", b"</loc></url></urlset>"),
            (URLSET_OPEN, b"<url><loc>https://example.com/</loc></url></urlset>"),
        ):
            _, peak = peak_while_parsing(repeated(head, piece, 40_000, tail))
            assert peak < 2 * 1024 * 1024, (piece[:12], head[-5:], peak)


def test_python_runs_a_few_calls_per_entry() -> None:
    """ElementTree's C parser builds the tree; Python reads an entry in one go: two calls per
    entry (the item and its lastmod), where expat's callbacks made about 15, one per tag and
    text node."""
    chunks = list(url_entries(5_000))
    parser = SitemapParser()
    calls = 0

    def count(_frame: object, event: str, _arg: object) -> None:
        nonlocal calls
        calls += event == "call"

    sys.setprofile(count)
    try:
        entries = feed_all(parser, iter(chunks))
    finally:
        sys.setprofile(None)
    assert entries == 5_000
    assert calls < 2.2 * 5_000, calls


def feed_all(parser: SitemapParser, chunks: Iterator[bytes]) -> int:
    """Feed `chunks` through `parser` to the end; the number of entries."""
    count = 0
    for chunk in chunks:
        count += sum(len(items) for items in parser.feed(chunk))
    return count + sum(len(items) for items in parser.close())


@pytest.mark.parametrize(
    ("opener", "closer", "kind"),
    [
        (b"<!--", b"-->", "comment"),
        (b"<url><loc>https://example.com/", b"</loc></url>", "text node or tag"),
        (b"<![CDATA[", b"]]>", "CDATA section"),
        (b"<?pi ", b"?>", "processing instruction"),
        (b'<url x="', b'"/>', "text node or tag"),
    ],
)
def test_a_gzip_bomb_of_one_huge_token_is_refused_without_parsing_it(
    opener: bytes, closer: bytes, kind: str
) -> None:
    """The issue's bomb: a small gzip file that inflates to one huge token, fed in 64 KB slices.

    Linear, shown without timing: the XML handed to expat before the refusal is the same for a
    token of 4 MB and one twice as large, one token limit and one inflate step at most.
    """
    handed: list[int] = []
    for size in (4 * 1024 * 1024, 8 * 1024 * 1024):
        bomb = b"".join(gzip_stream(one_huge_token(opener, size, closer)))
        assert len(bomb) < size / 500  # small on the wire
        parser = SitemapParser()
        with pytest.raises(TokenTooLargeError) as caught:
            feed_all(parser, pieces(bomb, 64 * 1024))
        assert caught.value.reason.startswith(f"token too large: a {kind} of more than 65,536")
        handed.append(parser.xml_bytes)
    assert handed[0] == handed[1] <= MAX_TOKEN_BYTES + INFLATE_STEP


def test_the_token_limit_holds_across_every_chunk_boundary() -> None:
    """Each kind of token split at every position: refused one byte past the limit, not before."""
    limit = 64
    tokens = {
        "comment": (b"<!--", b"-->"),
        "CDATA section": (b"<![CDATA[", b"]]>"),
        "processing instruction": (b"<?p ", b"?>"),
        "declaration": (b"<!DOCTYPE a '", b"'>"),
        "subset": (b"<!DOCTYPE a [", b"]>"),
        "text": (b"</b>", b"<c/>"),
    }
    for name, (opener, closer) in tokens.items():
        for size in (1, 2, 3, 5, 8, 13, limit):
            filler = limit - len(opener) - len(closer)
            if name == "text":  # from the `<` of `</b>` up to the `<` of `<c/>`
                filler = limit - len(opener)
            fits = b"<a>" + opener + b"x" * filler + closer + b"</a>"
            scan(fits, size, limit)
            with pytest.raises(TokenTooLargeError):
                scan(fits.replace(b"x", b"xx", 1), size, limit)


def scan(data: bytes, size: int, limit: int) -> None:
    scanner = TokenScanner(limit)
    for chunk in pieces(data, size):
        scanner.scan(chunk)


def test_markup_inside_a_comment_does_not_hide_its_length() -> None:
    """`<` and `>` inside a comment split nothing: the comment is one token."""
    with pytest.raises(TokenTooLargeError, match="comment"):
        scan(b"<a><!--" + b"<b>" * 40 + b"--></a>", 7, 100)
    scan(b"<a><!--" + b"<b>" * 30 + b"--></a>", 7, 100)


def test_long_but_legal_tokens_are_accepted() -> None:
    """A 60 KB comment and a 30 KB caption pass; sitemaps with them still parse."""
    document = (
        HEADER
        + URLSET_OPEN
        + b"<!--"
        + b"c" * 60_000
        + b"--><url><loc>https://example.com/a</loc><caption>"
        + b"t" * 30_000
        + b"</caption></url></urlset>"
    )
    assert parse_all(document, 1000) == [SitemapURL("https://example.com/a")]


def test_huge_text_node_in_plain_xml_is_refused_early() -> None:
    """Without gzip too: what reaches expat is bounded by the limit, not by the document."""
    parser = SitemapParser()
    with pytest.raises(TokenTooLargeError, match="text node"):
        feed_all(parser, one_huge_token(b"<url><loc>", 8 * 1024 * 1024, b"</loc></url>"))
    assert parser.xml_bytes <= MAX_TOKEN_BYTES + INFLATE_STEP


def test_parser_steps_are_bounded() -> None:
    """One feed of 1 MB of gzip is parsed in steps of at most 64 KB of XML each."""
    data = b"".join(gzip_stream(url_entries(20_000)))
    parser = SitemapParser()
    seen = 0
    steps = 0
    for items in parser.feed(data):
        steps += 1
        seen += len(items)
        assert len(items) <= INFLATE_STEP // 60  # an entry is more than 60 bytes of XML
    for items in parser.close():
        seen += len(items)
    assert seen == 20_000
    assert steps >= parser.xml_bytes // INFLATE_STEP


def test_deep_nesting_is_refused_at_the_limit() -> None:
    """Ten million open elements held 1.2 GB in expat before the depth limit; now the first
    step that goes past `MAX_DEPTH` levels is refused, whatever follows."""

    def nested(levels: int) -> Iterator[bytes]:
        yield HEADER + URLSET_OPEN + b"<url>"
        for _ in range(levels // 100_000):
            yield b"<a>" * 100_000

    parser = SitemapParser()
    with pytest.raises(NestingTooDeepError, match=f"more than {MAX_DEPTH} levels"):
        feed_all(parser, nested(10_000_000))
    assert parser.xml_bytes <= 2 * INFLATE_STEP  # the head, then the first step of `<a>`s


def test_entries_nested_to_the_limit_are_accepted() -> None:
    """Extensions nest below an entry (an image's `<image:loc>` is at depth four)."""
    inner = b"<a>" * (MAX_DEPTH - 3) + b"</a>" * (MAX_DEPTH - 3)
    document = URLSET_OPEN + b"<url><loc>https://example.com/</loc>" + inner + b"</url></urlset>"
    assert parse_all(document) == [SitemapURL("https://example.com/")]
