"""The CRUD reference, end to end through HTTP."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from httpx import AsyncClient

API = "/api/v1/profiles"


async def create(client: AsyncClient, name: str = "Ada", email: str = "ada@example.com") -> Any:
    """Create a profile and return its JSON."""
    response = await client.post(API, json={"name": name, "email": email})
    assert response.status_code == 201, response.text
    return response.json()


async def test_create_then_get(client: AsyncClient) -> None:
    created = await create(client)
    assert set(created) == {"id", "name", "email", "created_at", "updated_at"}
    uuid.UUID(created["id"])
    response = await client.get(f"{API}/{created['id']}")
    assert (response.status_code, response.json()) == (200, created)


async def test_get_unknown_is_404(client: AsyncClient) -> None:
    response = await client.get(f"{API}/{uuid.uuid4()}")
    assert response.status_code == 404
    assert "not found" in response.json()["detail"]


async def test_an_id_that_is_not_a_uuid_names_no_profile(client: AsyncClient) -> None:
    assert (await client.get(f"{API}/not-a-uuid")).status_code == 404


@pytest.mark.parametrize("method", ["GET", "PATCH", "PUT", "DELETE"])
async def test_other_methods_on_imports_are_405(client: AsyncClient, method: str) -> None:
    response = await client.request(method, f"{API}/imports", json={"name": "x"})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize(
    ("raw_name", "problem"),
    [(r"a\u0000b", "U+0000"), (r"\ud800", "surrogate"), (r"ok \udfff", "surrogate")],
)
async def test_names_postgresql_cannot_store_are_422(
    client: AsyncClient, raw_name: str, problem: str
) -> None:
    body = ('{"name": "' + raw_name + '", "email": "ada@example.com"}').encode()
    response = await client.post(API, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert problem in response.text
    assert (await client.get(API)).json()["total"] == 0


async def test_names_are_stored_stripped(client: AsyncClient) -> None:
    assert (await create(client, name="  Ada  "))["name"] == "Ada"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": "Ada"},
        {"email": "ada@example.com"},
        {"name": "", "email": "ada@example.com"},
        {"name": "Ada", "email": "not-an-email"},
        {"name": "Ada", "email": "ada@example.com", "id": str(uuid.UUID(int=1))},
        {"name": "x" * 201, "email": "ada@example.com"},
    ],
)
async def test_bad_body_is_422(client: AsyncClient, body: dict[str, str]) -> None:
    response = await client.post(API, json=body)
    assert response.status_code == 422
    assert (await client.get(API)).json()["total"] == 0


async def test_duplicate_email_is_409_and_the_first_survives(client: AsyncClient) -> None:
    first = await create(client)
    response = await client.post(API, json={"name": "Other", "email": "ada@example.com"})
    assert response.status_code == 409
    assert response.json() == {"detail": "a profile with this email already exists"}
    assert (await client.get(f"{API}/{first['id']}")).status_code == 200
    assert (await client.get(API)).json()["total"] == 1


@pytest.mark.parametrize("email", ["Ada@example.com", "ADA@EXAMPLE.COM", "ada@Example.Com"])
async def test_emails_are_unique_whatever_their_case(client: AsyncClient, email: str) -> None:
    await create(client)
    response = await client.post(API, json={"name": "Other", "email": email})
    assert response.status_code == 409
    assert response.json() == {"detail": "a profile with this email already exists"}


async def test_emails_keep_the_case_they_were_given(client: AsyncClient) -> None:
    created = await create(client, email="Ada.Lovelace@Example.org")
    assert created["email"] == "Ada.Lovelace@example.org"  # EmailStr lower-cases the domain only


async def test_list_paginates_newest_first(client: AsyncClient) -> None:
    ids = [(await create(client, f"P{i}", f"p{i}@example.com"))["id"] for i in range(3)]
    first = (await client.get(API, params={"limit": 2})).json()
    second = (await client.get(API, params={"limit": 2, "offset": 2})).json()
    assert (first["total"], first["limit"], first["offset"]) == (3, 2, 0)
    assert len(first["items"]) == 2
    assert len(second["items"]) == 1
    listed = [item["id"] for item in first["items"] + second["items"]]
    assert sorted(listed) == sorted(ids)


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 101}, {"offset": -1}, {"offset": 2**63}]
)
async def test_list_rejects_bad_paging(client: AsyncClient, params: dict[str, int]) -> None:
    assert (await client.get(API, params=params)).status_code == 422


async def test_the_largest_offset_is_an_empty_page(client: AsyncClient) -> None:
    await create(client)
    page = (await client.get(API, params={"offset": 2**63 - 1})).json()
    assert (page["items"], page["total"]) == ([], 1)


async def test_update(client: AsyncClient) -> None:
    created = await create(client)
    response = await client.patch(f"{API}/{created['id']}", json={"name": "Ada Lovelace"})
    assert response.status_code == 200
    updated = response.json()
    assert (updated["name"], updated["email"]) == ("Ada Lovelace", "ada@example.com")
    assert (await client.get(f"{API}/{created['id']}")).json()["name"] == "Ada Lovelace"


@pytest.mark.parametrize(
    "body", [{}, {"name": None}, {"email": None}, {"email": "nope"}, {"extra": 1}, {"name": " "}]
)
async def test_update_rejects_bad_bodies(client: AsyncClient, body: dict[str, Any]) -> None:
    created = await create(client)
    assert (await client.patch(f"{API}/{created['id']}", json=body)).status_code == 422


@pytest.mark.parametrize("email", ["ada@example.com", "Ada@Example.com"])
async def test_update_to_taken_email_is_409(client: AsyncClient, email: str) -> None:
    await create(client)
    other = await create(client, "Bo", "bo@example.com")
    response = await client.patch(f"{API}/{other['id']}", json={"email": email})
    assert response.status_code == 409
    assert (await client.get(f"{API}/{other['id']}")).json()["email"] == "bo@example.com"


async def test_a_profile_may_change_the_case_of_its_own_email(client: AsyncClient) -> None:
    created = await create(client)
    response = await client.patch(f"{API}/{created['id']}", json={"email": "ADA@example.com"})
    assert (response.status_code, response.json()["email"]) == (200, "ADA@example.com")


async def test_update_unknown_is_404(client: AsyncClient) -> None:
    response = await client.patch(f"{API}/{uuid.uuid4()}", json={"name": "X"})
    assert response.status_code == 404


async def test_delete(client: AsyncClient) -> None:
    created = await create(client)
    assert (await client.delete(f"{API}/{created['id']}")).status_code == 204
    assert (await client.get(f"{API}/{created['id']}")).status_code == 404
    assert (await client.delete(f"{API}/{created['id']}")).status_code == 404
