"""Checks an OpenAPI document and answers against it.

    validate.py DOC.json SAMPLES.json

DOC is validated as OpenAPI 3.1 by openapi-spec-validator. SAMPLES is a list of
{"method", "path", "status", "body"}: each body must match the schema the document gives for
that operation's answer with that status (else its "default" answer), the document's
components resolving the references. Prints what failed; exits non-zero if anything did.
"""

import json
import sys
from urllib.parse import quote

from jsonschema import Draft202012Validator
from openapi_spec_validator import validate


def pointer(*parts):
    return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def main():
    with open(sys.argv[1]) as f:
        doc = json.load(f)
    with open(sys.argv[2]) as f:
        samples = json.load(f)
    validate(doc)
    failures = []
    for s in samples:
        op = doc["paths"].get(s["path"], {}).get(s["method"])
        if op is None:
            failures.append(f"{s['method']} {s['path']}: not in the document")
            continue
        status = str(s["status"])
        key = status if status in op["responses"] else "default"
        where = pointer("paths", s["path"], s["method"], "responses", key, "content",
                        "application/json", "schema")
        # The whole document as the root schema, so "#/components/..." references resolve.
        root = dict(doc)
        root["$ref"] = "#" + quote(where, safe="/~")
        errors = list(Draft202012Validator(root).iter_errors(s["body"]))
        for e in errors[:3]:
            failures.append(f"{s['method']} {s['path']} {status}: {e.message} at {list(e.absolute_path)}")
        if not errors:
            print(f"ok {s['method']} {s['path']} {status}")
    for f in failures:
        print("FAIL " + f)
    sys.exit(1 if failures else 0)


main()
