"""Helpers for the API tests: the OpenAPI document as the judge of every response, the real
server (``serve``) on a free loopback port, and a small Prometheus text parser."""
from __future__ import annotations

import asyncio
import json
import re
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from shian.cli.run import serve
from shian.office.settings import ServiceSettings
from shian.streams.service import Service

SPEC_PATH = Path(__file__).resolve().parents[2] / "office" / "openapi.yaml"
SPEC_URI = "urn:shian:openapi"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


class Spec:
    """The OpenAPI file: its operations, and each response checked against its schema."""

    def __init__(self, path: Path = SPEC_PATH) -> None:
        self.doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        self.registry = Registry().with_resource(
            SPEC_URI, Resource.from_contents(self.doc, default_specification=DRAFT202012))

    def operations(self) -> set[tuple[str, str]]:
        return {(m.upper(), p) for p, item in self.doc["paths"].items() for m in item if m in METHODS}

    def _resolve(self, pointer: list[str]) -> tuple[Any, list[str]]:
        node: Any = self.doc
        for part in pointer:
            node = node[part]
        if isinstance(node, dict) and "$ref" in node:
            target = node["$ref"].removeprefix("#/").split("/")
            return self._resolve([p.replace("~1", "/").replace("~0", "~") for p in target])
        return node, pointer

    def check(self, method: str, template: str, status: int, content_type: str, body: Any) -> None:
        ops = self.doc["paths"].get(template, {})
        assert method.lower() in ops, f"{method} {template} is not in the spec"
        responses = ops[method.lower()]["responses"]
        assert str(status) in responses, f"{method} {template}: status {status} is not documented ({body!r:.300})"
        response, where = self._resolve(["paths", template, method.lower(), "responses", str(status)])
        content = response.get("content", {})
        assert content_type in content, f"{method} {template} {status}: {content_type} not documented"
        pointer = "/".join(_escape(p) for p in [*where, "content", content_type, "schema"])
        Draft202012Validator({"$ref": f"{SPEC_URI}#/{pointer}"}, registry=self.registry).validate(body)


class Api:
    """A client that checks every answer against the spec and notes the operations used."""

    def __init__(self, session: aiohttp.ClientSession, base: str, spec: Spec) -> None:
        self.session, self.base, self.spec = session, base, spec
        self.seen: set[tuple[str, str]] = set()

    async def call(self, method: str, template: str, *, token: str | None = None,
                   path: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
                   **kw: Any) -> tuple[int, Any]:
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        url = self.base + template.format(**(path or {}))
        async with self.session.request(method, url, headers=h, **kw) as r:
            raw = await r.read()
            ctype = r.content_type
            status = r.status
        body = json.loads(raw) if ctype == "application/json" else raw.decode("utf-8")
        self.spec.check(method, template, status, ctype, body)
        self.seen.add((method, template))
        return status, body


@asynccontextmanager
async def running(service: Service, settings: ServiceSettings) -> AsyncIterator[str]:
    """``serve`` in this event loop (the settings should listen on port 0); yields its URL."""
    stop = asyncio.Event()
    urls: list[str] = []
    ready = asyncio.Event()

    def listening(addresses: list[str]) -> None:
        urls.extend(addresses)
        ready.set()

    task = asyncio.create_task(serve(service, settings, stop, on_listening=listening))
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if not ready.is_set():
        waiter.cancel()
        task.result()  # raises what stopped it
        raise AssertionError("serve returned before listening")
    try:
        yield urls[0]
    finally:
        stop.set()
        await task


@asynccontextmanager
async def client(base: str, spec: Spec | None = None) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, base, spec or Spec())


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Samples of Prometheus text format 0.0.4; every line must be a comment or a sample,
    and every sample's family must have been declared by a TYPE line."""
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    types: dict[str, str] = {}
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            types[name] = kind
            continue
        if line.startswith("# HELP ") or not line:
            continue
        m = _SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        name, labels, value = m.groups()
        assert name in types, f"{name} has no TYPE line"
        pairs = frozenset(_LABEL.findall(labels or ""))
        samples[(name, pairs)] = float(value)
    return samples
