"""Fixtures of the sitemap tests: generated large sitemaps and a local server."""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import pytest

from tests.localserver import LocalServer

HEADER = b'<?xml version="1.0" encoding="UTF-8"?>\n'
URLSET_OPEN = b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
URLSET_CLOSE = b"</urlset>\n"


def url_entries(count: int, per_chunk: int = 500) -> Iterator[bytes]:
    """A urlset with `count` entries, produced lazily in chunks of `per_chunk` entries."""
    yield HEADER + URLSET_OPEN
    for start in range(0, count, per_chunk):
        yield b"".join(
            b"  <url><loc>https://www.example.com/products/item-%d</loc>"
            b"<lastmod>2024-05-01</lastmod><priority>0.5</priority></url>\n" % n
            for n in range(start, min(start + per_chunk, count))
        )
    yield URLSET_CLOSE


def one_huge_token(opener: bytes, size: int, closer: bytes) -> Iterator[bytes]:
    """A urlset whose only content is `opener`, `size` bytes of `0`, `closer`, made lazily."""
    yield HEADER + URLSET_OPEN + opener
    piece = b"0" * (1024 * 1024)
    for _ in range(size // len(piece)):
        yield piece
    yield closer + URLSET_CLOSE


def gzip_stream(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Gzip-compress `chunks` lazily."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    for chunk in chunks:
        yield compressor.compress(chunk)
    yield compressor.flush()


@pytest.fixture(scope="session")
def oversized_gzip() -> bytes:
    """A small gzip file that inflates past 50 MB (comments of zeros inside a urlset)."""
    padding = (b"<!--" + b"0" * (32 * 1024) + b"-->\n" for _ in range(52 * 32))
    return b"".join(gzip_stream(iter([HEADER + URLSET_OPEN, *padding, URLSET_CLOSE])))


@pytest.fixture
def server() -> Iterator[LocalServer]:
    """A local HTTP server on 127.0.0.1 serving tests/fixtures and scripted routes."""
    with LocalServer().running() as running:
        yield running
