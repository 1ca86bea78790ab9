/**
 * podmanPathsFrom with nothing set in crootd's environment, against what
 * podman itself reads on this host.
 */
import { existsSync } from 'node:fs';
import { describeWith, probes, run } from '../../test/support/components.js';
import { podmanPathsFrom } from './podman-paths.js';

describeWith('podman', probes.podman, 'podmanPathsFrom on this host', () => {
  it('reads by default the system storage.conf rootful podman reads', () => {
    // podman names the file it would read even when none exists (c/storage then falls back to the last candidate).
    const podmans = run('podman', ['info', '--format', '{{.Store.ConfigFile}}']);
    const candidates = podmanPathsFrom({}).storageConfPaths;
    expect(candidates.find((path) => existsSync(path)) ?? candidates.at(-1)).toBe(podmans);
  });
});
