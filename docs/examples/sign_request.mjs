#!/usr/bin/env node
// Send one signed request to the parser run deletion API as a tenant, and print the answer.
//
// Node 18+ (built-in crypto and fetch), no npm packages. The credentials come from the environment, never from
// the code:
//
//   export DELETER_API_URL=https://abc123defg.execute-api.us-east-1.amazonaws.com/v1   # the stack's ApiUrl
//   export DELETER_API_KEY=...                    # the tenant's API key
//   export DELETER_SIGNING_SECRET=whsec_...       # the tenant's request-signing secret
//
//   node sign_request.mjs DELETE /parser_runs/pr_123
//   node sign_request.mjs POST /deletions '{"parserRunIds": ["pr_1", "pr_2"]}'
//   node sign_request.mjs GET '/deletions/dr_01m8txz3dbf4pjzs66y9cq5jv4?limit=10'
//
// It prints the status (`HTTP 202`) on one line and the body after it, and exits 0 on a 2xx, 1 on any other
// answer, 2 when it cannot send the request at all.
//
// Signing contract v2, as Standard Webhooks (https://www.standardwebhooks.com) signs a message: the payload is
// `"{METHOD} {route path}"`, followed, for a request with a body, by one line feed and the body's exact bytes. The
// route path is the API's own path: no stage (`/v1`), no custom domain base path, no query string. The signature
// is `v1,` and the base64 HMAC-SHA256 of `"{webhook-id}.{webhook-timestamp}.{payload}"`, keyed with the
// base64-decoded secret (without its `whsec_` prefix).

import { createHmac, randomBytes } from "node:crypto";
import { pathToFileURL } from "node:url";

const CREDENTIALS = ["DELETER_API_URL", "DELETER_API_KEY", "DELETER_SIGNING_SECRET"];

/** `"{METHOD} {route path}"`, and for a request with a body, a line feed and the body's bytes. */
export function signedPayload(method, routePath, body = Buffer.alloc(0)) {
  const requestLine = Buffer.from(`${method.toUpperCase()} ${routePath}`, "utf8");
  return body.length ? Buffer.concat([requestLine, Buffer.from("\n"), body]) : requestLine;
}

/** The three Standard Webhooks headers that sign one request with the tenant's `whsec_` secret. */
export function signatureHeaders(secret, method, routePath, body = Buffer.alloc(0), options = {}) {
  // A new id for every request: the API serves a tenant's webhook-id once.
  const webhookId = options.webhookId ?? `msg_${randomBytes(16).toString("hex")}`;
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const signature = createHmac("sha256", key)
    .update(`${webhookId}.${timestamp}.`)
    .update(signedPayload(method, routePath, body))
    .digest("base64");
  return {
    "webhook-id": webhookId,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": `v1,${signature}`,
  };
}

/** Send `method route` (a path under the API, query string allowed) signed; resolves to `{status, body}`. */
export async function send({ apiUrl, apiKey, secret }, method, route, body) {
  method = method.toUpperCase();
  const bytes = body === undefined ? Buffer.alloc(0) : Buffer.from(body, "utf8");
  // What is signed is the path alone, percent-escapes decoded; the query string is sent but not signed.
  const routePath = decodeURIComponent(route.split("?")[0]);
  const headers = { "x-api-key": apiKey, ...signatureHeaders(secret, method, routePath, bytes) };
  if (bytes.length) {
    headers["content-type"] = "application/json";
  }
  // The exact bytes that were signed go out as the body: never re-serialize the JSON after signing.
  const answer = await fetch(apiUrl.replace(/\/+$/, "") + route, {
    method,
    headers,
    body: bytes.length ? bytes : undefined,
  });
  return { status: answer.status, body: await answer.text() };
}

async function main(argv) {
  if (![2, 3].includes(argv.length) || !argv[1].startsWith("/")) {
    console.error(`usage: sign_request.mjs METHOD ROUTE_PATH [JSON_BODY], with ${CREDENTIALS.join(", ")} set`);
    return 2;
  }
  const missing = CREDENTIALS.filter((name) => !process.env[name]);
  if (missing.length) {
    console.error(`set ${missing.join(", ")} first`);
    return 2;
  }
  const credentials = {
    apiUrl: process.env.DELETER_API_URL,
    apiKey: process.env.DELETER_API_KEY,
    secret: process.env.DELETER_SIGNING_SECRET,
  };
  let answer;
  try {
    answer = await send(credentials, argv[0], argv[1], argv[2]);
  } catch (error) {
    // No answer at all: the name does not resolve, nothing listens, ...
    console.error(`no answer: ${error.cause?.code ?? error.message}`);
    return 2;
  }
  console.log(`HTTP ${answer.status}`);
  console.log(answer.body);
  return answer.status >= 200 && answer.status < 300 ? 0 : 1;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
