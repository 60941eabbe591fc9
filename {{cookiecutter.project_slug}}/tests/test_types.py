"""Input types: what validation lets through, PostgreSQL can store; the JSON Schema says so too."""

from __future__ import annotations

import re
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from {{ cookiecutter.project_slug }}.types import (
    INT32_MAX,
    INT64_MAX,
    Email,
    Int32,
    Offset,
    StorableText,
    Text,
)

Name = Annotated[str, StorableText(max_length=5, strip=True)]


def error(adapter: TypeAdapter[Any], value: object) -> dict[str, Any]:
    """The one validation error `value` raises."""
    with pytest.raises(ValidationError) as raised:
        adapter.validate_python(value)
    [found] = raised.value.errors()
    return dict(found)


@pytest.mark.parametrize(
    ("value", "kind", "words"),
    [
        ("a\x00b", "string_nul", "U+0000"),
        ("\ud800", "string_surrogate", "surrogate"),
        ("ok \udfff", "string_surrogate", "surrogate"),
    ],
)
def test_text_refuses_what_postgresql_cannot_store(value: str, kind: str, words: str) -> None:
    found = error(TypeAdapter(Text), value)
    assert found["type"] == kind
    assert words in found["msg"]


@pytest.mark.parametrize("value", ["", "plain", "emoji \U0001f600", "tab\tand\nnewline", "\x01"])
def test_text_keeps_everything_else_as_given(value: str) -> None:
    assert TypeAdapter(Text).validate_python(value) == value


def test_stripped_text_is_stored_without_surrounding_space_and_never_blank() -> None:
    adapter = TypeAdapter(Name)
    assert adapter.validate_python(" Ada ") == "Ada"
    assert error(adapter, " \t ")["type"] == "string_blank"
    assert error(adapter, "")["type"] == "string_blank"
    assert error(adapter, "abcdef")["type"] == "string_too_long"  # counted as received


def test_blank_in_the_json_schema_is_blank_to_the_validator() -> None:
    """The schema's pattern and the validator agree on every whitespace-like character (U+0085,
    U+001C..U+001F and U+3000 are Python whitespace but not ECMA-262's `\\s`; U+FEFF is neither)."""
    # Read the pattern as a client does (ECMA-262, whose `\\s` differs from Python's).
    ecma_space = r"[\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"
    schema_pattern = TypeAdapter(Name).json_schema()["pattern"]
    pattern = re.compile(schema_pattern.replace("\\s", ecma_space[1:-1]))
    adapter = TypeAdapter(Name)
    for code in [*range(0x3001), 0xFEFF]:
        value = chr(code) * 2
        if "\x00" in value or 0xD800 <= code <= 0xDFFF:
            continue
        documented = bool(pattern.search(value))
        try:
            adapter.validate_python(value)
        except ValidationError:
            accepted = False
        else:
            accepted = True
        assert documented == accepted, hex(code)


def test_the_json_schema_states_the_rules() -> None:
    schema = TypeAdapter(Name).json_schema()
    assert schema["maxLength"] == 5
    assert schema["minLength"] == 1
    pattern = re.compile(schema["pattern"])
    assert pattern.search(" Ada ")
    assert not pattern.search(" \t ")
    assert not pattern.search("a\x00b")
    assert not re.search(TypeAdapter(Text).json_schema()["pattern"], "a\x00b")


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("Case@Example.org", True),
        ("a+b@sub.example.com", True),
        ("a@b.test", False),
        ("a@b.TEST", False),
        ("a@localhost", False),
        ("a@b.onion", False),
        ("a@nodot", False),
        ("a\x00@example.com", False),
        (f"{'a' * 64}@{'b' * 63}.{'c' * 63}.{'d' * 60}.com", False),  # 255 characters
    ],
)
def test_email_pattern_and_validation_agree(value: str, valid: bool) -> None:
    adapter = TypeAdapter(Email)
    schema = adapter.json_schema()
    documented = len(value) <= schema["maxLength"] and bool(re.search(schema["pattern"], value))
    try:
        adapter.validate_python(value)
        accepted = True
    except ValidationError:
        accepted = False
    assert (documented, accepted) == (valid, valid)


def test_email_keeps_the_local_part_as_given() -> None:
    assert TypeAdapter(Email).validate_python("Case@Example.ORG") == "Case@example.org"


@pytest.mark.parametrize(("annotation", "highest"), [(Offset, INT64_MAX), (Int32, INT32_MAX)])
def test_integers_stop_at_the_column_range(annotation: Any, highest: int) -> None:
    class Model(BaseModel):
        value: annotation

    assert Model(value=highest).value == highest
    with pytest.raises(ValidationError):
        Model(value=highest + 1)
    schema = Model.model_json_schema()["properties"]["value"]
    assert schema["maximum"] == highest


def test_offsets_are_not_negative() -> None:
    assert error(TypeAdapter(Offset), -1)["type"] == "greater_than_equal"
