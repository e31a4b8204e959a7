#!/usr/bin/env node
// Runs the TAP component under Node: jco transpiles it to ES modules, and
// preview2-shim provides WASI (outbound HTTP included). The test suite runs
// this script to check that the component works outside our wasmtime host
// and gives the same results.
//
// Usage: node run-sync.mjs <component.wasm> <work-dir> <request.json>
//
// <work-dir> is created if needed and receives the transpiled component
// (component.js, its core .wasm files, a package.json). <request.json>
// asks for `sync` calls (settings and windows), a `read-people` call
// (people), or both:
//
//   {
//     "settings": {                      // `settings` in jco's JS shape
//       "tapBaseUrl": "http://127.0.0.1:8080",
//       "createIncidents": false,
//       "knownCampaigns": [{"id": "...", "name": "..."}],
//       "freshThreats": ["..."], "queuedCampaigns": ["..."], "queuedThreats": ["..."],
//       "alreadySent": ["m:...", "c:..."],
//       "campaignAllowance": 10,
//       "threatForensicsAllowance": 10,
//       "credentials": {"principal": "...", "secret": "..."},  // or null / absent
//       "summarisedThreats": [{"threatId": "...",
//                              "named": [{"kind": "adversary", "name": "..."}]}],
//       "queuedSummaries": [{"threatId": "...", "indicatorType": "URL",
//                            "indicatorValue": "..."}],
//       "threatSummaryAllowance": 10,
//       "people": [{"email": "...", "veryAttacked": 2400,  // or null / absent
//                   "topClicker": false, "vip": true}]
//     },
//     "windows": [{"start": "2026-11-28T10:00:00Z", "end": "2026-11-28T10:05:00Z"}],
//     "people": {
//       "access": {"tapBaseUrl": "http://127.0.0.1:8080",
//                  "credentials": {"principal": "...", "secret": "..."}},  // or null / absent
//       "request": {"windowDays": 30, "veryAttackedAllowance": 50,
//                   "topClickersAllowance": 50}
//     }
//   }
//
// "settings" and "windows" (non-empty) come together or not at all;
// "people" is optional; at least one of the two must be there. Every field
// shown is required except the options (`credentials`, `veryAttacked`),
// and no other field is accepted: jco reads a missing number as 0 and a
// missing bool as false, so a misspelt field would otherwise pass silently.
// Numbers are u32 (integers 0 ..= 4294967295); `kind` is an `object-kind`
// case ("indicator", "event", "campaign", "malware", "adversary",
// "attack-pattern").
//
// Each call gets a fresh instance of the component (as our host gives each
// call a fresh store): the windows run in request order, then read-people.
//
// Output: stdout gets exactly one JSON line per window, in request order,
// then one line for "people" when it was asked for, and nothing else. A
// window's line is one of
//
//   {"ok": SyncResult}
//   {"err": SyncError}
//
// and the people line is
//
//   {"people": {"veryAttacked": {"ok": PeopleList} | {"err": SyncError},
//               "topClickers": {"ok": PeopleList} | {"err": SyncError}}}
//
// where SyncError is one of
//
//   {"tag": "unauthorized" | "forbidden" | "rate-limited" | "bad-request"
//         | "server-error",
//    "val": {"endpoint": string, "status": number, "message": string}}
//   {"tag": "bad-response" | "transport" | "invalid-input", "val": string}
//
// PeopleList is
//
//   {"interval": string,
//    "people": [{"emails": [string], "vip": boolean, "score": number}],
//    "complete": boolean, "requests": number}
//
// and SyncResult has jco's camelCase field names, in WIT order:
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
//                   "threatsDeferred": [string],
//                   "threatsSummarised": [{"threatId": string,
//                                          "named": [{"kind": string, "name": string}]}],
//                   "summariesDeferred": [{"threatId": string, "indicatorType": string,
//                                          "indicatorValue": string}]},
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
//                 "evidenceDropped": number, "threatSummaryRequests": number,
//                 "threatSummariesDeferred": number,
//                 "peopleMarkedEvents": number}}
//
// Conversions from jco's values: an option that is none (jco: undefined)
// becomes null; s64 (jco: BigInt; `createdMs` and `threatTimeMs`) becomes a
// JSON number; a `result` inside a record (jco: {tag: "ok" | "err", val})
// becomes {"ok": val} or {"err": val}, as the result of `sync` does; enum
// cases and variant tags stay the WIT names jco gives ("attack-pattern",
// "rate-limited"); lists keep the component's order.
//
// stderr gets the component's log lines (`[level] message key=value ...`,
// see host.mjs), whatever the component writes to its stdout or stderr, and
// this script's own messages (`run-sync: ...`).
//
// The sandbox: outbound HTTP only to the scheme, host and port of the
// call's TAP base URL (settings.tapBaseUrl for a window,
// people.access.tapBaseUrl for read-people; anything else fails with
// `HTTP-request-denied`); an empty environment, no arguments, no preopened
// directories, no sockets; the component's stdout goes to stderr.
//
// Exit status: 0 when every call produced a line; 2 for bad arguments or a
// bad request file; 1 when transpiling or instantiating fails, the
// component imports something this script does not provide or exports no
// 0.6.x connector, or the component traps (the lines of the calls before it
// are already on stdout).

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

