#!/usr/bin/env bash
# The REST front's published contract, checked by tools nobody here wrote:
#   1. openapi-spec-validator accepts plystra_http/openapi.json (the document the server serves; the openapi
#      test of plystra_http keeps the file equal to it) with no error.
# The tools come from scripts/lib.sh ensure_python_tools (target/python-tools).
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
n=0
fails=0
tap() { # tap OK|FAIL description
    n=$((n + 1))
    if [ "$1" = OK ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi
}
echo "contract check:"

out=$("$PYTHON_TOOLS_VENV/bin/openapi-spec-validator" --validation-errors all plystra_http/openapi.json 2>&1)
if [ $? -eq 0 ]; then
    tap OK "openapi-spec-validator accepts plystra_http/openapi.json"
else
    printf '%s\n' "$out" | head -n 40
    tap FAIL "openapi-spec-validator: $(printf '%s\n' "$out" | grep -c 'Validation Error') errors in plystra_http/openapi.json"
fi

echo "1..$n"
[ "$fails" -eq 0 ]
