/**
 * crootd as pmcd's root agent on the real machine, for tests: installed
 * with the built `crootd install-pmcd` (as a user does it) while pmcd is
 * stopped, and put back with `crootd uninstall-pmcd`; pmcd ends as it was
 * found (running or not). Run under /tmp/croot-pmcd.lock.
 */
import { existsSync, readFileSync } from 'node:fs';
import { CROOTD } from './crootd-process.js';
import { PMCD_CONF, PMCD_CONF_BACKUP, pminfo, runAsync, startPmcd, stopPmcd, pidsOf } from './pmcd-dropin.js';

export const PMNS_ROOT = '/var/lib/pcp/pmns/root';
export const PMCD_OPTIONS = '/etc/pcp/pmcd/pmcd.options';
export const PMDA_BACKUP_SUFFIX = '.croot-pmda-backup';

export interface RootAgentInstall {
  readonly pmcdWasRunning: boolean;
  /** pmcd.conf, pmcd.options and the PMNS as they were before install. */
  readonly originalConf: Buffer;
  readonly originalOptions: Buffer;
  readonly originalPmns: Buffer;
  /** Stops pmcd, runs `crootd uninstall-pmcd`, starts pmcd if it ran before. Safe to call twice; resolves with uninstall's output. */
  uninstall(): Promise<string>;
}

export async function installCrootAsRootAgent(): Promise<RootAgentInstall> {
  for (const leftover of [`${PMCD_CONF}${PMDA_BACKUP_SUFFIX}`, `${PMCD_OPTIONS}${PMDA_BACKUP_SUFFIX}`, PMCD_CONF_BACKUP]) {
    if (existsSync(leftover)) throw new Error(`${leftover} exists: an earlier run did not finish (crootd uninstall-pmcd, or scripts/pmcd-dropin-restore.sh)`);
  }
  const pmcdWasRunning = pidsOf('pmcd').length > 0;
  const originalConf = readFileSync(PMCD_CONF);
  const originalOptions = readFileSync(PMCD_OPTIONS);
  const originalPmns = readFileSync(PMNS_ROOT);
  await stopPmcd();
  try {
    await runAsync(process.execPath, [CROOTD, 'install-pmcd', '--no-restart'], 120000);
  } catch (err) {
    if (pmcdWasRunning) await startPmcd();
    throw err;
  }
  let done: Promise<string> | undefined;
  const uninstall = (): Promise<string> => {
    done ??= (async () => {
      await stopPmcd();
      const out = existsSync(`${PMCD_CONF}${PMDA_BACKUP_SUFFIX}`) ? await runAsync(process.execPath, [CROOTD, 'uninstall-pmcd', '--no-restart'], 120000) : '';
      if (pmcdWasRunning) await startPmcd();
      return out;
    })();
    return done;
  };
  return { pmcdWasRunning, originalConf, originalOptions, originalPmns, uninstall };
}

/** Every value of a `pminfo -f` listing: metric -> instance name ('' when singular) -> value text; a metric without values maps to an empty map. */
export function pminfoFetch(output: string): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const line of output.split('\n')) {
    if (/^\S/.test(line)) {
      current = new Map();
      out.set(line.trim(), current);
      continue;
    }
    const inst = /^\s+inst \[\d+ or "(.*)"\] value (.*)$/.exec(line);
    const single = /^\s+value (.*)$/.exec(line);
    const value = inst?.[2] ?? single?.[1];
    if (current === undefined || value === undefined) continue;
    current.set(inst?.[1] ?? '', /^".*"$/.test(value) ? value.slice(1, -1) : value);
  }
  return out;
}

/** Waits until pmcd answers and every agent's status is 0 (or the time is up); the last statuses. */
export async function waitForAgents(timeoutMs = 60000): Promise<Map<string, string>> {
  const deadline = Date.now() + timeoutMs;
  let status = new Map<string, string>();
  while (Date.now() < deadline) {
    try {
      status = pminfoFetch(await pminfo(['-f', 'pmcd.agent.status'])).get('pmcd.agent.status') ?? new Map();
      if (status.size > 0 && [...status.values()].every((v) => v === '0')) return status;
    } catch {
      // not answering yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return status;
}