// The shapes a request may hold, as jco lowers them: `string`, `bool`,
// `u32`, {enum: [cases]}, {list: T}, {option: T} (null or absent: none) and
// {record: {field: T, ...}} (every field required unless an option, no
// other field allowed).
const U32_MAX = 0xffff_ffff;
const OBJECT_KINDS = ['indicator', 'event', 'campaign', 'malware', 'adversary', 'attack-pattern'];
const CREDENTIALS = { record: { principal: 'string', secret: 'string' } };
const SETTINGS = {
  record: {
    tapBaseUrl: 'string',
    createIncidents: 'bool',
    knownCampaigns: { list: { record: { id: 'string', name: 'string' } } },
    freshThreats: { list: 'string' },
    queuedCampaigns: { list: 'string' },
    queuedThreats: { list: 'string' },
    alreadySent: { list: 'string' },
    campaignAllowance: 'u32',
    threatForensicsAllowance: 'u32',
    credentials: { option: CREDENTIALS },
    summarisedThreats: {
      list: {
        record: {
          threatId: 'string',
          named: { list: { record: { kind: { enum: OBJECT_KINDS }, name: 'string' } } },
        },
      },
    },
    queuedSummaries: {
      list: { record: { threatId: 'string', indicatorType: 'string', indicatorValue: 'string' } },
    },
    threatSummaryAllowance: 'u32',
    people: {
      list: {
        record: { email: 'string', veryAttacked: { option: 'u32' }, topClicker: 'bool', vip: 'bool' },
      },
    },
  },
};
const WINDOW = { record: { start: 'string', end: 'string' } };
const PEOPLE = {
  record: {
    access: { record: { tapBaseUrl: 'string', credentials: { option: CREDENTIALS } } },
    request: {
      record: { windowDays: 'u32', veryAttackedAllowance: 'u32', topClickersAllowance: 'u32' },
    },
  },
};

const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);

/** `value` checked against `shape` and made what jco lowers: options that
 * are none become undefined. Fails (exit 2) naming the first bad field. */
function checked(value, shape, path) {
  const wrong = (what) =>
    fail(2, `${path} must be ${what}, got ${(JSON.stringify(value) ?? 'nothing').slice(0, 80)}`);
  if (shape === 'string') {
    return typeof value === 'string' ? value : wrong('a string');
  }
  if (shape === 'bool') {
    return typeof value === 'boolean' ? value : wrong('true or false');
  }
  if (shape === 'u32') {
    return Number.isInteger(value) && value >= 0 && value <= U32_MAX
      ? value
      : wrong(`an integer from 0 to ${U32_MAX}`);
  }
  if (shape.enum) {
    return shape.enum.includes(value) ? value : wrong(`one of ${shape.enum.join(', ')}`);
  }
  if (shape.list) {
    if (!Array.isArray(value)) {
      wrong('an array');
    }
    return value.map((item, i) => checked(item, shape.list, `${path}[${i}]`));
  }
  if (shape.option) {
    return value === null || value === undefined ? undefined : checked(value, shape.option, path);
  }
  if (!isObject(value)) {
    wrong('an object');
  }
  const fields = shape.record;
  for (const key of Object.keys(value)) {
    if (!Object.hasOwn(fields, key)) {
      fail(2, `${path} has no field "${key}" (expected ${Object.keys(fields).join(', ')})`);
    }
  }
  const result = {};
  for (const [key, field] of Object.entries(fields)) {
    if (!Object.hasOwn(value, key) && !field.option) {
      fail(2, `${path}.${key} is missing`);
    }
    result[key] = checked(value[key], field, `${path}.${key}`);
  }
  return result;
}

