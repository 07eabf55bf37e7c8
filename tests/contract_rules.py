"""The decision contract's rules in the OpenAPI document agree with the extension's request parser.

Each request below is checked twice: against the document's schema for it (`AuthzRequest` for a decision,
`AuthzBatchRequest` for a batch; jsonschema, draft 2020-12, references resolved in the document), and by the
extension (`plystra.check`, `plystra.check_batch`) on a database with the demo data, which either answers or refuses
the request as invalid (SQLSTATE 22023). The two must agree on every request.

Usage: contract_rules.py OPENAPI_JSON PG_HOST PG_PORT DATABASE
"""

import json
import os
import subprocess
import sys

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

document, host, port, database = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
with open(document) as f:
    doc = json.load(f)
registry = Registry().with_resource("urn:plystra", Resource.from_contents(doc, default_specification=DRAFT202012))


def validator(schema):
    return Draft202012Validator({"$ref": f"urn:plystra#/components/schemas/{schema}"}, registry=registry)


CHECK = ("plystra.check", validator("AuthzRequest"))
BATCH = ("plystra.check_batch", validator("AuthzBatchRequest"))

BOB = {"user_id": "user_bob", "member_id": "member_finance_reviewer", "user_member_id": "um_bob_finance_reviewer",
       "space_id": "space_acme"}
ON = {"resource_type": "invoice", "resource_id": "invoice_001"}


def request(actor=BOB, action="approve", **resource):
    r = {"actor": actor, **(resource if resource else ON)}
    if action is not None:
        r["action"] = action
    return r


def batch(*items, actor=BOB):
    return {"actor": actor, "items": list(items)}


ITEM = {"resource_type": "invoice", "resource_id": "invoice_001", "action": "approve"}

DECISIONS = [
    ("the whole actor tuple, a flat resource", request()),
    ("the resource as {type, id}", request(resource={"type": "invoice", "id": "invoice_001"})),
    ("the resource's type flat, its id in resource", request(resource_type="invoice", resource={"id": "invoice_001"})),
    ("a null flat type beside resource.type", request(resource_type=None, resource={"type": "invoice", "id": "invoice_001"})),
    ("no action", request(action=None)),
    ("an empty action", request(action="")),
    ("no resource id", request(resource_type="invoice")),
    ("an empty resource id", request(resource_type="invoice", resource_id="")),
    ("the actor by its User alone", request(actor={"user_id": "user_bob"})),
    ("the actor by its User in a Space", request(actor={"user_id": "user_bob", "space_id": "space_acme"})),
    ("the actor by its User, its Member null", request(actor={"user_id": "user_bob", "member_id": None})),
    ("a Member without a binding or Space", request(actor={"user_id": "user_bob", "member_id": "member_finance_reviewer"})),
    ("a binding named by its alias", request(actor={**{k: v for k, v in BOB.items() if k != "user_member_id"},
                                                     "binding_id": "um_bob_finance_reviewer"})),
    ("a binding without its Space", request(actor={k: v for k, v in BOB.items() if k != "space_id"})),
    ("a tuple without its User", request(actor={k: v for k, v in BOB.items() if k != "user_id"})),
    ("an empty user id", request(actor={"user_id": ""})),
    ("inline actor metadata with the User alone", request(actor={"user_id": "user_bob", "user_status": "active"})),
    ("an unknown actor field", request(actor={**BOB, "role": "admin"})),
    ("an unknown top-level field", {**request(), "tenant": "acme"}),
]
BATCHES = [
    ("a batch of one item", batch(ITEM)),
    ("a batch item with its resource as {type, id}", batch({"resource": {"type": "invoice", "id": "invoice_001"},
                                                            "action": "approve"})),
    ("a batch item without an action", batch({"resource_type": "invoice", "resource_id": "invoice_001"})),
    ("a batch item without a resource id", batch({"resource_type": "invoice", "action": "approve"})),
    ("a batch without items", batch()),
    ("a batch of 1000 items", batch(*[ITEM] * 1000)),
    ("a batch of 1001 items", batch(*[ITEM] * 1001)),
    ("a batch whose actor is a Member without a binding", batch(ITEM, actor={"user_id": "user_bob",
                                                                             "member_id": "member_finance_reviewer"})),
]
CASES = [(name, CHECK, case) for name, case in DECISIONS] + [(name, BATCH, case) for name, case in BATCHES]

env = dict(os.environ, PGOPTIONS="-c plystra.audit_mode=off -c client_min_messages=warning")
disagreements = 0
for name, (function, schema), case in CASES:
    in_document = schema.is_valid(case)
    # (psql interpolates :'doc' in its input, not in -c.)
    run = subprocess.run(
        ["psql", "-X", "-q", "-At", "-h", host, "-p", port, "-U", "postgres", "-d", database,
         "-v", "VERBOSITY=sqlstate", "-v", "doc=" + json.dumps(case)],
        input=f"SELECT left({function}(:'doc')::text, 40);\n", capture_output=True, text=True, env=env)
    refused = "22023" in run.stderr
    if run.returncode != 0 and not refused:
        print(f"not ok - {name}: {function} failed otherwise: {run.stderr.strip()}")
        disagreements += 1
        continue
    parsed = not refused
    verdict = "ok" if parsed == in_document else "not ok"
    disagreements += verdict != "ok"
    print(f"{verdict} - {name}: document {'accepts' if in_document else 'refuses'}, "
          f"{function} {'answers' if parsed else 'refuses (22023)'}")
print(f"# {len(CASES)} requests, {disagreements} disagreements")
sys.exit(1 if disagreements else 0)
