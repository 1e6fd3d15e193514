"""The published OpenAPI document is complete (issue #16): every operation has a description
and an example for its request body (when it takes one) and its success response, and every
example is valid for the schema it illustrates."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from tests.conftest import Gateway

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture
async def document(gateway: Gateway) -> dict[str, Any]:
    r = await gateway.client.get("/schema/openapi.json")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def operations(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{method.upper()} {path}", operation)
            for path, item in document["paths"].items()
            for method, operation in item.items() if method in METHODS]


def examples(where: str, media: dict[str, Any]) -> list[Any]:
    found = [media["example"]] if "example" in media else []
    found += [e["value"] for e in media.get("examples", {}).values()]
    assert found, f"{where}: no example"
    return found


def check(document: dict[str, Any], where: str, media: dict[str, Any]) -> None:
    # The document's `$ref`s point at `#/components/schemas/...`: validate with them at hand.
    schema = {**media.get("schema", {}), "components": document["components"]}
    for example in examples(where, media):
        errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(example),
                        key=str)
        assert not errors, f"{where}: example invalid: {errors[0].message} at " \
                           f"{list(errors[0].absolute_path)}"


async def test_every_operation_has_a_description_and_valid_examples(
        document: dict[str, Any]) -> None:
    found = operations(document)
    assert len(found) > 100  # the whole API, not an empty document
    for where, operation in found:
        assert operation.get("description", "").strip(), f"{where}: no description"
        for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
            check(document, f"{where} request {media_type}", media)
        successes = {status: response for status, response in operation["responses"].items()
                     if status[0] in "23"}  # a redirect is a success too
        assert successes, f"{where}: no success response documented"
        for status, response in successes.items():
            for media_type, media in response.get("content", {}).items():
                check(document, f"{where} {status} {media_type}", media)


async def test_the_check_catches_a_missing_example_and_an_invalid_one(
        document: dict[str, Any]) -> None:
    media = document["paths"]["/v1/usage"]["get"]["responses"]["200"]["content"][
        "application/json"]
    with pytest.raises(AssertionError, match="no example"):
        check(document, "GET /v1/usage", {"schema": media["schema"]})
    with pytest.raises(AssertionError, match="example invalid"):
        check(document, "GET /v1/usage", {**media, "example": {"data": "no"}})


async def test_the_written_examples_are_served(document: dict[str, Any]) -> None:
    create = document["paths"]["/v1/generations"]["post"]
    assert create["requestBody"]["content"]["application/json"]["example"]["type"] == "image"
    usage = document["paths"]["/v1/usage"]["get"]["responses"]["200"]["content"][
        "application/json"]["example"]
    assert usage["data"][0]["unit"] == "millicredit"
