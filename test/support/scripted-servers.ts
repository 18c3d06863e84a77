// Per-test set-up of the client tests that fetch from scripted servers
// (test/client/fake-server.ts): a fresh temporary directory for each test,
// removed after it, and every FakeServer a test started closed after it.
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FakeServer, type FakeServerOptions } from '../client/fake-server';

export interface ScriptedServers {
  /** This test's temporary directory. */
  readonly dir: string;
  /** Starts a FakeServer on loopback; closed after the test. */
  serve(o: FakeServerOptions): Promise<{ server: FakeServer; port: number }>;
}

/** Registers the beforeEach/afterEach hooks; `prefix` names the temporary directories. */
export function scriptedServers(prefix: string): ScriptedServers {
  const servers: FakeServer[] = [];
  let dir = '';
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  });
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
    await fs.rm(dir, { recursive: true, force: true });
  });
  return {
    get dir() {
      return dir;
    },
    async serve(o) {
      const server = new FakeServer(o);
      servers.push(server);
      return { server, port: await server.listen() };
    },
  };
}
