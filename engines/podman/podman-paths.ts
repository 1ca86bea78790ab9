/** Where the Podman engine looks, from crootd's environment. */

export const DEFAULT_CONTAINERS_STORAGE_CONFS: readonly string[] = ['/etc/containers/storage.conf', '/usr/share/containers/storage.conf'];

/** Where the engine looks, from `config.env`. */
export interface PodmanPaths {
  /**
   * Rootful graph root from `PCP_PODMAN_DATADIR`; absent when unset or empty:
   * then the system `storage.conf`'s `graphroot`, else `DEFAULT_PODMAN_DATADIR`.
   */
  readonly dataDir?: string;
  /**
   * Rootful run root from `PCP_PODMAN_RUNDIR`; absent when unset or empty:
   * then the system `storage.conf`'s `runroot`, else `DEFAULT_PODMAN_RUNDIR`.
   */
  readonly runDir?: string;
  /** Whether users' rootless stores are read (`CROOT_PODMAN_ROOTLESS=0` turns it off). */
  readonly rootless: boolean;
  /** Parent of the per-uid runtime dirs (`/run/user`). */
  readonly userRunRoot: string;
  /**
   * System `storage.conf` candidates, first existing one used: its
   * `graphroot`/`runroot` move the rootful store (unless set above), its
   * `rootless_storage_path` every rootless store. From
   * `CROOT_CONTAINERS_STORAGE_CONF` (empty: none), else c/storage's
   * `/etc/containers/storage.conf`, then `/usr/share/containers/storage.conf`.
   */
  readonly storageConfPaths: readonly string[];
}

export function podmanPathsFrom(env: Readonly<Record<string, string | undefined>>): PodmanPaths {
  return {
    ...(env.PCP_PODMAN_DATADIR ? { dataDir: env.PCP_PODMAN_DATADIR } : {}),
    ...(env.PCP_PODMAN_RUNDIR ? { runDir: env.PCP_PODMAN_RUNDIR } : {}),
    rootless: env.CROOT_PODMAN_ROOTLESS !== '0',
    userRunRoot: env.CROOT_PODMAN_USER_RUNDIR || '/run/user',
    storageConfPaths: storageConfPathsFrom(env.CROOT_CONTAINERS_STORAGE_CONF),
  };
}

function storageConfPathsFrom(value: string | undefined): readonly string[] {
  if (value === undefined) return DEFAULT_CONTAINERS_STORAGE_CONFS;
  return value === '' ? [] : [value];
}
