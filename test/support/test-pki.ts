/**
 * A throwaway PKI for the TLS tests, made by openssl in a folder: P-256 keys,
 * certificates valid for a day. Each name gives `<name>.pem` (the
 * certificate) and `<name>-key.pem` (its key):
 *
 * - `ca`, `other-ca`: two self-signed CAs;
 * - `server`: signed by `ca`, for 127.0.0.1 (subjectAltName), serverAuth;
 * - `client`: signed by `ca`, CN "croot client", clientAuth;
 * - `rogue`: signed by `other-ca`, CN "croot rogue", clientAuth (a client
 *   certificate a daemon trusting `ca` must refuse).
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

function openssl(dir: string, args: readonly string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], timeout: 20000 });
}

/** A P-256 key and a certificate for it in `dir`: self-signed (a CA), or signed by `issuer`. */
function makeCert(dir: string, name: string, subject: string, issuer?: string, extensions = ''): void {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}-key.pem`, '-subj', subject];
  if (issuer === undefined) {
    openssl(dir, ['req', '-x509', ...ec, '-out', `${name}.pem`, '-days', '1']);
    return;
  }
  openssl(dir, ['req', '-new', ...ec, '-out', `${name}.csr`]);
  writeFileSync(join(dir, `${name}.ext`), `${extensions}\n`);
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${issuer}.pem`, '-CAkey', `${issuer}-key.pem`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`]);
}

/** Makes the PKI described above in `dir` (an existing, empty folder). */
export function makeTestPki(dir: string): void {
  makeCert(dir, 'ca', '/CN=croot test CA');
  makeCert(dir, 'other-ca', '/CN=croot other CA');
  makeCert(dir, 'server', '/CN=127.0.0.1', 'ca', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth');
  makeCert(dir, 'client', '/CN=croot client', 'ca', 'extendedKeyUsage=clientAuth');
  makeCert(dir, 'rogue', '/CN=croot rogue', 'other-ca', 'extendedKeyUsage=clientAuth');
}
