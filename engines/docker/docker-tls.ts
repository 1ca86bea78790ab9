/**
 * The TLS files of a tcp:// daemon, read as the docker CLI reads them, and
 * the https agent made of them. Kept apart from docker-endpoint.ts so that
 * node:https and node:tls are loaded only when the daemon is asked
 * (docker-api-source.ts), never by a lookup that the files answer.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Agent } from 'node:https';
import { createSecureContext } from 'node:tls';
import { inspect } from 'node:util';
import type { DockerTls } from './docker-endpoint.js';

/**
 * The https agent of one TLS daemon: it holds the CA, the client pair and
 * whether the daemon's certificate is checked, so croot's own ping and every
 * dockerode request use the same settings (docker-modem hands request
 * options no `rejectUnauthorized`; an agent's options win over a request's).
 *
 * docker-modem formats each request's options with `util.inspect(options,
 * { showHidden: true, depth: null })` as the argument of its `debug` call
 * (lib/modem.js, `Modem.prototype.buildRequest`), so it runs on every
 * request even with debugging off. A plain agent in those options is walked
 * whole, every socket it holds with its TLS state: tens of ms per request
 * with one connection open, about a second with 32, all on the event loop.
 * This agent inspects as one short line instead.
 */
export class DockerTlsAgent extends Agent {
  constructor(readonly label: string, options: ConstructorParameters<typeof Agent>[0]) {
    super(options);
  }

  [inspect.custom](): string {
    return `DockerTlsAgent(${this.label})`;
  }
}

/** What `loadDockerTls` read: the agent to reach the daemon with, and which client files were absent. */
export interface DockerTlsMaterial {
  readonly agent: DockerTlsAgent;
  /** `cert.pem` and/or `key.pem` when they were absent, so no client certificate is sent. */
  readonly absent: readonly string[];
}

/**
 * Reads the TLS files as the docker CLI does: `ca.pem` is required (docker
 * 28 refuses to start without it, even when not verifying); `cert.pem` and
 * `key.pem` are sent as a pair, and when either is absent no client
 * certificate is sent. Rejects with a message naming the file that is
 * missing (ca.pem), unreadable or not valid PEM.
 */
export async function loadDockerTls(tls: DockerTls, label = tls.certPath): Promise<DockerTlsMaterial> {
  const ca = await readTlsFile(tls.caFile, 'the CA certificate', true);
  const cert = await readTlsFile(tls.certFile, 'the client certificate', false);
  const key = await readTlsFile(tls.keyFile, 'the client key', false);
  // Node takes a CA file holding no certificate without a word; docker does not.
  checkPem(() => new X509Certificate(ca), tls.caFile);
  const pair = cert !== undefined && key !== undefined ? { cert, key } : undefined;
  if (pair !== undefined) checkPem(() => createSecureContext(pair), `${tls.certFile} with ${tls.keyFile}`);
  const absent = [...(cert === undefined ? [tls.certFile] : []), ...(key === undefined ? [tls.keyFile] : [])];
  // Connections are kept for the next request: an inspect then costs no handshake.
  const agent = new DockerTlsAgent(label, { ca, ...pair, rejectUnauthorized: tls.verify, keepAlive: true, maxFreeSockets: 8 });
  return { agent, absent };
}

async function readTlsFile(path: string, what: string, required: true): Promise<Buffer>;
async function readTlsFile(path: string, what: string, required: boolean): Promise<Buffer | undefined>;
async function readTlsFile(path: string, what: string, required: boolean): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (!required && code === 'ENOENT') return undefined;
    throw new Error(`TLS: cannot read ${what} ${path} (${typeof code === 'string' ? code : String(err)})`, { cause: err });
  }
}

function checkPem(make: () => unknown, what: string): void {
  try {
    make();
  } catch (err) {
    throw new Error(`TLS: ${what} unusable (${(err as Error).message})`, { cause: err });
  }
}
