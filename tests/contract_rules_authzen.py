"""AuthZEN's request schemas in the OpenAPI document agree with the REST front, which reads those requests itself.

Each request below is checked twice: against the request body schema the document gives its route (jsonschema,
draft 2020-12, references resolved in the document), and by the running server, which either answers it or refuses
it as invalid (400 VALIDATION_FAILED). The two must agree on every request.

Usage: contract_rules_authzen.py OPENAPI_JSON BASE_URL API_KEY
"""

import json
import sys
import urllib.error
import urllib.request

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

document, base_url, api_key = sys.argv[1], sys.argv[2], sys.argv[3]
with open(document) as f:
    doc = json.load(f)
registry = Registry().with_resource("urn:plystra", Resource.from_contents(doc, default_specification=DRAFT202012))


def validator(path):
    pointer = path.replace("~", "~0").replace("/", "~1")
    ref = f"urn:plystra#/paths/{pointer}/post/requestBody/content/application~1json/schema"
    return Draft202012Validator({"$ref": ref}, registry=registry)


BOB = {"type": "user", "id": "user_bob"}
APPROVE = {"name": "approve"}
INVOICE = {"type": "invoice", "id": "invoice_001"}
ACME = {"space_id": "space_acme"}


def evaluation(subject=BOB, action=APPROVE, resource=INVOICE, context=ACME, **extra):
    parts = {"subject": subject, "action": action, "resource": resource, "context": context, **extra}
    return {k: v for k, v in parts.items() if v is not None}


CASES = {
    "/access/v1/evaluation": [
        ("a whole evaluation", evaluation()),
        ("the Space in the subject's properties", evaluation(subject={**BOB, "properties": ACME}, context=None)),
        ("an unknown field (ignored)", evaluation(tenant="acme")),
        ("no subject id", evaluation(subject={"type": "user"})),
        ("an empty subject id", evaluation(subject={"type": "user", "id": ""})),
        ("a subject that is not a user", evaluation(subject={"type": "group", "id": "g"})),
        ("no action name", evaluation(action={})),
        ("a resource without its id", evaluation(resource={"type": "invoice"})),
        ("a context that is not an object", evaluation(context="space_acme")),
    ],
    "/access/v1/evaluations": [
        ("defaults and evaluations", {**evaluation(action=None, resource=None),
                                      "evaluations": [{"action": APPROVE, "resource": INVOICE}]}),
        ("every part in every evaluation", {"evaluations": [evaluation(), evaluation(action={"name": "read"})]}),
        ("no evaluations: one of the top-level parts", {**evaluation(), "evaluations": []}),
        ("nothing", {}),
        ("no evaluations and no resource", evaluation(resource=None)),
        ("an evaluation without a subject, none at the top", {"evaluations": [{"action": APPROVE,
                                                                               "resource": INVOICE}]}),
        ("a null top-level subject", {"subject": None, "evaluations": [{"action": APPROVE, "resource": INVOICE}]}),
    ],
    "/access/v1/search/subject": [
        ("a subject search", {"subject": {"type": "user"}, "action": APPROVE, "resource": INVOICE}),
        ("a subject search without the resource's id", {"subject": {"type": "user"}, "action": APPROVE,
                                                        "resource": {"type": "invoice"}}),
        ("a subject search without an action", {"subject": {"type": "user"}, "resource": INVOICE}),
    ],
    "/access/v1/search/resource": [
        ("a resource search", {"subject": BOB, "action": APPROVE, "resource": {"type": "invoice"}, "context": ACME}),
        ("a resource search without the subject's id", {"subject": {"type": "user"}, "action": APPROVE,
                                                         "resource": {"type": "invoice"}}),
    ],
    "/access/v1/search/action": [
        ("an action search", {"subject": BOB, "resource": INVOICE, "context": ACME}),
        ("an action search without the resource's id", {"subject": BOB, "resource": {"type": "invoice"}}),
    ],
}

disagreements = 0
count = 0
for path, cases in CASES.items():
    schema = validator(path)
    for name, case in cases:
        count += 1
        in_document = schema.is_valid(case)
        request = urllib.request.Request(base_url + path, data=json.dumps(case).encode(), method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "Authorization": f"Bearer {api_key}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                status, body = answer.status, answer.read()
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read()
        refused = status == 400
        if status >= 500:
            print(f"not ok - {path}: {name}: the server answered {status}")
            disagreements += 1
            continue
        verdict = "ok" if in_document != refused else "not ok"
        disagreements += verdict != "ok"
        print(f"{verdict} - {path}: {name}: document {'accepts' if in_document else 'refuses'}, "
              f"the server answers {status}")
print(f"# {count} requests, {disagreements} disagreements")
sys.exit(1 if disagreements else 0)
