"""GET /hed_api_spec, and the simulator's real behaviour checked against that document.

Every answer here comes over real HTTP and is validated against the schemas the spec itself
serves, so a change to either the simulator or the spec that makes them disagree fails here.
The spec is OpenAPI 3.1, whose Schema Objects are JSON Schema 2020-12: validated with
jsonschema's Draft 2020-12 validator, with OpenAPI's numeric formats (int32, int64, float,
double) checked too, and $refs resolved inside the served document.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import requests
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from hed_simulator import DEMO_API_KEY, FIELD_KINDS, RECORD_FIELDS, HedSimulator
from hed_simulator.api_spec import load_spec

TIMEOUT = 10
SPEC_URI = "urn:hed-api-spec"
DATA = ("paths", "/hed_data", "get")
# JSON Schema types that each kind of field must be declared with.
KIND_TYPES = {
    "text": "string",
    "timestamp": "string",
    "double": "number",
    "count": "integer",
    "money": "number",
    "boolean": "boolean",
}
INT_RANGES = {"int32": 32, "int64": 64}


# --- a validator for the served document's schemas ---


def openapi_format_checker() -> jsonschema.FormatChecker:
    """JSON Schema's format checker plus OpenAPI's numeric formats."""
    checker = jsonschema.FormatChecker()
    for name, bits in INT_RANGES.items():
        checker.checks(name)(lambda value, bits=bits: fits_signed(value, bits))
    checker.checks("double")(lambda value: not isinstance(value, float) or math.isfinite(value))
    checker.checks("float")(fits_float32)
    return checker


def fits_signed(value: Any, bits: int) -> bool:
    if not isinstance(value, int) or isinstance(value, bool):
        return True  # formats only constrain their own type
    return -(2 ** (bits - 1)) <= value < 2 ** (bits - 1)


def fits_float32(value: Any) -> bool:
    if not isinstance(value, float):
        return True
    try:
        struct.pack("f", value)
    except OverflowError:
        return False
    return True


class SpecValidator:
    """Validates instances against any schema of the served spec, by JSON pointer."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        resource = Resource.from_contents(spec, default_specification=DRAFT202012)
        self._registry = Registry().with_resource(SPEC_URI, resource)
        self._formats = openapi_format_checker()

    def validator(self, pointer: str) -> jsonschema.Draft202012Validator:
        schema = {"$ref": f"{SPEC_URI}#{pointer}"}
        return jsonschema.Draft202012Validator(
            schema, registry=self._registry, format_checker=self._formats
        )

    def validate(self, instance: Any, pointer: str) -> None:
        self.validator(pointer).validate(instance)

    def is_valid(self, instance: Any, pointer: str) -> bool:
        return self.validator(pointer).is_valid(instance)

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        """Follow a local $ref (responses are often references)."""
        while "$ref" in node:
            node = self.at(node["$ref"].removeprefix("#"))
        return node

    def at(self, pointer: str) -> Any:
        node: Any = self.spec
        for part in pointer.strip("/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node


def pointer(*parts: str) -> str:
    return "/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


@pytest.fixture
def spec(simulator: HedSimulator) -> dict[str, Any]:
    """The document as the API serves it (no key)."""
    return requests.get(f"{simulator.url}/hed_api_spec", timeout=TIMEOUT).json()


@pytest.fixture
def checker(spec: dict[str, Any]) -> SpecValidator:
    return SpecValidator(spec)


def response_pointer(checker: SpecValidator, status: int) -> str:
    """Pointer to the application/json schema of GET /hed_data's answer for `status`."""
    responses = checker.at(pointer(*DATA, "responses"))
    assert str(status) in responses, f"HTTP {status} is not declared for GET /hed_data"
    reference = responses[str(status)].get("$ref")
    base = reference.removeprefix("#") if reference else pointer(*DATA, "responses", str(status))
    return f"{base}/content/application~1json/schema"


def response_examples(checker: SpecValidator, status: int) -> list[Any]:
    response = checker.resolve(checker.at(pointer(*DATA, "responses", str(status))))
    examples = response["content"]["application/json"].get("examples", {})
    return [example["value"] for example in examples.values()]


def assert_answer_matches_spec(checker: SpecValidator, response: requests.Response) -> None:
    """Declared status, JSON content type, body valid against that status's schema."""
    checker.validate(response.json(), response_pointer(checker, response.status_code))
    assert response.headers["Content-Type"].startswith("application/json")


def get_data(sim: HedSimulator, key: str | None = DEMO_API_KEY, **params: Any) -> Any:
    headers = {"x-api-key": key} if key is not None else {}
    return requests.get(f"{sim.url}/hed_data", params=params, headers=headers, timeout=TIMEOUT)


def page_size_schema(checker: SpecValidator) -> dict[str, Any]:
    parameters = checker.at(pointer(*DATA, "parameters"))
    return next(p for p in parameters if p["name"] == "page_size")["schema"]


def all_pages(sim: HedSimulator, cursor: str | None = None) -> Iterator[requests.Response]:
    with requests.Session() as session:
        session.headers["x-api-key"] = DEMO_API_KEY
        while True:
            params = {"page_size": 200, **({"cursor": cursor} if cursor else {})}
            response = session.get(f"{sim.url}/hed_data", params=params, timeout=TIMEOUT)
            yield response
            body = response.json()
            cursor = body["next_cursor"]
            if not body["has_more"]:
                return


# --- the document itself ---


def test_spec_is_served_without_a_key_as_openapi_3_1_json(simulator: HedSimulator) -> None:
    response = requests.get(f"{simulator.url}/hed_api_spec", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["openapi"].startswith("3.1.")
    assert response.json() == load_spec()


def test_every_schema_in_the_spec_is_valid_json_schema_2020_12(
    spec: dict[str, Any], checker: SpecValidator
) -> None:
    schemas = list(spec["components"]["schemas"].values())
    schemas += [parameter["schema"] for parameter in checker.at(pointer(*DATA, "parameters"))]
    for schema in schemas:
        jsonschema.Draft202012Validator.check_schema(schema)


def test_every_reference_in_the_spec_resolves(
    spec: dict[str, Any], checker: SpecValidator
) -> None:
    def references(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"]
            for value in node.values():
                yield from references(value)
        elif isinstance(node, list):
            for value in node:
                yield from references(value)

    found = list(references(spec))
    assert found
    for reference in found:
        assert reference.startswith("#/")
        checker.at(reference.removeprefix("#"))


def test_spec_requires_the_api_key_header_on_data_but_not_on_itself(
    spec: dict[str, Any],
) -> None:
    schemes = spec["components"]["securitySchemes"]
    (name,) = (name for name, scheme in schemes.items() if scheme["type"] == "apiKey")
    assert (schemes[name]["in"], schemes[name]["name"]) == ("header", "x-api-key")
    assert spec["paths"]["/hed_data"]["get"].get("security", spec["security"]) == [{name: []}]
    assert spec["paths"]["/hed_api_spec"]["get"]["security"] == []


def test_record_schema_declares_the_22_fields_in_api_order_all_required(
    spec: dict[str, Any], checker: SpecValidator
) -> None:
    record = spec["components"]["schemas"]["HedRecord"]
    assert tuple(record["properties"]) == RECORD_FIELDS
    assert tuple(record["required"]) == RECORD_FIELDS
    for name, kind in FIELD_KINDS.items():
        declared = checker.resolve(record["properties"][name])
        assert declared["type"] == KIND_TYPES[kind], name


# --- real answers against the document ---


def test_every_page_of_a_full_and_an_incremental_sync_validates(
    simulator: HedSimulator, checker: SpecValidator
) -> None:
    pages = list(all_pages(simulator))
    end_cursor = pages[-1].json()["next_cursor"]
    simulator.add_changes(new=10, updated=5)
    pages += list(all_pages(simulator, end_cursor))
    pages += list(all_pages(simulator, pages[-1].json()["next_cursor"]))  # nothing new
    records = [record for page in pages for record in page.json()["hed_records"]]
    assert len(records) == 600 + 15
    assert pages[-1].json()["hed_records"] == []
    for page in pages:
        assert page.status_code == 200
        assert_answer_matches_spec(checker, page)


def test_every_served_record_has_exactly_the_declared_fields(
    simulator: HedSimulator, spec: dict[str, Any], checker: SpecValidator
) -> None:
    declared = tuple(spec["components"]["schemas"]["HedRecord"]["properties"])
    for page in all_pages(simulator):
        for record in page.json()["hed_records"]:
            checker.validate(record, "/components/schemas/HedRecord")
            assert tuple(record) == declared


def test_default_page_size_is_the_specs_default(
    simulator: HedSimulator, checker: SpecValidator
) -> None:
    body = get_data(simulator).json()
    assert len(body["hed_records"]) == page_size_schema(checker)["default"]
    assert body["has_more"] is True


def page_size_cases() -> list[str]:
    """Both sides of each bound in the spec, and values the spec's type excludes."""
    parameters = load_spec()["paths"]["/hed_data"]["get"]["parameters"]
    schema = next(p for p in parameters if p["name"] == "page_size")["schema"]
    low, high = schema["minimum"], schema["maximum"]
    return [str(value) for value in (low - 1, low, high, high + 1)] + ["abc", "1.5", "-1"]


@pytest.mark.parametrize("raw", page_size_cases())
def test_page_size_is_accepted_exactly_when_the_spec_allows_it(
    simulator: HedSimulator, checker: SpecValidator, raw: str
) -> None:
    schema = page_size_schema(checker)
    allowed = raw.lstrip("-").isdigit() and jsonschema.Draft202012Validator(schema).is_valid(
        int(raw)
    )
    response = get_data(simulator, page_size=raw)
    assert_answer_matches_spec(checker, response)
    assert response.status_code == (200 if allowed else 400)
    if allowed:
        assert len(response.json()["hed_records"]) == int(raw)
    else:
        assert response.json() in response_examples(checker, 400)


def test_page_size_parameter_is_the_contracts_integer_from_1_to_200(
    checker: SpecValidator,
) -> None:
    schema = page_size_schema(checker)
    assert schema["type"] == "integer"
    assert (schema["minimum"], schema["maximum"]) == (1, 200)


@pytest.mark.parametrize("cursor", ["not a cursor!", "gAAAAABtampered%3D%3D"])
def test_invalid_cursor_answers_the_specs_400(
    simulator: HedSimulator, checker: SpecValidator, cursor: str
) -> None:
    response = get_data(simulator, cursor=cursor)
    assert_answer_matches_spec(checker, response)
    assert response.status_code == 400
    assert response.json() == {"error": "Invalid cursor"}
    assert response.json() in response_examples(checker, 400)


@pytest.mark.parametrize("key", [None, "not-the-key"])
def test_missing_or_wrong_key_answers_the_specs_401(
    simulator: HedSimulator, checker: SpecValidator, key: str | None
) -> None:
    response = get_data(simulator, key=key)
    assert response.status_code == 401
    assert_answer_matches_spec(checker, response)
    assert response.json() in response_examples(checker, 401)


def test_unknown_path_answers_the_specs_404(
    simulator: HedSimulator, checker: SpecValidator
) -> None:
    response = requests.get(f"{simulator.url}/hed_records", timeout=TIMEOUT)
    not_found = "/components/responses/NotFound/content/application~1json/schema"
    assert response.status_code == 404
    checker.validate(response.json(), not_found)
    examples = checker.at("/components/responses/NotFound/content/application~1json/examples")
    assert response.json() in [example["value"] for example in examples.values()]


def test_rate_limit_answers_the_specs_429_with_retry_after(
    simulator: HedSimulator, checker: SpecValidator
) -> None:
    simulator.set_faults(rate_limit_every=1, retry_after=7)
    response = get_data(simulator)
    declared = checker.resolve(checker.at(pointer(*DATA, "responses", "429")))
    header = declared["headers"]["Retry-After"]
    assert response.status_code == 429
    assert_answer_matches_spec(checker, response)
    assert header["required"] is True
    assert jsonschema.Draft202012Validator(header["schema"]).is_valid(
        int(response.headers["Retry-After"])
    )


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_answer_the_specs_5xx(
    simulator: HedSimulator, checker: SpecValidator, status: int
) -> None:
    simulator.set_faults(fail_rate=1.0, fail_statuses=(status,))
    response = get_data(simulator)
    assert response.status_code == status
    assert_answer_matches_spec(checker, response)
    assert response.json() in response_examples(checker, status)


def test_a_503_outage_answers_the_specs_503(
    simulator: HedSimulator, checker: SpecValidator
) -> None:
    simulator.schedule_outage(after_requests=0, seconds=30)
    response = get_data(simulator)
    assert response.status_code == 503
    assert_answer_matches_spec(checker, response)


# --- the validator can fail: drifted pages break the contract on purpose ---


@pytest.mark.parametrize("mode", ["iso-timestamps", "string-numbers", "string-booleans"])
def test_drifted_pages_do_not_validate(
    simulator: HedSimulator, checker: SpecValidator, mode: str
) -> None:
    simulator.set_drift(mode)
    body = get_data(simulator).json()
    assert not checker.is_valid(body, "/components/schemas/HedPage")


def test_timestamp_schema_accepts_only_the_apis_spelling(checker: SpecValidator) -> None:
    timestamp = "/components/schemas/Timestamp"
    assert checker.is_valid("2024-08-04 0:00:00", timestamp)
    assert checker.is_valid("2024-12-31 23:59:59", timestamp)
    for other in (
        "2024-08-04T00:00:00Z",
        "2024-08-04",
        "2024-08-04 00:00:00",
        "2024-13-01 0:00:00",
    ):
        assert not checker.is_valid(other, timestamp), other