/** The calls a request asks for: `sync` per window, then `read-people`.
 * Each is {what, tapBaseUrl, field, exportName, args}. */
function readRequest(request) {
  if (!isObject(request)) {
    fail(2, 'the request must be a JSON object with "settings" and "windows", or "people", or all three');
  }
  for (const key of Object.keys(request)) {
    if (!['settings', 'windows', 'people'].includes(key)) {
      fail(2, `the request has no field "${key}" (expected settings, windows, people)`);
    }
  }
  const { settings, windows, people } = request;
  if ((settings === undefined) !== (windows === undefined)) {
    fail(2, 'request.settings and request.windows come together (or both are left out)');
  }
  if (settings === undefined && people === undefined) {
    fail(2, 'the request asks for nothing: give "settings" and "windows", or "people"');
  }
  const calls = [];
  if (settings !== undefined) {
    const syncSettings = checked(settings, SETTINGS, 'request.settings');
    if (!Array.isArray(windows) || windows.length === 0) {
      fail(2, 'request.windows must be a non-empty array');
    }
    windows.forEach((window, i) => {
      const { start, end } = checked(window, WINDOW, `request.windows[${i}]`);
      calls.push({
        what: `window ${i} (${start}/${end})`,
        tapBaseUrl: syncSettings.tapBaseUrl,
        field: 'request.settings.tapBaseUrl',
        exportName: 'sync',
        args: [syncSettings, { start, end }],
      });
    });
  }
  if (people !== undefined) {
    const { access, request: peopleRequest } = checked(people, PEOPLE, 'request.people');
    calls.push({
      what: 'read-people',
      tapBaseUrl: access.tapBaseUrl,
      field: 'request.people.access.tapBaseUrl',
      exportName: 'readPeople',
      args: [access, peopleRequest],
    });
  }
  return calls;
}

/** jco's `result` inside a record, {tag, val}, as {ok: val} / {err: val}. */
function nestedResult(value, path) {
  if (isObject(value) && (value.tag === 'ok' || value.tag === 'err') && 'val' in value) {
    return { [value.tag]: value.val };
  }
  throw new Error(`${path} is not a result as jco gives one`);
}

/** `read-people`'s answer as its output line. */
function peopleLine(answer) {
  return {
    people: {
      veryAttacked: nestedResult(answer?.veryAttacked, 'veryAttacked'),
      topClickers: nestedResult(answer?.topClickers, 'topClickers'),
    },
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
const calls = readRequest(parsedRequest);

// Every call's base URL must be one the allowlist can hold; each call
// allows its own (below) before it runs.
for (const call of calls) {
  try {
    host.allowOrigin(call.tapBaseUrl);
  } catch (error) {
    fail(2, `${call.field}: ${error.message}`);
  }
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
// here, explicitly, and each call can get a fresh instance.
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

// Any 0.6.x: a patch release only adds (see the WIT's versioning rule).
const CONNECTOR = /^proofpoint:tap\/connector@0\.6\.\d+$/;

for (const { what, tapBaseUrl, exportName, args: callArgs } of calls) {
  let connector;
  try {
    const instance = await instantiate(getCoreModule, imports);
    const key = Object.keys(instance).find((k) => CONNECTOR.test(k));
    connector = key && instance[key];
  } catch (error) {
    fail(1, `${what}: cannot instantiate the component: ${describeError(error)}`);
  }
  if (typeof connector?.sync !== 'function' || typeof connector?.readPeople !== 'function') {
    fail(
      1,
      'the component exports no proofpoint:tap/connector@0.6.x with sync and read-people ' +
        '(a build for another contract version?)',
    );
  }
  host.allowOrigin(tapBaseUrl);
  let answer;
  try {
    answer = { ok: connector[exportName](...callArgs) };
  } catch (error) {
    // Only `sync` returns a result, whose `err` jco throws; `read-people`
    // returns a record, so anything it throws is a trap.
    const { isErr, payload } = componentErrorPayload(error);
    if (!isErr || exportName !== 'sync') {
      fail(1, `${what}: the component trapped or the call failed: ${describeError(error)}`);
    }
    answer = { err: payload };
  }
  let line;
  try {
    line = JSON.stringify(toJson(exportName === 'sync' ? answer : peopleLine(answer.ok)));
  } catch (error) {
    fail(1, `${what}: cannot convert the result to JSON: ${error.message}`);
  }
  writeAll(1, line + '\n');
}
process.exit(0);
