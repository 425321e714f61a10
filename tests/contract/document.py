"""Validation against an OpenAPI document with jsonschema, `$ref`s resolved inside the document."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

BASE = "urn:mdstack:openapi"


def _pointer(*parts: str) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


class Document:
    """An OpenAPI document; `response` and `event` validate a body against the schema it gives."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource(BASE, resource)

    def _validate(self, instance: object, *parts: str) -> None:
        validator = Draft202012Validator({"$ref": BASE + "#" + _pointer(*parts)}, registry=self.registry)
        validator.validate(instance)

    def operations(self) -> set[tuple[str, str, str]]:
        """(method, path, status) of every answer the document describes with a body."""
        return {
            (method.upper(), path, status)
            for path, methods in self.document["paths"].items()
            for method, operation in methods.items()
            for status, answer in operation["responses"].items()
            if answer.get("content")
        }

    def response(self, method: str, path: str, status: int, body: object) -> tuple[str, str, str]:
        """Validate `body` as the answer `status` of `method path` (the path template); returns its key."""
        content = self.document["paths"][path][method.lower()]["responses"][str(status)]["content"]
        media = next(iter(content))
        self._validate(body, "paths", path, method.lower(), "responses", str(status), "content", media, "schema")
        return method.upper(), path, str(status)

    def event(self, event_type: str, data: object) -> None:
        """Validate the JSON of an SSE event's `data:` against its type's schema in `x-sse-events`."""
        self._validate(data, "x-sse-events", event_type)
