/**
 * A fuzzing client process (the fuzzer runs several, as an unprivileged
 * uid): connections of every scenario, `--concurrency` at a time, until
 * `--pdus` PDUs are sent; prints one JSON WorkerReport on stdout.
 *
 *   node dist/battery/fuzz-worker.js --socket PATH --corpus FILE --pdus N --seed S [--concurrency C]
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { SCENARIOS, fuzzConnection, type Scenario, type Violation } from './fuzz-connection.js';
import { Random, type Corpus } from './pdu-corpus.js';

export interface WorkerReport {
  readonly pdus: number;
  readonly connections: number;
  readonly requests: number;
  readonly answered: number;
  readonly closedUnanswered: number;
  readonly scenarios: Record<string, number>;
  readonly statuses: Record<string, number>;
  /** Violations by invariant. */
  readonly violations: Record<string, number>;
  /** The first few of each invariant, for the report. */
  readonly examples: readonly Violation[];
}

export interface WorkerOptions {
  readonly socketPath: string;
  readonly corpus: Corpus;
  readonly pdus: number;
  readonly seed: number;
  readonly concurrency: number;
  readonly maxPdusPerConnection: number;
  readonly mutated: number;
  readonly misframed: number;
  readonly hangMs: number;
}

export async function runWorker(options: WorkerOptions): Promise<WorkerReport> {
  const random = new Random(options.seed);
  let pdus = 0;
  let connections = 0;
  let requests = 0;
  let answered = 0;
  let closedUnanswered = 0;
  const scenarios: Record<string, number> = {};
  const statuses: Record<string, number> = {};
  const violations: Record<string, number> = {};
  const examples: Violation[] = [];

  const lane = async (): Promise<void> => {
    while (pdus < options.pdus) {
      const scenario: Scenario = random.pick(SCENARIOS);
      // Each connection draws from its own generator, so a lane's pace does not change the others' PDUs.
      const result = await fuzzConnection({
        socketPath: options.socketPath,
        corpus: options.corpus,
        random: new Random(random.below(2 ** 32)),
        scenario,
        maxPdus: options.maxPdusPerConnection,
        mutated: options.mutated,
        misframed: options.misframed,
        hangMs: options.hangMs,
      });
      pdus += result.pdus;
      connections++;
      requests += result.requests;
      answered += result.answered;
      if (result.closedUnanswered) closedUnanswered++;
      scenarios[scenario] = (scenarios[scenario] ?? 0) + 1;
      for (const [status, n] of result.statuses) statuses[status] = (statuses[status] ?? 0) + n;
      for (const v of result.violations) {
        violations[v.invariant] = (violations[v.invariant] ?? 0) + 1;
        if (examples.filter((e) => e.invariant === v.invariant).length < 5) examples.push(v);
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, lane));
  return { pdus, connections, requests, answered, closedUnanswered, scenarios, statuses, violations, examples };
}

async function main(argv: readonly string[]): Promise<void> {
  const program = new Command('fuzz-worker')
    .requiredOption('--socket <path>')
    .requiredOption('--corpus <file>', 'JSON: the truth and the allowed agents')
    .requiredOption('--pdus <n>', 'PDUs to send', Number)
    .requiredOption('--seed <n>', 'generator seed', Number)
    .option('--concurrency <n>', 'connections at once', Number, 8)
    .option('--max-pdus-per-connection <n>', '', Number, 200)
    .option('--mutated <share>', 'share of mutated PDUs', Number, 0.35)
    .option('--misframed <share>', 'share of connections ending with a misframed PDU', Number, 0.3)
    .option('--hang-ms <ms>', 'silence that counts as a hang', Number, 15000)
    .exitOverride();
  program.parse(argv, { from: 'user' });
  const o = program.opts<{ socket: string; corpus: string; pdus: number; seed: number; concurrency: number; maxPdusPerConnection: number; mutated: number; misframed: number; hangMs: number }>();
  const report = await runWorker({
    socketPath: o.socket,
    corpus: JSON.parse(readFileSync(o.corpus, 'utf8')) as Corpus,
    pdus: o.pdus,
    seed: o.seed,
    concurrency: o.concurrency,
    maxPdusPerConnection: o.maxPdusPerConnection,
    mutated: o.mutated,
    misframed: o.misframed,
    hangMs: o.hangMs,
  });
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`fuzz-worker: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(2);
    },
  );
}
