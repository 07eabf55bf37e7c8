"""A client generated from the OpenAPI document calls every operation and reads every answer.

`openapi-python-client` generates a Python package from plystra_http/openapi.json (tests/python_client_check.sh);
this script calls each of its operation functions once against a running server with the demo data, with an
instance API key: list routes in the demo Space (answers with rows), reads and writes of ids that do not exist
(error answers: 404, 400, 409), and creations with the smallest body the document allows. An operation passes when
the client parses the answer into one of the operation's documented models: an answer the client cannot read (an
undocumented status, a body that does not fit its schema, such as a null where an object is documented) fails.

Usage: python_client.py OPENAPI_JSON BASE_URL API_KEY   (the generated package `plystra_client` on sys.path)
"""

import importlib
import inspect
import json
import pkgutil
import re
import sys
import typing

import plystra_client.api
from plystra_client import AuthenticatedClient

openapi, base_url, api_key = sys.argv[1], sys.argv[2], sys.argv[3]
with open(openapi) as f:
    doc = json.load(f)

# Path and required query values of reads, by parameter name: the demo Space (so that its lists answer rows);
# other ids do not exist (reads and writes of one row answer errors).
VALUES = {"space_id": "space_acme", "resource_type": "invoice", "action": "approve"}
MISSING = "client_check_missing"


def resolve(schema):
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def merged(schema):
    """An allOf's parts as one object schema (properties and required lists combined)."""
    schema = resolve(schema)
    if "allOf" not in schema:
        return schema
    out = {"type": "object", "properties": {}, "required": []}
    for part in schema["allOf"]:
        part = merged(part)
        out["properties"].update(part.get("properties", {}))
        out["required"] += part.get("required", [])
    return out


def text_for(schema, name):
    candidates = [f"client_check_{name}", "client@example.com", "client_check.x", "*", "authz:check", "x"]
    if "enum" in schema:
        return next(v for v in schema["enum"] if v is not None)
    pattern = schema.get("pattern")
    for c in candidates:
        if pattern is None or re.search(pattern, c):
            if len(c) >= schema.get("minLength", 0):
                return c
    raise ValueError(f"no candidate matches {pattern!r} for {name}")


def minimal(schema, name="value"):
    """The smallest instance the schema describes: required properties only, the first option of a choice."""
    schema = merged(schema)
    for choice in ("oneOf", "anyOf"):
        if choice in schema:
            options = [o for o in schema[choice] if resolve(o).get("type") != "null"]
            return minimal(options[0], name)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next(k for k in kind if k != "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: minimal(props.get(k, {"type": "string"}), k) for k in dict.fromkeys(schema.get("required", []))}
    if kind == "array":
        return [minimal(schema.get("items", {"type": "string"}), name) for _ in range(schema.get("minItems", 0))]
    if kind == "string":
        return text_for(schema, name)
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    return None


operations = {}
for path, item in doc["paths"].items():
    for method, op in item.items():
        operations[op["operationId"]] = (method.upper(), path, op)

client = AuthenticatedClient(base_url=base_url, token=api_key, raise_on_unexpected_status=False)
failures = 0
called = 0
for module_info in pkgutil.walk_packages(plystra_client.api.__path__, "plystra_client.api."):
    if module_info.ispkg:
        continue
    module = importlib.import_module(module_info.name)
    operation_id = module_info.name.rsplit(".", 1)[1]
    method, path, op = operations[operation_id]
    function = module.sync_detailed
    hints = typing.get_type_hints(function)
    kwargs = {}
    try:
        for p in inspect.signature(function).parameters.values():
            if p.name == "client":
                kwargs["client"] = client
            elif p.name == "body":
                model = typing.get_args(hints["body"]) or (hints["body"],)
                model = next(m for m in model if hasattr(m, "from_dict"))
                schema = op["requestBody"]["content"]["application/json"]["schema"]
                kwargs["body"] = model.from_dict(minimal(schema))
            elif p.default is inspect.Parameter.empty:
                # Reads in the demo Space; every other operation on ids that do not exist (nothing demo changes).
                base = re.sub(r"_(path|query)$", "", p.name)
                kwargs[p.name] = VALUES.get(base, MISSING) if method == "GET" else MISSING
    except Exception as e:  # a request the generated client cannot even build
        print(f"not ok - {operation_id}: the client could not build a request: {e!r}")
        failures += 1
        continue
    called += 1
    try:
        response = function(**kwargs)
    except Exception as e:
        print(f"not ok - {operation_id} ({method} {path}): the client failed on the answer: {e!r}")
        failures += 1
        continue
    status = int(response.status_code)
    documented = str(status) in op["responses"]
    if response.parsed is None or not documented:
        # (A credential in the answer, such as a created key, is not printed.)
        shown = re.sub(r"ply_(ak|at|rt)_[A-Za-z0-9_.-]+", r"ply_\1_[redacted]", response.content[:200].decode(errors="replace"))
        print(f"not ok - {operation_id} ({method} {path}): {status} was not read "
              f"({'undocumented status' if not documented else 'no model'}): {shown}")
        failures += 1
    else:
        print(f"ok - {operation_id} ({method} {path}): {status} read as {type(response.parsed).__name__}")
generated = {m.name.rsplit(".", 1)[1] for m in pkgutil.walk_packages(plystra_client.api.__path__, "plystra_client.api.")}
for operation_id in sorted(set(operations) - generated):
    method, path, _ = operations[operation_id]
    print(f"not ok - {operation_id} ({method} {path}): the generator left it out (target/contract/client-generate.log)")
print(f"# {len(operations)} operations in the document, {called} called, {failures} failures")
sys.exit(1 if failures or called != len(operations) else 0)
