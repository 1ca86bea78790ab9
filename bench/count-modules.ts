/**
 * Preloaded (`node --require`) into one untimed run of each Node command of
 * the CLI start-up section (cli-startup.ts): at exit, writes how many
 * CommonJS modules the process loaded (itself not counted) to
 * $CROOT_BENCH_MODULES_FILE.
 */
import { writeFileSync } from 'node:fs';

process.once('exit', () => {
  const file = process.env.CROOT_BENCH_MODULES_FILE;
  if (file === undefined || file === '') return;
  try {
    writeFileSync(file, String(Object.keys(require.cache).filter((m) => m !== __filename).length));
  } catch {
    // the count is a note; the run itself is what is measured
  }
});
