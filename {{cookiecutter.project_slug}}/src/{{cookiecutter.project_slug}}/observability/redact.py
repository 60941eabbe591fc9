"""Keep secrets out of logs and error reports.

`Redactor` replaces the values of the secret settings (database passwords, API keys, tokens, the
Sentry DSN) wherever they appear, the password of any URL (`scheme://user:***@host`) and the
value of credential headers (`Authorization`, `X-API-Key`, `Cookie`) or keys (`password`,
`token`, ...). Logs (`logs.py`) and Sentry events (`errors.py`) both go through it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import SecretStr

from {{ cookiecutter.project_slug }}.settings import Settings

MASK = "***"
MIN_SECRET_LENGTH = 4
"""Shorter values are not searched for (a two-letter password would mask every such pair)."""
MAX_DEPTH = 12
URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@")
CREDENTIAL = re.compile(
    r"(?P<head>\b(?:proxy-)?authorization|\bx-api-key|\bcookie|\bset-cookie)"
    r"(?P<sep>[\"']?\s*[:=]\s*[\"']?)(?P<scheme>(?:bearer|basic|token)\s+)?[^\s\"',;}]+",
    re.IGNORECASE,
)
SECRET_KEYS = re.compile(
    r"(password|passwd|secret|token|api[_-]?key|authorization|cookie|dsn|credentials?)$",
    re.IGNORECASE,
)
"""Mapping keys whose values are masked whatever they hold."""
CREDENTIAL_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "cookie", "set-cookie"}
)


def _names_a_secret(key: object) -> bool:
    """Whether a mapping key, or the name of a `(name, value)` header pair, names a secret."""
    if not isinstance(key, str | bytes):
        return False
    name = key.decode("latin-1") if isinstance(key, bytes) else key
    if name.startswith(("b'", 'b"')):  # the repr of a bytes header name (`b'cookie'`)
        name = name[1:]
    name = name.strip("'\"").lower()
    return name in CREDENTIAL_HEADERS or bool(SECRET_KEYS.search(name))


def _url_parts(value: str) -> Iterator[str]:
    """The password of a URL (or, without one, a long user name: a Sentry DSN's key)."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return
    if parts.password:
        yield parts.password
        yield unquote(parts.password)
    elif parts.username and len(parts.username) >= 16:
        yield parts.username


def secret_values(settings: Settings) -> set[str]:
    """Every secret the settings hold, and the secret parts of the URLs among them."""
    found: set[str] = set()
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            if isinstance(item, SecretStr):
                secret = item.get_secret_value()
                found.add(secret)
                found.update(_url_parts(secret))
    for migrations in (False, True):
        password = settings.get_db_url(migrations=migrations).password
        if password:
            found.add(password)
    return {secret for secret in found if len(secret) >= MIN_SECRET_LENGTH}


class Redactor:
    """Masks known secret values, URL passwords and credential headers in text and structures."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first: a whole URL is masked before the password inside it.
        ordered = sorted(set(secrets), key=len, reverse=True)
        self._secrets = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    @classmethod
    def from_settings(cls, settings: Settings) -> Redactor:
        """A redactor for the secrets of `settings`."""
        return cls(secret_values(settings))

    def text(self, value: str) -> str:
        """`value` with every secret masked."""
        if self._secrets is not None:
            value = self._secrets.sub(MASK, value)
        if "://" in value:
            value = URL_PASSWORD.sub(rf"\g<head>{MASK}@", value)
        return CREDENTIAL.sub(rf"\g<head>\g<sep>\g<scheme>{MASK}", value)

    def value(self, value: Any, depth: int = 0) -> Any:
        """A copy of `value` (text, mappings, lists) with every secret masked."""
        if isinstance(value, str):
            return self.text(value)
        if depth > MAX_DEPTH:
            return value
        if isinstance(value, dict):
            return {
                key: MASK if item and _names_a_secret(key) else self.value(item, depth + 1)
                for key, item in value.items()
            }
        if isinstance(value, list | tuple) and len(value) == 2 and _names_a_secret(value[0]):
            pair = [value[0], MASK]  # a (name, value) header pair, as in an ASGI scope
            return pair if isinstance(value, list) else tuple(pair)
        if isinstance(value, list | tuple):
            items = [self.value(item, depth + 1) for item in value]
            return items if isinstance(value, list) else tuple(items)
        return value
