/**
 * One question asked again and again while something changes: croot's
 * RootClient (Node transport) asking PROCESSID of one name, connecting
 * (again) whenever it has no usable connection. Used for the time to the
 * first right answer after a server starts and for the time a change takes
 * to show.
 */
import { nodeSocketTransport } from '../core/client/node-socket-transport.js';
import { RootClient } from '../core/client/root-client.js';

/** What one PROCESSID request got: a PID, a negative status, or no answer at all (with why). */
export type ProbeAnswer = { readonly pid: number } | { readonly status: number } | { readonly failure: string };

export class ProbeClient {
  private client: RootClient | undefined;

  constructor(
    readonly socket: string,
    private readonly timeoutMs = 60000,
  ) {}

  async processId(name: string): Promise<ProbeAnswer> {
    if (this.client === undefined || !this.client.connected) {
      try {
        this.client = await RootClient.connect(this.socket, { transport: nodeSocketTransport, timeoutMs: this.timeoutMs });
      } catch (err) {
        this.client = undefined;
        return { failure: `connect: ${(err as Error).message}` };
      }
    }
    try {
      return { pid: await this.client.processId(name) };
    } catch (err) {
      const status = (err as { status?: unknown }).status;
      if (typeof status === 'number' && status < 0) return { status };
      this.close();
      return { failure: (err as Error).message };
    }
  }

  close(): void {
    this.client?.close();
    this.client = undefined;
  }
}

/** The answer as a short text, for notes and error messages. */
export function describeAnswer(answer: ProbeAnswer): string {
  if ('pid' in answer) return `pid ${answer.pid}`;
  if ('status' in answer) return `status ${answer.status}`;
  return `no answer (${answer.failure})`;
}
