"""docs/openapi.yaml describes the console API that app.py serves, route for route.

The routes are read from the app itself, so a route added, removed or put behind the
session authorizer without the document following fails here.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate

DOCUMENT = Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
IDEMPOTENCY_KEY = {"$ref": "#/components/parameters/Idempotency-Key"}


@pytest.fixture(scope="module")
def document() -> dict:
    return yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))


def _served_routes() -> dict:
    """(method, path) of every console API route of the app, with its route entry."""
    from app import app

    return {(method, path): entry for path, entries in app.routes.items() if path.startswith("/v1/")
            for method, entry in entries.items()}


def _operations(document: dict) -> dict:
    return {(method.upper(), path): operation for path, item in document["paths"].items()
            for method, operation in item.items() if method in HTTP_METHODS}


def test_document_is_a_valid_openapi_3_1_document(document):
    validate(document)
    assert document["openapi"].startswith("3.1.")


def test_document_has_exactly_the_console_routes_the_app_serves(document):
    assert set(_operations(document)) == set(_served_routes())


def test_routes_behind_the_session_authorizer_and_only_they_require_the_bearer_token(document):
    operations = _operations(document)
    for route, entry in _served_routes().items():
        security = operations[route].get("security", document["security"])
        assert (security == [{"session": []}]) == (entry.authorizer is not None), route


def test_mutating_authenticated_routes_and_only_they_take_an_idempotency_key(document):
    from app import NOT_REPLAYABLE_ROUTES

    operations = _operations(document)
    for (method, path), entry in _served_routes().items():
        takes_key = IDEMPOTENCY_KEY in operations[(method, path)].get("parameters", [])
        replayable = (method, path) not in NOT_REPLAYABLE_ROUTES
        assert takes_key == (method in MUTATING and entry.authorizer is not None and replayable), (method, path)


def test_the_document_has_no_duplicate_keys():
    """YAML keeps the last of two equal keys silently; a duplicated path or schema would hide."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        pass

    def mapping(loader, node, deep=False):
        keys = [loader.construct_object(key, deep=deep) for key, _ in node.value]
        assert len(keys) == len(set(keys)), sorted({k for k in keys if keys.count(k) > 1})
        return yaml.SafeLoader.construct_mapping(loader, node, deep)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    yaml.load(DOCUMENT.read_text(encoding="utf-8"), Loader=StrictLoader)
