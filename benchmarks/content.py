"""Deterministic test content: sitemaps of any size and realistic HTML pages of tens of KB."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

WORDS = tuple(
    [
        "service",
        "catalogue",
        "product",
        "delivery",
        "account",
        "support",
        "garden",
        "kitchen",
        "travel",
        "review",
        "price",
        "offer",
        "report",
        "season",
        "market",
        "design",
        "quality",
        "customer",
        "order",
        "history",
        "family",
        "weekend",
        "city",
        "guide",
        "local",
        "fresh",
        "modern",
        "classic",
        "studio",
        "update",
        "story",
        "photo",
        "team",
        "value",
    ]
)
EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def _urlset(entries: list[tuple[str, dt.datetime]]) -> str:
    body = "".join(
        f"<url><loc>{loc}</loc><lastmod>{lastmod.isoformat()}</lastmod>"
        "<changefreq>weekly</changefreq><priority>0.5</priority></url>\n"
        for loc, lastmod in entries
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n{body}</urlset>\n'
    )


def entries(prefix: str, count: int) -> list[tuple[str, dt.datetime]]:
    """`count` (loc, lastmod) pairs of the shop's pages, their paths under `prefix`."""
    return [
        (
            f"https://shop.example.com/{prefix}/{WORDS[i % len(WORDS)]}/item-{i:07d}.html",
            EPOCH + dt.timedelta(minutes=i),
        )
        for i in range(count)
    ]


def write_sitemaps(
    site: Path, *, origin: str, urls: int, parts: int
) -> list[tuple[str, dt.datetime]]:
    """Write `sitemap-single.xml` (`urls` URLs) and `sitemap-index.xml` (`parts` x `urls`).

    Returns the single sitemap's (loc, lastmod) pairs: the rows COPY loads.
    """
    single = entries("single", urls)
    (site / "sitemap-single.xml").write_text(_urlset(single))
    children = []
    for part in range(parts):
        name = f"sitemap-part-{part}.xml"
        (site / name).write_text(_urlset(entries(f"part{part}", urls)))
        children.append(f"<sitemap><loc>{origin}/{name}</loc></sitemap>")
    (site / "sitemap-index.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
        + "\n".join(children)
        + "\n</sitemapindex>\n"
    )
    return single


def _paragraph(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def page(index: int) -> str:
    """A product page of roughly 30-60 KB: a full head, navigation, article, inline data."""
    rng = random.Random(index)  # noqa: S311 - content, not secrets
    title = f"{_paragraph(rng, 6)[:-1]} | Shop {index}"
    links = "".join(
        f'<li><a href="/category/{rng.choice(WORDS)}/{n}">{rng.choice(WORDS).title()}</a></li>'
        for n in range(rng.randint(80, 160))
    )
    article = "".join(
        f"<h2>{_paragraph(rng, 5)}</h2><p>{_paragraph(rng, rng.randint(60, 140))}</p>"
        for _ in range(rng.randint(15, 30))
    )
    data = ",".join(f'{{"sku":{n},"price":{rng.randint(1, 999)}}}' for n in range(200))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title>"
        f'<meta name="description" content="{_paragraph(rng, 25)}">'
        f'<meta property="og:title" content="{title}">'
        f'<meta property="og:description" content="{_paragraph(rng, 20)}">'
        f'<link rel="canonical" href="https://shop.example.com/p/{index}">'
        + "".join(f'<link rel="stylesheet" href="/static/css/{n}.css">' for n in range(12))
        + "".join(f'<script src="/static/js/{n}.js" defer></script>' for n in range(12))
        + f"</head><body><header><nav><ul>{links}</ul></nav></header>"
        f"<main><article>{article}</article></main>"
        f'<script type="application/json" id="catalogue">[{data}]</script>'
        "<footer><p>Shop footer</p></footer></body></html>\n"
    )


def write_pages(site: Path, *, count: int) -> list[str]:
    """Write `count` pages under `site/pages/`; return their paths relative to `site`."""
    (site / "pages").mkdir(exist_ok=True)
    names = []
    for index in range(count):
        name = f"pages/p{index:04d}.html"
        (site / name).write_text(page(index))
        names.append(name)
    return names
