"""Fuzzing the HTTP API from its own OpenAPI schema (Schemathesis), in process, with the tiny
models, on a server configured as it must be off loopback: a token is required.

Every operation is fuzzed with schema-valid and schema-invalid requests, and every response must
pass all of Schemathesis' checks: no 5xx, a documented status and content type, a body that matches
the declared schema, valid input accepted, invalid input refused, and (`ignored_auth`, on each 2xx)
the same request refused without the token or with a wrong one. The NDJSON stream is checked as the
schema declares it: the stream read as a JSON array of its lines.

Schemathesis' own pytest entry points (`schema.parametrize`, `from_fixture`) read
`request.node._nodeid`, which pytest 9 removed, so the cases come from `as_strategy` under
Hypothesis' `@given` instead: the same generation and the same checks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from ragsys.feedback.store import FeedbackStore
from ragsys.generate.config import GeneratorConfig
from ragsys.index.reader import Index
from ragsys.pipeline import Pipeline
from ragsys.serve.responses import NDJSON
from tests.fixtures.serve import TOKEN, make_client, pdf_doc

AUTH = {"Authorization": f"Bearer {TOKEN}"}
WRONG = {"Authorization": f"Bearer {TOKEN[:-1]}x"}
OPERATIONS = ("POST /ask", "POST /ask/stream", "POST /feedback", "GET /documents/{doc}/pages/{page}",
              "GET /health", "GET /metrics", "POST /admin/pipeline")  # fmt: skip
OPEN = {"GET /health"}  # liveness needs no token
NO_INPUT = {"GET /health"}  # nothing to make invalid: no parameters, no body, no token
EXAMPLES = 25  # per operation and mode: the whole file runs in about 40 s on 2 CPU cores
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))  # fmt: skip


@schemathesis.deserializer(NDJSON)
def _ndjson(_: schemathesis.DeserializationContext, response: schemathesis.Response) -> list[Any]:
    return [json.loads(line) for line in response.content.decode("utf-8").splitlines()]


@pytest.fixture(scope="module")
def public_app(
    search: Pipeline, tiny_index: Index, tiny_lm_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> FastAPI:
    """The tiny random LM answers (the real generator and its streaming path, a few tokens)."""
    store = FeedbackStore.open(tmp_path_factory.mktemp("fuzz") / "feedback.db")
    gen = GeneratorConfig(
        model=str(tiny_lm_path), max_new_tokens=4, context_tokens=64, system_prompt="Be brief."
    ).build()
    client = make_client(search, tiny_index, store, generator=gen, host="0.0.0.0", token=TOKEN)
    return client.app  # type: ignore[return-value]


@pytest.fixture(scope="module")
def api(public_app: FastAPI) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_asgi("/openapi.json", public_app)
    # A negative body can be longer than the server reads at all (64 KiB): 413 Content Too Large
    # is then the right refusal, and the declared one, though not in the check's default list.
    rejection = schema.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "413"]
    return schema


def test_every_operation_is_fuzzed(api: schemathesis.BaseSchema) -> None:
    labels = {result.ok().label for result in api.get_all_operations()}
    assert labels == set(OPERATIONS), "a new route: add it to OPERATIONS (and OPEN if it needs no token)"


@pytest.mark.parametrize(
    ("label", "mode"),
    [(label, mode) for label in OPERATIONS for mode in GenerationMode
     if not (label in NO_INPUT and mode is GenerationMode.NEGATIVE)],
)  # fmt: skip
def test_responses_conform_with_the_token(
    api: schemathesis.BaseSchema, label: str, mode: GenerationMode
) -> None:
    op = api.find_operation_by_label(label)
    assert op is not None

    @given(case=op.as_strategy(mode))
    @FUZZ
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=AUTH)

    run()


@pytest.fixture(scope="module")
def answer_id(public_app: FastAPI) -> str:
    r = TestClient(public_app).post("/ask", json={"question": "belt speed"}, headers=AUTH)
    assert r.status_code == 200, r.text
    return str(r.json()["answer_id"])


def test_feedback_on_a_stored_answer_conforms(api: schemathesis.BaseSchema, answer_id: str) -> None:
    """Random ids only reach the 404: here each fuzzed rating, revision and comment names a real answer."""
    op, statuses = api.find_operation_by_label("POST /feedback"), set()
    assert op is not None

    @given(case=op.as_strategy(GenerationMode.POSITIVE))
    @FUZZ
    def run(case: schemathesis.Case) -> None:
        case.body = {**case.body, "answer_id": answer_id}
        statuses.add(case.call_and_validate(headers=AUTH).status_code)

    run()
    assert statuses == {200}


def test_pages_of_an_indexed_document_conform(api: schemathesis.BaseSchema, tiny_index: Index) -> None:
    """Random ids only reach the 404: here the document is indexed, so pages in range answer
    JSON or PNG (the fuzzed page numbers and formats decide which)."""
    op, statuses = api.find_operation_by_label("GET /documents/{doc}/pages/{page}"), set()
    assert op is not None

    @given(case=op.as_strategy(GenerationMode.POSITIVE, path_parameters={"doc": pdf_doc(tiny_index)}))
    @FUZZ
    def run(case: schemathesis.Case) -> None:
        statuses.add(case.call_and_validate(headers=AUTH).status_code)

    run()
    assert 200 in statuses and statuses <= {200, 404}


@pytest.mark.parametrize("headers", [{}, WRONG], ids=["no-token", "wrong-token"])
@pytest.mark.parametrize("label", OPERATIONS)
def test_without_the_right_token_every_data_route_is_401(
    api: schemathesis.BaseSchema, label: str, headers: dict[str, str]
) -> None:
    op = api.find_operation_by_label(label)
    assert op is not None

    @given(case=op.as_strategy(GenerationMode.POSITIVE))
    @settings(FUZZ, max_examples=10)
    def run(case: schemathesis.Case) -> None:
        case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
        response = case.call(headers=headers)
        case.validate_response(response, headers=headers)
        if label not in OPEN:
            assert response.status_code == 401, response.text
            assert response.headers["www-authenticate"] == ["Bearer"]

    run()
