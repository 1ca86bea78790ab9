/**
 * croot through a root server (`--socket`): the three questions over PCP's
 * protocol (crootd and PCP's pmdaroot alike), and list/show/engines/status
 * and events over croot's extension (crootd only). Loads no engine.
 */
import { CrootError, ErrorCodes } from '../core/errors/croot-error.js';
import { askCrootd, subscribeCrootd, type CrootdEventStream } from '../core/client/extension-client.js';
import { SCHEMA_VERSION, type ContainerReport, type CrootDocument, type ErrorReport, type ExtensionRequest } from '../core/protocol/croot-extension.js';
import { PduType } from '../core/protocol/root-pdus.js';
import { RootClient } from '../core/client/root-client.js';

export type Question = 'hostname' | 'pid' | 'cgroup';

/** One answer and the init PID the server reported with it. */
export interface RemoteAnswer {
  readonly value: string | number;
  readonly pid: number;
}

export async function askQuestion(socket: string, question: Question, name: string): Promise<RemoteAnswer> {
  const client = await RootClient.connect(socket);
  try {
    const type = question === 'hostname' ? PduType.HOSTNAME_REQ : question === 'pid' ? PduType.PROCESSID_REQ : PduType.CGROUPNAME_REQ;
    let answer;
    try {
      answer = await client.containerQuery(type, name);
    } catch (err) {
      throw await withCandidates(err, socket, name);
    }
    // PCP's pmdaroot answers status 0 with PID -1 (or 0) for a container that is not running.
    if (answer.pid <= 0) {
      throw new CrootError('ERR_NOT_RUNNING', `${name}: the server answered PID ${answer.pid}: the container is not running (or the server cannot tell its PID)`, {
        details: { pid: answer.pid },
      });
    }
    return { value: question === 'pid' ? answer.pid : answer.value, pid: answer.pid };
  } finally {
    client.close();
  }
}

/** Sends one extension request (crootd only; ERR_NOT_SUPPORTED from any other server). */
export function askExtension(socket: string, request: ExtensionRequest): Promise<CrootDocument> {
  return askCrootd(request, socket);
}

/** Subscribes to crootd's changes (`croot events --socket`; crootd only). */
export function subscribeEvents(socket: string): Promise<CrootdEventStream> {
  return subscribeCrootd(socket);
}

/**
 * `show` through a server: crootd's whole record over the extension; from
 * a server without it (PCP's pmdaroot), the three answers PCP's protocol
 * carries, with engine, id and state null.
 */
export async function showRemote(socket: string, name: string): Promise<{ document: CrootDocument; viaExtension: boolean }> {
  try {
    return { document: await askCrootd({ op: 'show', name }, socket), viaExtension: true };
  } catch (err) {
    if (!CrootError.is(err) || err.code !== 'ERR_NOT_SUPPORTED') throw err;
  }
  const client = await RootClient.connect(socket);
  try {
    const errors: { pid?: ErrorReport; hostname?: ErrorReport; cgroup?: ErrorReport } = {};
    const attempt = async <T>(field: 'pid' | 'hostname' | 'cgroup', get: () => Promise<T>): Promise<T | null> => {
      try {
        return await get();
      } catch (e) {
        if (CrootError.is(e) && (e.code === 'ERR_NO_CONTAINER' || e.code === 'ERR_AMBIGUOUS_NAME')) throw e;
        errors[field] = { code: CrootError.is(e) ? e.code : 'ERR_SYSTEM', status: CrootError.is(e) ? e.status : ErrorCodes.ERR_SYSTEM, message: (e as Error).message };
        return null;
      }
    };
    const pid = await attempt('pid', async () => {
      const p = await client.processId(name);
      if (p <= 0) throw new CrootError('ERR_NOT_RUNNING', `the server answered PID ${p}: the container is not running`);
      return p;
    });
    const hostname = await attempt('hostname', () => client.hostname(name));
    const cgroup = await attempt('cgroup', () => client.cgroupName(name));
    const container: ContainerReport = {
      engine: null,
      id: null,
      names: [name],
      state: null,
      pid,
      hostname,
      cgroup,
      ...(Object.keys(errors).length > 0 ? { errors } : {}),
    };
    return { document: { schemaVersion: SCHEMA_VERSION, containers: [container] }, viaExtension: false };
  } finally {
    client.close();
  }
}

/**
 * PCP's protocol carries only the status of an ambiguous name; crootd's
 * extension also names the candidates, so ask it (a server without the
 * extension leaves the error as it was).
 */
async function withCandidates(err: unknown, socket: string, name: string): Promise<unknown> {
  if (!CrootError.is(err) || err.code !== 'ERR_AMBIGUOUS_NAME') return err;
  try {
    await askCrootd({ op: 'show', name }, socket, { timeoutMs: 3000 });
  } catch (detailed) {
    if (CrootError.is(detailed) && detailed.code === 'ERR_AMBIGUOUS_NAME') return detailed;
  }
  return err;
}
