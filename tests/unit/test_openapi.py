import json
from pathlib import Path

from rampart.api.openapi import openapi_json

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_committed_openapi_matches_the_code() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == openapi_json(), (
        "docs/openapi.json drifted from the API code: run `make openapi` and commit the result"
    )


def test_every_operation_requires_the_api_key_and_documents_its_errors() -> None:
    doc = json.loads(openapi_json())
    assert doc["security"] == [{"api_key": []}]
    assert doc["components"]["securitySchemes"]["api_key"] == {
        "type": "apiKey",
        "name": "x-api-key",
        "in": "header",
    }
    for path, item in doc["paths"].items():
        responses = item["get"]["responses"]
        assert {"200", "403", "429", "503"} <= set(responses), path
        assert "422" not in responses
