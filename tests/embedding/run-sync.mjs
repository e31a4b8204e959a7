#!/usr/bin/env node
// Runs the TAP component under Node: jco transpiles it to ES modules, and
// preview2-shim provides WASI (outbound HTTP included). The test suite runs
// this script to check that the component works outside our wasmtime host
// and gives the same results.
//
// Usage: node run-sync.mjs <component.wasm> <work-dir> <request.json>
//
// <work-dir> is created if needed and receives the transpiled component
// (component.js, its core .wasm files, a package.json). <request.json>:
//
//   {
//     "settings": {                      // `settings` in jco's JS shape
//       "tapBaseUrl": "http://127.0.0.1:8080",
//       "createIncidents": false,
//       "knownCampaigns": [{"id": "...", "name": "..."}],
//       "alreadySent": ["m:...", "c:..."],
//       "freshThreats": ["..."], "queuedCampaigns": ["..."], "queuedThreats": ["..."],
//       "campaignAllowance": 10,
//       "threatForensicsAllowance": 10,
//       "credentials": {"principal": "...", "secret": "..."}  // or null / absent
//     },
//     "windows": [{"start": "2026-11-28T10:00:00Z", "end": "2026-11-28T10:05:00Z"}]
//   }
//
// Each window gets a fresh instance of the component (as our host gives
// each call a fresh store), and the windows run in request order.
//
// Output: stdout gets exactly one JSON line per window, in request order,
// and nothing else. A line is one of
//
//   {"ok": SyncResult}
//   {"err": {"tag": "unauthorized" | "forbidden" | "rate-limited" | "bad-request"
//                 | "server-error",
//            "val": {"endpoint": string, "status": number, "message": string}}}
//   {"err": {"tag": "bad-response" | "transport" | "invalid-input", "val": string}}
//
// SyncResult has jco's camelCase field names, in WIT order:
//
//   {"queryEndTime": string,
//    "objects": [{"kind": "indicator" | "event" | "campaign" | "malware"
//                         | "adversary" | "attack-pattern",
//                 "value": string,
//                 "typeName": string | null,
//                 "happenedAt": string | null,
//                 "description": string | null,
//                 "attributes": [{"name": string, "value": string}]}],
//    "relations": [{"a": number, "b": number}],
//    "rejections": [{"key": string, "reason": string, "section": string,
//                    "raw": string}],
//    "recordKeys": [{"key": string, "createdMs": number}],
//    "campaignsFetched": [{"id": string, "name": string}],
//    "messageEvents": [{"guid": string, "object": number}],
//    "unresolvedMessages": [{"guid": string, "object": number}],
//    "unresolvedCampaigns": [{"campaignId": string, "object": number}],
//    "enrichment": {"threatsEnriched": [string], "campaignsDeferred": [string],
//                   "threatsDeferred": [string]},
//    "verdicts": [{"threatId": string,
//                  "status": "active" | "cleared" | "false-positive",
//                  "threatTimeMs": number,
//                  "indicatorType": string, "indicatorValue": string}],
//    "counters": {"messagesDelivered": number, "messagesBlocked": number,
//                 "clicksPermitted": number, "clicksBlocked": number,
//                 "alreadySentSkipped": number, "falsePositives": number,
//                 "siemRequests": number, "campaignRequests": number,
//                 "campaignForensicsRequests": number,
//                 "threatForensicsRequests": number,
//                 "threatForensicsDeferred": number, "evidenceUsed": number,
//                 "evidenceDropped": number}}
//
// Conversions from jco's values: an option that is none (jco: undefined)
// becomes null; s64 (jco: BigInt; `createdMs` and `threatTimeMs`) becomes a JSON number;
// enum cases and variant tags stay the WIT names jco gives ("attack-pattern",
// "rate-limited"); lists keep the component's order.
//
// stderr gets the component's log lines (`[level] message key=value ...`,
// see host.mjs), whatever the component writes to its stdout or stderr, and
// this script's own messages (`run-sync: ...`).
//
// The sandbox: outbound HTTP only to the scheme, host and port of
// settings.tapBaseUrl (anything else fails with `HTTP-request-denied`); an
// empty environment, no arguments, no preopened directories, no sockets;
// the component's stdout goes to stderr.
//
// Exit status: 0 when every window produced a line (ok or err); 2 for bad
// arguments or a bad request file; 1 when transpiling or instantiating
// fails, the component imports something this script does not provide, or
// the component traps (the lines of the windows before it are already on
// stdout).

