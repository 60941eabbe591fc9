"""Streaming sitemap parsing: fields, gzip, limits and hostile XML."""

from __future__ import annotations

import datetime as dt
import gzip
import time
import tracemalloc
from collections.abc import Iterator

import pytest

from {{ cookiecutter.project_slug }}.sitemaps.parser import (
    MAX_ENTRIES,
    ChildSitemap,
    MalformedSitemapError,
    SitemapItem,
    SitemapTooLargeError,
    SitemapURL,
    TooManyURLsError,
    UnsafeXMLError,
    parse_lastmod,
    parse_sitemap,
)

from tests.localserver import FIXTURES
from tests.sitemaps.conftest import gzip_stream, url_entries

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
            yield b"<!--" + b"x" * 1_000_000 + b"-->"

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
