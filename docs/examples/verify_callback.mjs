#!/usr/bin/env node
// Verify the completion callbacks the parser run deletion API sends a tenant, and a small server that takes them.
//
// Node 18+, no npm packages. The tenant's callback-signing secret (`whsec_...`, handed over with its API key;
// never its request-signing secret) comes from the environment:
//
//   export DELETER_CALLBACK_SIGNING_SECRET=whsec_...
//
//   # a server on loopback that verifies each callback: 204 and one JSON line on stdout for a good one,
//   # 400 for anything else (put it behind your own https front, or use verifyCallback() in your framework)
//   node verify_callback.mjs serve --port 8080
//
//   # or check a saved delivery: its headers as a JSON object, and its body's exact bytes
//   node verify_callback.mjs check headers.json body.json
//
// `check` prints the event and exits 0 when the callback verifies, prints why not and exits 1 when it does not.
//
// A callback is a Standard Webhooks (https://www.standardwebhooks.com) message: `webhook-signature` holds one or
// more space-separated `v1,<base64 HMAC-SHA256>` of `"{webhook-id}.{webhook-timestamp}.{raw body}"`, keyed with
// the base64-decoded secret (without its `whsec_` prefix); one of them must match. Verify the raw bytes, before
// parsing them. Deliveries are at least once, and every retry of one completion carries the same `webhook-id`:
// de-duplicate on it.

import { createHmac, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { pathToFileURL } from "node:url";

const SECRET_VARIABLE = "DELETER_CALLBACK_SIGNING_SECRET";
// How far the timestamp may be from now, either way: an old capture cannot be replayed later.
export const TOLERANCE_S = 300;
const MAX_BODY_BYTES = 64 * 1024; // a completion event is well under 1 KiB

/** The callback is not signed with the tenant's callback-signing secret, or not recently. Says why. */
export class CallbackRejected extends Error {}

/**
 * The event in `body` (a Buffer: the raw bytes received) when `headers` sign it with `secret` within
 * `toleranceS` of `now` (Unix seconds); else throws `CallbackRejected`. Header names are matched
 * case-insensitively.
 */
export function verifyCallback(headers, body, secret, { toleranceS = TOLERANCE_S, now } = {}) {
  const lowered = Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));
  const webhookId = lowered["webhook-id"] ?? "";
  const timestamp = lowered["webhook-timestamp"] ?? "";
  const signatures = lowered["webhook-signature"] ?? "";
  if (!webhookId || !timestamp || !signatures) {
    throw new CallbackRejected("missing webhook-id, webhook-timestamp or webhook-signature");
  }
  if (!/^[0-9]+$/.test(timestamp)) {
    throw new CallbackRejected("webhook-timestamp is not Unix seconds");
  }
  const moment = now ?? Date.now() / 1000;
  if (Math.abs(moment - Number(timestamp)) > toleranceS) {
    throw new CallbackRejected(`webhook-timestamp is more than ${toleranceS} seconds from now`);
  }
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = createHmac("sha256", key).update(`${webhookId}.${timestamp}.`).update(body).digest();
  // During the sender's secret rotation there is one signature per secret: any one of them will do.
  const matches = signatures
    .split(" ")
    .filter((token) => token.startsWith("v1,"))
    .map((token) => Buffer.from(token.slice(3), "base64"))
    .some((candidate) => candidate.length === expected.length && timingSafeEqual(candidate, expected));
  if (!matches) {
    throw new CallbackRejected("no signature matches: the body was changed, or it is signed with another secret");
  }
  return JSON.parse(body.toString("utf8"));
}

/** Answer each verified callback 204 (once per `webhook-id`), anything else 400. */
export function serve(secret, host, port) {
  const seen = new Set();
  const server = createServer((request, response) => {
    const chunks = [];
    let size = 0;
    request.on("data", (chunk) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    request.on("end", () => {
      if (request.method !== "POST" || size > MAX_BODY_BYTES) {
        response.writeHead(request.method !== "POST" ? 405 : 413).end();
        return;
      }
      let event;
      try {
        event = verifyCallback(request.headers, Buffer.concat(chunks), secret);
      } catch (error) {
        console.error(`rejected: ${error.message}`);
        response.writeHead(400).end();
        return;
      }
      const webhookId = request.headers["webhook-id"];
      if (!seen.has(webhookId)) {
        // A retry of a delivery already handled is acknowledged, not acted on again.
        seen.add(webhookId);
        console.log(JSON.stringify({ webhookId, event }));
      }
      response.writeHead(204).end();
    });
  });
  server.listen(port, host, () => {
    console.log(`listening on http://${host}:${server.address().port}/`);
  });
  return server;
}

function main(argv) {
  const secret = process.env[SECRET_VARIABLE];
  const [command, ...rest] = argv;
  if (command === "serve") {
    const option = (name, fallback) => (rest.includes(name) ? rest[rest.indexOf(name) + 1] : fallback);
    if (!secret) return missingSecret();
    serve(secret, option("--host", "127.0.0.1"), Number(option("--port", "8080")));
    return undefined; // the server keeps the process alive
  }
  if (command !== "check" || rest.length !== 2) {
    console.error("usage: verify_callback.mjs serve [--host HOST] [--port PORT] | check HEADERS_JSON BODY_FILE");
    return 2;
  }
  if (!secret) return missingSecret();
  const headers = JSON.parse(readFileSync(rest[0], "utf8"));
  try {
    console.log(JSON.stringify(verifyCallback(headers, readFileSync(rest[1]), secret)));
    return 0;
  } catch (error) {
    if (!(error instanceof CallbackRejected || error instanceof SyntaxError)) throw error;
    console.log(`rejected: ${error.message}`);
    return 1;
  }
}

function missingSecret() {
  console.error(`set ${SECRET_VARIABLE} first`);
  return 2;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const code = main(process.argv.slice(2));
  if (code !== undefined) process.exitCode = code;
}
