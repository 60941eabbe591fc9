"""Input types for request bodies, query and path parameters: only values the database can hold.

A value that passes validation must never fail later in the driver or in PostgreSQL (a 500):

- `Text` and `StorableText(...)`: strings without U+0000 (PostgreSQL `text` cannot hold
  it) and without lone surrogates (`"\\ud800"` is valid JSON but not UTF-8). Both are refused
  with a 422 that names the problem; nothing is silently removed.
- `HttpURL`: an http(s) URL that fits a 2048-character column once normalised (the parser
  adds a slash to an empty path and percent-encodes); storable text before it is parsed.
- `Email`: pydantic's `EmailStr`, whose refusals (special-use domains such as `.test`, more than
  254 characters) its JSON Schema spells out.
- `Int32`, `Int64` and `Offset`: integers within the column or driver range (asyncpg refuses
  Python integers beyond int64 when it encodes them).

The JSON Schema of each type says the same thing (`pattern`, `minimum`, `maximum`), so clients
and API fuzzers see the rules the server applies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from annotated_types import Interval
from email_validator import SPECIAL_USE_DOMAIN_NAMES
from pydantic import AnyHttpUrl, EmailStr, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
"""Range of a PostgreSQL `integer` column."""
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
"""Range of a PostgreSQL `bigint` column, and of LIMIT and OFFSET."""

URL_MAX_LENGTH = 2048
"""Longest stored URL (the sitemaps protocol's limit and the URL columns')."""
URL_INPUT_MAX_LENGTH = 2000
"""Longest URL accepted, leaving room for what normalisation adds before it is stored."""
EMAIL_MAX_LENGTH = 254
"""Longest email address (RFC 5321); `EmailStr` refuses longer ones."""

_NUL = "\x00"
_SURROGATE = re.compile("[\ud800-\udfff]")
# The JSON Schema pattern of storable text. Lone surrogates cannot be written in UTF-8 JSON
# text, and an ECMA-262 pattern cannot exclude them without also excluding emoji, so the
# pattern names U+0000 only; the validator refuses both.
_STORABLE_PATTERN = r"^[^\x00]*$"
# Blank means what `str.strip()` removes (`str.isspace()`), which is not ECMA-262's `\s`: U+0085
# and U+001C..U+001F are Python whitespace, U+FEFF is not. The class lists them as `\uXXXX`.
_WHITESPACE = "".join(f"\\u{code:04x}" for code in range(0x3001) if chr(code).isspace())
_NOT_BLANK_PATTERN = rf"^[^\x00]*[^\x00{_WHITESPACE}][^\x00]*$"
_HTTP_URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://[^\x00]+$"


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in word)


# A dot in the domain, and no special-use name at its end (`a@b.test`), as email-validator checks.
_SPECIAL_USE = "|".join(_any_case(name) for name in SPECIAL_USE_DOMAIN_NAMES)
_EMAIL_PATTERN = rf"^[^@\x00]+@(?!(?:.*\.)?(?:{_SPECIAL_USE})$)[^@\x00]+\.[^@\x00]+$"


@dataclass(frozen=True, slots=True)
class StorableText:
    """Annotation for a string PostgreSQL can store: `Annotated[str, StorableText(...)]`.

    `max_length` and `min_length` count the characters received. With `strip=True` the value is
    stored without surrounding whitespace and must not be blank.
    """

    max_length: int | None = None
    min_length: int = 0
    strip: bool = False

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        """A string, checked for what PostgreSQL cannot hold before anything else reads it."""
        steps: list[core_schema.CoreSchema] = [
            core_schema.str_schema(),  # unconstrained: lone surrogates reach the check below
            core_schema.no_info_plain_validator_function(_storable),
            core_schema.str_schema(min_length=self.min_length, max_length=self.max_length),
        ]
        if self.strip:
            steps.append(core_schema.no_info_plain_validator_function(_stripped))
        return core_schema.chain_schema(steps)

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """A string schema with the limits and a `pattern` that excludes U+0000 (and blanks)."""
        json_schema = handler(schema)
        if self.max_length is not None:
            json_schema["maxLength"] = self.max_length
        if self.strip or self.min_length:
            json_schema["minLength"] = max(int(self.strip), self.min_length)
        json_schema["pattern"] = _NOT_BLANK_PATTERN if self.strip else _STORABLE_PATTERN
        return json_schema


def _storable(value: str) -> str:
    if _NUL in value:
        raise PydanticCustomError(
            "string_nul",
            "must not contain the NUL character (U+0000): PostgreSQL text cannot store it",
        )
    if _SURROGATE.search(value):
        raise PydanticCustomError(
            "string_surrogate",
            "must not contain unpaired surrogates (U+D800 to U+DFFF): they are not text",
        )
    return value


def _stripped(value: str) -> str:
    value = value.strip()
    if not value:
        raise PydanticCustomError("string_blank", "must not be blank")
    return value


@dataclass(frozen=True, slots=True)
class _StoredURL:
    """`HttpURL`: storable text of at most `URL_INPUT_MAX_LENGTH`, then a URL that fits."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        """Check the text, parse the URL (`handler`), then check its normalised length."""
        text = StorableText(max_length=URL_INPUT_MAX_LENGTH)
        return core_schema.chain_schema(
            [
                text.__get_pydantic_core_schema__(str, handler),
                handler(source),
                core_schema.no_info_plain_validator_function(_fits_column),
            ]
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """What a client may send: an http(s) URI of at most `URL_INPUT_MAX_LENGTH` characters."""
        return {
            "type": "string",
            "format": "uri",
            "minLength": 1,
            "maxLength": URL_INPUT_MAX_LENGTH,
            "pattern": _HTTP_URL_PATTERN,
        }


def _fits_column(url: AnyHttpUrl) -> AnyHttpUrl:
    if len(str(url)) > URL_MAX_LENGTH:
        raise PydanticCustomError(
            "url_too_long",
            "must be at most {max_length} characters once normalised",
            {"max_length": URL_MAX_LENGTH},
        )
    return url


@dataclass(frozen=True, slots=True)
class _EmailRules:
    """JSON Schema of `Email`: what pydantic's `EmailStr` refuses beyond `format: email`."""

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """The `EmailStr` schema with its length limit and a pattern for its domain rules."""
        json_schema = handler(schema)
        json_schema.update(maxLength=EMAIL_MAX_LENGTH, pattern=_EMAIL_PATTERN)
        return json_schema


Text = Annotated[str, StorableText()]
"""Any string PostgreSQL can store (no U+0000, no lone surrogates), of any length."""

HttpURL = Annotated[AnyHttpUrl, _StoredURL()]
"""An http(s) URL to fetch and store: `str(url)` is at most `URL_MAX_LENGTH` characters."""
Email = Annotated[EmailStr, _EmailRules()]
"""An email address, normalised by `EmailStr` (the domain lower-cased, the local part as given)."""

Int32 = Annotated[int, Interval(ge=INT32_MIN, le=INT32_MAX)]
"""An integer an `integer` column holds."""
Int64 = Annotated[int, Interval(ge=INT64_MIN, le=INT64_MAX)]
"""An integer a `bigint` column holds."""
Offset = Annotated[int, Interval(ge=0, le=INT64_MAX)]
"""Rows to skip in a listing (PostgreSQL's OFFSET is a bigint)."""
