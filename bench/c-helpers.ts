/**
 * The benchmark's C programs (bench/*.c), compiled with gcc into a temp
 * folder at the start of each run: PCP's own client library as a load
 * client, the kernel's socketpair floor, the C floor server, and the
 * stand-in init processes.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The checkout's root (this file runs from dist/bench/). */
export const CHECKOUT = resolve(__dirname, '..', '..');

const SOURCES = join(CHECKOUT, 'bench');

export interface CHelpers {
  /** pcp-load-client (needs PCP's libpcp_pmda), or why it could not be built. */
  readonly pcpLoadClient: string | { readonly missing: string };
  readonly pingPong: string;
  /** c-floor-server: fixed replies on the root socket, in C (the Node floor's twin). */
  readonly cFloorServer: string;
  readonly initProcesses: string;
}

function compile(dir: string, name: string, libs: readonly string[]): string {
  const source = join(SOURCES, `${name}.c`);
  if (!existsSync(source)) throw new Error(`${source} is missing (run from a croot checkout)`);
  const binary = join(dir, name);
  execFileSync('gcc', ['-Wall', '-Werror', '-O2', '-o', binary, source, ...libs], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60000 });
  return binary;
}

export function buildCHelpers(dir: string): CHelpers {
  let pcpLoadClient: CHelpers['pcpLoadClient'];
  try {
    // pmda.h needs pmapi.h (libpcp3-dev); the program declares the calls itself, so libpcp-pmda3-dev is enough.
    pcpLoadClient = compile(dir, 'pcp-load-client', ['-lpcp_pmda', '-l:libpcp.so.3']);
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    pcpLoadClient = { missing: `PCP's client library did not link (install libpcp-pmda3-dev): ${stderr || (err as Error).message}` };
  }
  return {
    pcpLoadClient,
    pingPong: compile(dir, 'socketpair-ping-pong', []),
    cFloorServer: compile(dir, 'c-floor-server', []),
    initProcesses: compile(dir, 'init-processes', []),
  };
}
