"""The sitemap workload end to end: API, job, outbound client, parser, storage."""

from __future__ import annotations

import gzip
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from httpx import AsyncClient

from tests.localserver import LocalServer, Reply
from tests.sitemaps.conftest import HEADER, URLSET_CLOSE, gzip_stream, one_huge_token

API = "/api/v1/sitemaps"


async def run(client: AsyncClient, url: str) -> dict[str, Any]:
    """Start a sitemap job (it runs inline in tests) and return the finished job."""
    response = await client.post(API, json={"url": url})
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    job = (await client.get(f"/api/v1/jobs/{job_id}")).json()
    assert job["kind"] == "sitemap"
    return job  # type: ignore[no-any-return]


def urlset(origin: str, count: int, prefix: str = "page") -> bytes:
    """A urlset document with `count` page URLs."""
    entries = "".join(f"<url><loc>{origin}/{prefix}/{i}</loc></url>" for i in range(count))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>'
    ).encode()


async def test_index_with_gzip_children_is_stored_once(
    client: AsyncClient, site: LocalServer
) -> None:
    job = await run(client, site.url("/files/sitemaps/index.xml"))
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert result["sitemaps_fetched"] == 3  # the index and two distinct children
    assert result["urls_found"] == result["urls_stored"] > 0
    listed = (await client.get(f"{API}/{job['id']}/urls", params={"limit": 1000})).json()
    assert listed["total"] == result["urls_stored"]
    assert all(item["sitemap_url"].endswith(".xml.gz") for item in listed["items"])


async def test_rerunning_stores_no_duplicates(client: AsyncClient, site: LocalServer) -> None:
    site.content("/sitemap.xml", urlset(site.url(""), 120), "application/xml")
    first = await run(client, site.url("/sitemap.xml"))
    second = await run(client, site.url("/sitemap.xml"))
    assert first["result"]["urls_stored"] == 120
    assert second["status"] == "succeeded"
    assert second["result"]["urls_found"] == 120
    assert second["result"]["urls_stored"] == 0
    listed = (await client.get(f"{API}/{second['id']}/urls")).json()
    assert listed["total"] == 120  # the file now belongs to the latest job; rows not duplicated


async def test_gzip_detected_by_magic_bytes(client: AsyncClient, site: LocalServer) -> None:
    site.reply(
        "/plain-name.xml",
        Reply(body=gzip.compress(urlset(site.url(""), 5)), headers={"Content-Type": "text/xml"}),
    )
    job = await run(client, site.url("/plain-name.xml"))
    assert (job["status"], job["result"]["urls_stored"]) == ("succeeded", 5)


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [
        ("malformed.xml", "malformed"),
        ("bomb.xml", "unsafe"),
        ("xxe.xml", "unsafe"),
    ],
)
async def test_bad_documents_fail_the_job_with_a_reason(
    client: AsyncClient, site: LocalServer, fixture: str, reason: str
) -> None:
    job = await run(client, site.url(f"/files/sitemaps/{fixture}"))
    assert job["status"] == "failed"
    assert reason in job["error"].lower(), job["error"]
    assert (await client.get(f"{API}/{job['id']}/urls")).json()["total"] == 0


async def test_too_many_urls_in_one_file(client: AsyncClient, site: LocalServer) -> None:
    site.content("/huge.xml", urlset(site.url(""), 50_001), "application/xml")
    job = await run(client, site.url("/huge.xml"))
    assert job["status"] == "failed"
    assert "50,000" in job["error"] or "50000" in job["error"], job["error"]


async def test_unreachable_sitemap_fails_the_job(client: AsyncClient, site: LocalServer) -> None:
    job = await run(client, site.url("/missing.xml"))
    assert job["status"] == "failed"
    assert "404" in job["error"]


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/sitemap.xml", "http://169.254.169.254/latest/meta-data", "not a url"],
)
async def test_refused_urls_are_422(client: AsyncClient, url: str) -> None:
    response = await client.post(API, json={"url": url})
    assert response.status_code == 422
    assert (await client.get("/api/v1/jobs")).json()["total"] == 0


async def test_unknown_job_urls_is_404(client: AsyncClient) -> None:
    response = await client.get(f"{API}/00000000-0000-0000-0000-000000000000/urls")
    assert response.status_code == 404


async def test_the_issues_gzip_bomb_fails_the_job_unparsed(
    client: AsyncClient, site: LocalServer
) -> None:
    """46 KB on the wire, one 45 MB comment inflated: refused at the token limit."""
    bomb = b"".join(gzip_stream(one_huge_token(b"<!--", 45 * 1024 * 1024, b"-->")))
    assert len(bomb) < 64 * 1024
    site.reply("/bomb.xml.gz", Reply(body=bomb, headers={"Content-Type": "application/gzip"}))
    job = await run(client, site.url("/bomb.xml.gz"))
    assert job["status"] == "failed"
    assert job["error"].startswith("token too large: a comment of more than 65,536 bytes")


IMAGE_URLSET_OPEN = (
    b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
    b'xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">\n'
)


def image_sitemap(origin: str, count: int, caption: int) -> Iterator[bytes]:
    """A urlset of `count` pages with an image and a `caption`-byte caption each, made lazily."""
    text = b"c" * caption
    yield HEADER + IMAGE_URLSET_OPEN
    for start in range(0, count, 50):
        yield b"".join(
            b"<url><loc>%s/p/%d</loc><image:image><image:loc>%s/i/%d.jpg</image:loc>"
            b"<image:caption>%s</image:caption></image:image></url>\n"
            % (origin.encode(), number, origin.encode(), number, text)
            for number in range(start, min(start + 50, count))
        )
    yield URLSET_CLOSE


async def test_a_48_mb_sitemap_is_stored_with_bounded_memory(
    client: AsyncClient, site: LocalServer
) -> None:
    """Streamed from the network through the parser into the database: the job's peak of Python
    memory, the local server's included, is a few MB (2.7 MB measured), not the document's 49 MB."""
    count, caption = 48_000, 900
    size = sum(len(piece) for piece in image_sitemap(site.url(""), count, caption))
    assert 45 * 1024 * 1024 < size < 50 * 1024 * 1024
    site.reply(
        "/large.xml",
        Reply(
            stream=lambda: image_sitemap(site.url(""), count, caption),
            headers={"Content-Type": "application/xml"},
        ),
    )
    tracemalloc.start()
    try:
        job = await run(client, site.url("/large.xml"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert job["status"] == "succeeded", job
    assert job["result"]["urls_stored"] == count
    assert peak < 8 * 1024 * 1024, f"peak {peak:,} bytes for a {size:,}-byte sitemap"
