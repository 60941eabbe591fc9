"""Page metadata from real HTML files."""

from __future__ import annotations

import pytest

from {{ cookiecutter.project_slug }}.pages.extract import (
    MAX_DESCRIPTION,
    MAX_TITLE,
    PageMetadata,
    extract_metadata,
)

from tests.localserver import FIXTURES

PAGES = FIXTURES / "pages"
BASE = "https://www.acme.example/shop/index.html"


def extract(name: str, content_type: str | None = "text/html; charset=utf-8") -> PageMetadata:
    return extract_metadata((PAGES / name).read_bytes(), base_url=BASE, content_type=content_type)


def test_full_page() -> None:
    assert extract("full.html") == PageMetadata(
        title="Acme Widgets & Gadgets | Home",
        description="Hand-made widgets since 1999.",
        canonical_url="https://www.acme.example/en/home?ref=canonical",
    )


def test_whitespace_is_normalised() -> None:
    assert extract("whitespace.html") == PageMetadata(
        title="Lots of space here",
        description="Line one. Line two.",
        canonical_url="https://example.com/spaced",
    )


def test_missing_tags_give_none() -> None:
    assert extract("missing.html") == PageMetadata()


def test_open_graph_fallbacks_and_base_href() -> None:
    assert extract("og-only.html") == PageMetadata(
        title="Only Open Graph",
        description="Described by Open Graph.",
        canonical_url="https://cdn.example.org/site/page.html",
    )


def test_lengths_are_capped() -> None:
    metadata = extract("long.html")
    assert metadata.title is not None
    assert metadata.description is not None
    assert len(metadata.title) <= MAX_TITLE
    assert len(metadata.description) <= MAX_DESCRIPTION
    assert metadata.title.startswith("Long title Long title")


def test_declared_charset_is_used() -> None:
    body = (
        b'<html><head><meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">'
        b'<title>Caf\xe9 M\xfcller</title><link rel="canonical" href="javascript:alert(1)">'
        b"</head></html>"
    )
    assert extract_metadata(body, base_url=BASE, content_type="text/html") == PageMetadata(
        title="Café Müller"
    )
    header_wins = extract_metadata(
        "<title>Ærø</title>".encode("cp1252"),
        base_url=BASE,
        content_type="text/html; charset=cp1252",
    )
    assert header_wins.title == "Ærø"


@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain", "image/png", "application/pdf"]
)
def test_non_html_gives_empty_metadata(content_type: str) -> None:
    assert extract("full.html", content_type) == PageMetadata()
    assert extract("data.json", content_type) == PageMetadata()


def test_xhtml_is_html() -> None:
    assert extract("full.html", "application/xhtml+xml").title == "Acme Widgets & Gadgets | Home"


def test_unknown_content_type_is_sniffed() -> None:
    assert extract("full.html", None).title == "Acme Widgets & Gadgets | Home"
    assert extract("data.json", None) == PageMetadata()


def test_garbage_does_not_raise() -> None:
    body = bytes(range(256)) * 50
    assert extract_metadata(body, base_url=BASE, content_type="text/html") == PageMetadata()