import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { resolve, join } from 'node:path';
import { pathToFileURL } from 'node:url';

import * as jco from '@bytecodealliance/jco-transpile';
import * as cli from '@bytecodealliance/preview2-shim/cli';
import * as clocks from '@bytecodealliance/preview2-shim/clocks';
import * as filesystem from '@bytecodealliance/preview2-shim/filesystem';
import * as http from '@bytecodealliance/preview2-shim/http';
import * as io from '@bytecodealliance/preview2-shim/io';
import * as random from '@bytecodealliance/preview2-shim/random';
import * as sockets from '@bytecodealliance/preview2-shim/sockets';

// The host side: `proofpoint:tap/host` and the outbound allowlist.
import * as host from './host.mjs';

const { writeAll } = host;

function fail(code, message) {
  writeAll(2, `run-sync: ${message}\n`);
  process.exit(code);
}

function describeError(error) {
  if (error instanceof Error) {
    return error.stack ?? `${error.name}: ${error.message}`;
  }
  try {
    return JSON.stringify(toJson(error));
  } catch {
    return String(error);
  }
}

/** jco's JS value as plain JSON: undefined -> null, BigInt -> number. */
function toJson(value, path = '$') {
  switch (typeof value) {
    case 'undefined':
      return null;
    case 'bigint': {
      const n = Number(value);
      if (!Number.isSafeInteger(n)) {
        throw new Error(`${path}: ${value} does not fit a JSON number exactly`);
      }
      return n;
    }
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (!Number.isFinite(value)) {
        throw new Error(`${path}: ${value} is not a JSON number`);
      }
      return value;
    case 'object':
      if (value === null) {
        return null;
      }
      if (Array.isArray(value) || ArrayBuffer.isView(value)) {
        return Array.from(value, (item, i) => toJson(item, `${path}[${i}]`));
      }
      return Object.fromEntries(
        Object.entries(value).map(([key, item]) => [key, toJson(item, `${path}.${key}`)]),
      );
    default:
      throw new Error(`${path}: unexpected ${typeof value} from the component`);
  }
}

function readRequest(request) {
  if (request === null || typeof request !== 'object' || Array.isArray(request)) {
    fail(2, 'the request must be a JSON object with "settings" and "windows"');
  }
  const { settings, windows } = request;
  if (settings === null || typeof settings !== 'object' || Array.isArray(settings)) {
    fail(2, 'request.settings must be an object');
  }
  if (typeof settings.tapBaseUrl !== 'string') {
    fail(2, 'request.settings.tapBaseUrl must be a string');
  }
  if (!Array.isArray(windows) || windows.length === 0) {
    fail(2, 'request.windows must be a non-empty array');
  }
  return {
    // jco lowers an option's none from undefined; accept null as well.
    settings: { ...settings, credentials: settings.credentials ?? undefined },
    windows: windows.map((window, i) => {
      if (
        window === null ||
        typeof window !== 'object' ||
        typeof window.start !== 'string' ||
        typeof window.end !== 'string'
      ) {
        fail(2, `request.windows[${i}] must be {"start": string, "end": string}`);
      }
      return { start: window.start, end: window.end };
    }),
  };
}

/** The `err` of a result-returning export, which jco throws wrapped in a
 * ComponentError; anything else thrown is a trap or a bug. */
function componentErrorPayload(error) {
  if (error instanceof Error && error.constructor?.name === 'ComponentError' && 'payload' in error) {
    return { isErr: true, payload: error.payload };
  }
  return { isErr: false };
}

const args = process.argv.slice(2);
if (args.length !== 3) {
  fail(2, 'usage: node run-sync.mjs <component.wasm> <work-dir> <request.json>');
}
const [componentPath, workDir, requestPath] = args.map((arg) => resolve(arg));

let requestText;
try {
  requestText = await readFile(requestPath, 'utf8');
} catch (error) {
  fail(2, `cannot read the request ${requestPath}: ${error.message}`);
}
let parsedRequest;
try {
  parsedRequest = JSON.parse(requestText);
} catch (error) {
  fail(2, `the request ${requestPath} is not JSON: ${error.message}`);
}
const { settings, windows } = readRequest(parsedRequest);

