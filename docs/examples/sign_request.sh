#!/usr/bin/env bash
# Send one signed request to the parser run deletion API as a tenant, with curl and openssl, and print the answer.
#
# The credentials come from the environment, never from the script:
#
#   export DELETER_API_URL=https://abc123defg.execute-api.us-east-1.amazonaws.com/v1   # the stack's ApiUrl
#   export DELETER_API_KEY=...                    # the tenant's API key
#   export DELETER_SIGNING_SECRET=whsec_...       # the tenant's request-signing secret
#
#   ./sign_request.sh DELETE /parser_runs/pr_123
#   ./sign_request.sh POST /deletions '{"parserRunIds": ["pr_1", "pr_2"]}'
#   ./sign_request.sh GET '/deletions/dr_01m8txz3dbf4pjzs66y9cq5jv4?limit=10'
#
# It prints the status (HTTP 202) on one line and the body after it, and exits 0 on a 2xx, 1 on any other answer,
# 2 when it cannot send the request at all. sign_request below is docs/tenancy.md's, word for word.
set -euo pipefail

# sign-request: curl options that sign one request as a tenant (Standard Webhooks v1, HMAC-SHA256).
# Usage: SECRET=whsec_... sign_request METHOD ROUTE_PATH [BODY]
sign_request() {
  local id ts payload key sig
  id="msg_$(openssl rand -hex 16)"
  ts="$(date +%s)"
  payload="$1 $2${3:+$'\n'$3}"
  key="$(printf '%s' "${SECRET#whsec_}" | openssl base64 -d -A | od -An -v -tx1 | tr -d ' \n')"
  sig="$(printf '%s' "$id.$ts.$payload" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key" -binary | openssl base64 -A)"
  printf -- '-H webhook-id:%s -H webhook-timestamp:%s -H webhook-signature:v1,%s' "$id" "$ts" "$sig"
}

if [ $# -lt 2 ] || [ $# -gt 3 ] || [ "${2#/}" = "$2" ]; then
  echo "usage: sign_request.sh METHOD ROUTE_PATH [JSON_BODY], with DELETER_API_URL, DELETER_API_KEY and DELETER_SIGNING_SECRET set" >&2
  exit 2
fi
missing=()
for name in DELETER_API_URL DELETER_API_KEY DELETER_SIGNING_SECRET; do
  if [ -z "${!name:-}" ]; then missing+=("$name"); fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "set ${missing[*]} first" >&2
  exit 2
fi

method="$(printf '%s' "$1" | tr '[:lower:]' '[:upper:]')"
route="$2"
route_path="${route%%\?*}" # the query string is sent, not signed (a valid id never needs a percent-escape)
SECRET="$DELETER_SIGNING_SECRET"
options=(-sS -X "$method" -H "x-api-key: $DELETER_API_KEY" -w '\n%{http_code}')
if [ $# -eq 3 ]; then
  # The exact bytes that were signed go out as the body (--data-binary; -d would strip line breaks).
  options+=(-H 'content-type: application/json' --data-binary "$3")
fi
# sign_request prints three -H options; none of their values holds a space, so they split on whitespace.
read -r -a signature <<<"$(sign_request "$method" "$route_path" "${3-}")"
if ! answer="$(curl "${options[@]}" "${signature[@]}" "${DELETER_API_URL%/}$route")"; then
  echo "no answer from ${DELETER_API_URL%/}$route" >&2
  exit 2
fi
status="${answer##*$'\n'}"
printf 'HTTP %s\n%s\n' "$status" "${answer%$'\n'*}"
[ "${status:0:1}" = 2 ]
