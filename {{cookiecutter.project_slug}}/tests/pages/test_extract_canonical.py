"""How a canonical href is resolved: exactly as `urljoin` does, refused unless it gives a
usable http(s) URL (a faster resolver must keep these results)."""

from __future__ import annotations

import pytest

from {{ cookiecutter.project_slug }}.pages.extract import extract_metadata


def canonical(base_url: str, href: str) -> str | None:
    body = f'<head><link rel="canonical" href="{href}"></head>'.encode()
    return extract_metadata(body, base_url=base_url, content_type="text/html").canonical_url


@pytest.mark.parametrize(
    ("base_url", "href", "expected"),
    [
        # Another scheme: urljoin returns the href as written (an empty query stays).
        ("http://a.example/x", "https://b.example/p?", "https://b.example/p?"),
        ("http://a.example/x", "HTTPS://B.example/P", "HTTPS://B.example/P"),
        # The same scheme: urljoin rebuilds it (an empty query or parameter goes).
        ("https://a.example/x", "https://b.example/p?", "https://b.example/p"),
        ("https://a.example/x", "https://b.example/p;", "https://b.example/p"),
        ("https://a.example/x", "https://b.example/p", "https://b.example/p"),
        # Relative references.
        ("https://a.example/d/x", "../p", "https://a.example/p"),
        ("https://a.example/d/x", "//cdn.example/p", "https://cdn.example/p"),
        ("https://a.example/d/x", "https:p", "https://a.example/d/p"),
        ("http://a.example/d/x", "https:p", None),
        # A base without an http(s) scheme, or none at all.
        ("//a.example/x", "/p", None),
        ("mailto:someone@example.com", "p", None),
        ("", "https://b.example/p", "https://b.example/p"),
        ("", "/p", None),
        # Unparsable base or href, too long a result.
        ("http://[bad/x", "https://b.example/p", None),
        ("https://a.example/", "https://[::1/p", None),
        ("http://a.example/", "https://b.example/" + "p" * 2048, None),
    ],
)
def test_canonical_resolution(base_url: str, href: str, expected: str | None) -> None:
    assert canonical(base_url, href) == expected