try {
  host.allowOrigin(settings.tapBaseUrl);
} catch (error) {
  fail(2, `request.settings.tapBaseUrl: ${error.message}`);
}

// The sandbox, before anything is instantiated.
cli._setEnv({});
cli._setArgs([]);
cli._setCwd(undefined);
filesystem._clearPreopens();
sockets._denyTcp();
sockets._denyUdp();
sockets._denyDnsLookup();

// Transpile in instantiation mode: the generated module imports nothing and
// exports `instantiate(getCoreModule, imports)`, so every import is granted
// here, explicitly, and each window can get a fresh instance.
const NAME = 'component';
let importNames;
let instantiate;
try {
  const transpiled = await jco.transpile(componentPath, {
    name: NAME,
    outDir: workDir,
    instantiation: 'async',
    // Keep the `err` of `sync` apart from traps: jco throws it as a
    // ComponentError whose `payload` is the sync-error.
    noComponentErrorWrapping: false,
    emitTypescriptDeclarations: false,
  });
  importNames = transpiled.imports;
  await mkdir(workDir, { recursive: true });
  await jco.writeFiles(transpiled.files);
  // The generated .js is an ES module; Node needs to be told so.
  await writeFile(join(workDir, 'package.json'), '{"type": "module"}\n');
  ({ instantiate } = await import(pathToFileURL(join(workDir, `${NAME}.js`)).href));
} catch (error) {
  fail(1, `cannot transpile ${componentPath}: ${describeError(error)}`);
}

// What each import is bound to. A WASI interface `wasi:<package>/<name>` is
// preview2-shim's `<package>` module's export `<name>` in camelCase, except
// for `proofpoint:tap/host` and the two the sandbox replaces.
const shims = { cli, clocks, filesystem, http, io, random, sockets };
const overrides = {
  'proofpoint:tap/host': { log: host.log, nowMs: host.nowMs },
  'wasi:http/outgoing-handler': host.outgoingHandler,
  'wasi:cli/stdout': { getStdout: () => cli.stderr.getStderr() },
};
const camel = (name) => name.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
const imports = {};
for (const name of importNames) {
  const unversioned = name.replace(/@.*$/, '');
  const wasi = /^wasi:([a-z-]+)\/([a-z-]+)$/.exec(unversioned);
  const binding = overrides[unversioned] ?? (wasi && shims[wasi[1]]?.[camel(wasi[2])]);
  if (!binding) {
    fail(1, `the component imports ${name}, which this runner does not provide`);
  }
  imports[name] = binding;
}

const coreModules = new Map();
const getCoreModule = (file) => {
  if (!coreModules.has(file)) {
    coreModules.set(file, readFile(join(workDir, file)).then((bytes) => WebAssembly.compile(bytes)));
  }
  return coreModules.get(file);
};

for (const [i, window] of windows.entries()) {
  const where = `window ${i} (${window.start}/${window.end})`;
  let connector;
  try {
    const instance = await instantiate(getCoreModule, imports);
    // Any 0.5.x: a patch release only adds (see the WIT's versioning rule).
    const key = Object.keys(instance).find((k) => /^proofpoint:tap\/connector@0\.5\.\d+$/.test(k));
    connector = key && instance[key];
  } catch (error) {
    fail(1, `${where}: cannot instantiate the component: ${describeError(error)}`);
  }
  if (typeof connector?.sync !== 'function') {
    fail(1, 'the component exports no proofpoint:tap/connector@0.5.x with sync (a build for another contract version?)');
  }
  let outcome;
  try {
    outcome = { ok: connector.sync(settings, window) };
  } catch (error) {
    const { isErr, payload } = componentErrorPayload(error);
    if (!isErr) {
      fail(1, `${where}: the component trapped or the call failed: ${describeError(error)}`);
    }
    outcome = { err: payload };
  }
  let line;
  try {
    line = JSON.stringify(toJson(outcome));
  } catch (error) {
    fail(1, `${where}: cannot convert the result to JSON: ${error.message}`);
  }
  writeAll(1, line + '\n');
}
process.exit(0);
