// The Node side of the component's imports that are not plain WASI shims.
//
// - `log` and `nowMs` implement `proofpoint:tap/host` (wit/tap-connector.wit);
//   run-sync.mjs binds that import to them.
// - `writeAll` writes to stdout or stderr completely, for both files.
// - `outgoingHandler` wraps preview2-shim's `wasi:http/outgoing-handler` so
//   the component reaches only the TAP origin that `allowOrigin` names;
//   any other request fails with the WASI error `HTTP-request-denied`.

import { writeSync } from 'node:fs';
import { outgoingHandler as shimOutgoingHandler } from '@bytecodealliance/preview2-shim/http';

const pause = new Int32Array(new SharedArrayBuffer(4));

/** Writes all of `text` to file descriptor `fd`, synchronously. Node makes
 * stdout and stderr non-blocking when they are pipes, so a plain writeSync
 * may write part of the text or fail with EAGAIN while the reader lags. */
export function writeAll(fd, text) {
  const bytes = Buffer.from(text, 'utf8');
  let offset = 0;
  while (offset < bytes.length) {
    try {
      offset += writeSync(fd, bytes, offset, bytes.length - offset);
    } catch (error) {
      if (error.code !== 'EAGAIN') {
        throw error;
      }
      Atomics.wait(pause, 0, 0, 1);
    }
  }
}

/** A log field value as written: bare, or JSON-quoted when it is empty or
 * holds whitespace, a quote or `=`, so one call stays one line. */
function formatValue(value) {
  return value === '' || /[\s"=]/.test(value) ? JSON.stringify(value) : value;
}

/** `proofpoint:tap/host.log`: one line per call on stderr,
 * `[level] message key=value ...`. Line breaks in the message are escaped. */
export function log(level, message, fields) {
  let line = `[${level}] ${String(message).replace(/\r/g, '\\r').replace(/\n/g, '\\n')}`;
  for (const { key, value } of fields) {
    line += ` ${key}=${formatValue(value)}`;
  }
  try {
    writeAll(2, line + '\n');
  } catch {
    // A closed stderr must not make the component trap.
  }
}

/** `proofpoint:tap/host.now-ms`: wall-clock milliseconds since the epoch, as s64. */
export function nowMs() {
  return BigInt(Date.now());
}

const DEFAULT_PORTS = { 'http:': '80', 'https:': '443' };

/** Scheme and authority of a URL with the default port made explicit, e.g.
 * `https://tap-api-v2.proofpoint.com:443`. */
function originKey(scheme, host, port) {
  return `${scheme}//${host.toLowerCase()}:${port || DEFAULT_PORTS[scheme]}`;
}

let allowedOrigin = null;

/** Allows outbound requests to the scheme, host and port of `baseUrl` only. */
export function allowOrigin(baseUrl) {
  const url = new URL(baseUrl);
  if (!(url.protocol in DEFAULT_PORTS)) {
    throw new Error(`tapBaseUrl must be http:// or https://, got ${baseUrl}`);
  }
  allowedOrigin = originKey(url.protocol, url.hostname, url.port);
}

/** The request's origin in the form `originKey` gives, or null when it has
 * no authority or a scheme other than HTTP(S). */
function requestOrigin(request) {
  const scheme = request.scheme();
  const authority = request.authority();
  // host[:port] only: no user info, path, query or fragment characters.
  if (!authority || /[\s/?#@\\]/.test(authority)) {
    return null;
  }
  let protocol;
  if (scheme === undefined || scheme.tag === 'HTTPS') {
    protocol = 'https:';
  } else if (scheme.tag === 'HTTP') {
    protocol = 'http:';
  } else {
    return null;
  }
  let url;
  try {
    url = new URL(`${protocol}//${authority}`);
  } catch {
    return null;
  }
  return originKey(url.protocol, url.hostname, url.port);
}

/** `wasi:http/outgoing-handler` limited to the allowed origin. A thrown
 * `error-code` becomes the `err` of `handle` in the component. */
export const outgoingHandler = {
  handle(request, options) {
    const origin = requestOrigin(request);
    if (allowedOrigin === null || origin !== allowedOrigin) {
      log('warn', 'host: outbound request denied', [
        { key: 'origin', value: origin ?? '(none)' },
        { key: 'allowed', value: allowedOrigin ?? '(none)' },
      ]);
      throw { tag: 'HTTP-request-denied' };
    }
    return shimOutgoingHandler.handle(request, options);
  },
};
