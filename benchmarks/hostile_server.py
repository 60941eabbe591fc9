"""A hostile sitemap server on 127.0.0.1 for `make bench` (stdlib only, one process).

    python -m benchmarks.hostile_server PORT [--bomb-bytes N] [--bomb-children N]
        [--trickle-seconds S] [--trickle-tick T] [--big-urls N] [--big-entry-bytes N]
        [--big-gzip]

Everything is built in memory before the port opens, so an open port means ready:

- `/bomb.xml.gz`: a gzip sitemap that inflates to one XML comment of `--bomb-bytes` (45 MiB by
  default: about 46 KB on the wire), then one `<url>`; `/bomb-child-<i>.xml.gz` is the same body.
- `/bomb-index.xml`: a sitemap index listing `--bomb-children` such children.
- `/trickle.xml`: a small valid sitemap sent a few bytes per `--trickle-tick` so that the whole
  response takes `--trickle-seconds`.
- `/big/<i>.xml`: a sitemap of `--big-urls` entries of `--big-entry-bytes` each (and with
  `--big-gzip`, `/big/<i>.xml.gz`: the same, gzip-compressed); `<i>` gives each job its own URL,
  so every job stores its own sitemap file.
"""

from __future__ import annotations

import argparse
import gzip
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
URLSET_OPEN = '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
INDEX_OPEN = '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
LASTMOD = "<lastmod>2024-01-01T00:00:00+00:00</lastmod>"
BIG_PATH = re.compile(r"/big/\d+\.xml(\.gz)?")
BOMB_CHILD_PATH = re.compile(r"/bomb-child-\d+\.xml\.gz")


def bomb(comment_bytes: int, origin: str) -> bytes:
    """A gzip sitemap whose XML is one comment of `comment_bytes`, then one page URL."""
    xml = (
        f"{XML_HEAD}{URLSET_OPEN}<!--".encode()
        + b"a" * comment_bytes
        + f"-->\n<url><loc>{origin}/after-the-comment</loc></url>\n</urlset>\n".encode()
    )
    return gzip.compress(xml, compresslevel=9, mtime=0)


def bomb_index(children: int, origin: str) -> bytes:
    """A sitemap index listing `children` bomb sitemaps, each at its own URL."""
    entries = "".join(
        f"<sitemap><loc>{origin}/bomb-child-{i}.xml.gz</loc></sitemap>\n" for i in range(children)
    )
    return f"{XML_HEAD}{INDEX_OPEN}{entries}</sitemapindex>\n".encode()


def trickle_document(origin: str, length: int) -> bytes:
    """A valid one-URL sitemap padded with whitespace to at least `length` bytes."""
    head = f"{XML_HEAD}{URLSET_OPEN}<url><loc>{origin}/trickled</loc></url>\n"
    tail = "</urlset>\n"
    padding = max(0, length - len(head) - len(tail))
    return (head + " " * padding + tail).encode()


def big_sitemap(urls: int, entry_bytes: int) -> bytes:
    """A `<urlset>` of `urls` entries, each `<url>` element padded to `entry_bytes` bytes."""
    markup = len(f"<url><loc></loc>{LASTMOD}</url>\n")
    loc_length = max(40, entry_bytes - markup)
    filler = "-product-description"
    parts = [XML_HEAD, URLSET_OPEN]
    for i in range(urls):
        prefix = f"https://shop.example.com/catalogue/{i:07d}/item"
        room = loc_length - len(prefix) - len(".html")
        slug = (filler * (room // len(filler) + 1))[: max(0, room)]
        parts.append(f"<url><loc>{prefix}{slug}.html</loc>{LASTMOD}</url>\n")
    parts.append("</urlset>\n")
    return "".join(parts).encode()


@dataclass
class Content:
    """Every body the server answers with, built before it listens."""

    bomb: bytes
    bomb_index: bytes
    trickle: bytes
    trickle_chunk: int
    trickle_tick: float
    big: bytes
    big_gzip: bytes | None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    content: Content

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet."""

    def do_GET(self) -> None:
        """Answer one of the hostile paths, or 404."""
        path = self.path.split("?", 1)[0]
        try:
            if path == "/bomb.xml.gz" or BOMB_CHILD_PATH.fullmatch(path):
                self._send(self.content.bomb, "application/gzip")
            elif path == "/bomb-index.xml":
                self._send(self.content.bomb_index, "application/xml")
            elif path == "/trickle.xml":
                self._trickle()
            elif (match := BIG_PATH.fullmatch(path)) and not match.group(1):
                self._send(self.content.big, "application/xml")
            elif match and self.content.big_gzip is not None:
                self._send(self.content.big_gzip, "application/gzip")
            else:
                self._send(b"not found\n", "text/plain", status=404)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the service gave up on us: expected, not an error

    def _headers(self, status: int, content_type: str, length: int) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def _send(self, body: bytes, content_type: str, status: int = 200) -> None:
        self._headers(status, content_type, len(body))
        self.wfile.write(body)

    def _trickle(self) -> None:
        body = self.content.trickle
        self._headers(200, "application/xml", len(body))
        self.close_connection = True
        for start in range(0, len(body), self.content.trickle_chunk):
            self.wfile.write(body[start : start + self.content.trickle_chunk])
            self.wfile.flush()
            time.sleep(self.content.trickle_tick)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


def main(argv: Sequence[str] | None = None) -> None:
    """Build the bodies, listen on 127.0.0.1:PORT, serve until killed."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hostile_server")
    parser.add_argument("port", type=int)
    parser.add_argument("--bomb-bytes", type=int, default=45 * 1024 * 1024)
    parser.add_argument("--bomb-children", type=int, default=3)
    parser.add_argument("--trickle-seconds", type=float, default=60.0)
    parser.add_argument("--trickle-tick", type=float, default=1.0)
    parser.add_argument("--big-urls", type=int, default=50_000)
    parser.add_argument("--big-entry-bytes", type=int, default=950)
    parser.add_argument("--big-gzip", action="store_true", help="also serve /big/<i>.xml.gz")
    args = parser.parse_args(argv)
    origin = f"http://127.0.0.1:{args.port}"
    ticks = max(1, math.ceil(args.trickle_seconds / args.trickle_tick))
    trickle = trickle_document(origin, length=4 * ticks)  # about 4 bytes a tick when it fits
    big = big_sitemap(args.big_urls, args.big_entry_bytes)
    _Handler.content = Content(
        bomb=bomb(args.bomb_bytes, origin),
        bomb_index=bomb_index(args.bomb_children, origin),
        trickle=trickle,
        trickle_chunk=math.ceil(len(trickle) / ticks),
        trickle_tick=args.trickle_tick,
        big=big,
        big_gzip=gzip.compress(big, compresslevel=6, mtime=0) if args.big_gzip else None,
    )
    _Server(("127.0.0.1", args.port), _Handler).serve_forever()


if __name__ == "__main__":
    main()
