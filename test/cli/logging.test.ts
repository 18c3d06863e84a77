/**
 * --log-level and --log-format for serve and fetch (lib/cli/logging.ts):
 * the parsers refuse what they do not know with the fix in the message;
 * json is one JSON object per line, pretty one line for a person; the level
 * filters; serve and a real fetch over loopback log what they did.
 */
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildProgram } from '../../lib/cli/main';
import { runFetch } from '../../lib/cli/fetch';
import { createLogger, parseLogFormat, parseLogLevel, prettyLine } from '../../lib/cli/logging';
import { startServe, type ServeCliOptions } from '../../lib/cli/serve';
import { UsageError } from '../../lib/cli/errors';

class Lines {
  readonly chunks: string[] = [];
  write = (text: string): boolean => {
    this.chunks.push(text);
    return true;
  };
  get lines(): string[] {
    return this.chunks.join('').split('\n').filter((l) => l !== '');
  }
  json(): Record<string, unknown>[] {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}

describe('parsers', () => {
  test('levels and formats, any case; anything else is a usage error naming the choices', () => {
    expect(parseLogLevel('DEBUG')).toBe('debug');
    expect(parseLogLevel('silent')).toBe('silent');
    expect(parseLogFormat('Pretty')).toBe('pretty');
    expect(() => parseLogLevel('verbose')).toThrow(UsageError);
    expect(() => parseLogLevel('verbose')).toThrow(/use one of trace, debug, info, warn, error, fatal, silent/);
    expect(() => parseLogFormat('text')).toThrow(/use json .* or pretty/);
  });

  test.each([
    ['serve', ['serve', 'x', '--log-format', 'xml']],
    ['fetch', ['fetch', 'rqcast://127.0.0.1:1', '--log-level', 'loud']],
  ])('%s: a bad value is refused by commander before anything runs', async (_cmd, args) => {
    const program = buildProgram();
    program.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    for (const c of program.commands) c.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    await expect(program.parseAsync(['node', 'rqcast', ...args])).rejects.toMatchObject({ code: 'commander.invalidArgument' });
  });
});

describe('formats and levels', () => {
  test('json: one parsable object per line with level, time, msg and the fields', () => {
    const out = new Lines();
    const log = createLogger({ level: 'info', format: 'json', stream: out });
    log.info({ tsi: 1, channel: 'main' }, 'listening');
    log.debug({}, 'not shown at info');
    const [line, ...rest] = out.json();
    expect(rest).toEqual([]);
    expect(line).toMatchObject({ level: 30, msg: 'listening', tsi: 1, channel: 'main', name: 'rqcast' });
    expect(typeof line.time).toBe('number');
  });

  test('pretty: time, level, message, key=value; strings with spaces quoted; nested values as JSON; an error as its message', () => {
    const out = new Lines();
    const log = createLogger({ level: 'debug', format: 'pretty', stream: out });
    log.warn({ path: '/srv/a b.bin', reason: 'dotfile', n: 3, nested: { a: [1, 2] } }, 'file skipped');
    log.error({ err: new Error('port 4433 is taken') }, 'control socket error');
    log.trace({}, 'below debug: not shown');
    const lines = out.lines;
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} WARN  file skipped path="\/srv\/a b\.bin" reason=dotfile n=3 nested=\{"a":\[1,2\]\}$/);
    expect(lines[1]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} ERROR control socket error err="port 4433 is taken"$/);
    // At debug, the error's stack follows, indented.
    expect(lines[2]).toMatch(/^ {4}Error: port 4433 is taken$/);
    expect(lines.some((l) => l.includes('below debug'))).toBe(false);
  });

  test('pretty: a line that is not JSON passes through unchanged', () => {
    expect(prettyLine('not json')).toBe('not json\n');
  });

  test('silent logs nothing', () => {
    const out = new Lines();
    const log = createLogger({ level: 'silent', format: 'json', stream: out });
    log.fatal({}, 'x');
    expect(out.chunks).toEqual([]);
  });
});

describe('serve and fetch log what they did', () => {
  let root: string;
  let file: string;

  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'rqcast-logs-'));
    file = path.join(root, 'l.bin');
    await fs.writeFile(file, randomBytes(100_000));
  });

  afterAll(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  function serveOptions(more: Partial<ServeCliOptions>): ServeCliOptions {
    return { port: 0, bind: '127.0.0.1', rate: 50, channel: [], symbolSize: 1280, memory: 64, passOverhead: 15, code: true, ...more };
  }

  test('serve --log-format pretty --log-level debug: the debug line and the listening line, for a person; --log-level warn: neither', async () => {
    const pretty = new Lines();
    const a = await startServe([file], serveOptions({ logLevel: 'debug', logFormat: 'pretty' }), { stdout: () => undefined, stderr: process.stderr, logStream: pretty });
    await a.close();
    expect(pretty.lines.some((l) => /^\S+ DEBUG first blocks prepared /.test(l))).toBe(true);
    expect(pretty.lines.some((l) => /^\S+ INFO  listening address=127\.0\.0\.1 port=\d+ family=IPv4 channels=\[/.test(l))).toBe(true);
    expect(pretty.lines.some((l) => /^\S+ INFO  closed$/.test(l))).toBe(true);

    const warnOnly = new Lines();
    const b = await startServe([file], serveOptions({ logLevel: 'warn' }), { stdout: () => undefined, stderr: process.stderr, logStream: warnOnly });
    await b.close();
    expect(warnOnly.chunks).toEqual([]);
  });

  test('serve: --quiet is level error unless --log-level says otherwise', async () => {
    const out = new Lines();
    const a = await startServe([file], serveOptions({ quiet: true, logLevel: 'info' }), { stdout: () => undefined, stderr: process.stderr, logStream: out });
    await a.close();
    expect(out.json().map((l) => l.msg)).toEqual(expect.arrayContaining(['listening', 'closed']));
    const quiet = new Lines();
    const b = await startServe([file], serveOptions({ quiet: true }), { stdout: () => undefined, stderr: process.stderr, logStream: quiet });
    await b.close();
    expect(quiet.chunks).toEqual([]);
  });

  test('fetch --log-level info (json): joined, the object fetched with its digest, the summary; the server logs the join and the leave', async () => {
    const serverLog = new Lines();
    const s = await startServe([file], serveOptions({ logLevel: 'info' }), { stdout: () => undefined, stderr: process.stderr, logStream: serverLog });
    try {
      const out = await fs.mkdtemp(path.join(root, 'out-'));
      const fetchLog = new Lines();
      const code = await runFetch(`rqcast://127.0.0.1:${s.address.port}`, { output: out, timeout: 30_000, quiet: true, logLevel: 'info' }, { logStream: fetchLog });
      expect(code).toBe(0);
      const lines = fetchLog.json();
      const msgs = lines.map((l) => l.msg);
      expect(msgs[0]).toBe('joined');
      expect(msgs).toContain('object fetched');
      expect(msgs[msgs.length - 1]).toBe('fetched');
      const obj = lines.find((l) => l.msg === 'object fetched')!;
      expect(obj).toMatchObject({ name: 'l.bin', bytes: 100_000, level: 30 });
      expect(obj.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(lines.find((l) => l.msg === 'fetched')).toMatchObject({ objects: 1, bytes: 100_000 });
      // No progress lines at info (they are debug).
      expect(msgs).not.toContain('progress');
      const serverMsgs = serverLog.json().map((l) => l.msg);
      expect(serverMsgs).toEqual(expect.arrayContaining(['listening', 'joined', 'left']));
    } finally {
      await s.close();
    }
  }, 60_000);

  test('fetch without --log-level logs nothing; a failure is logged at error with its exit code', async () => {
    const quiet = new Lines();
    expect(await runFetch('http://127.0.0.1:9/', { timeout: 1_000, quiet: true }, { logStream: quiet })).toBe(2);
    expect(quiet.chunks).toEqual([]);
    const out = new Lines();
    expect(await runFetch('http://127.0.0.1:9/', { timeout: 1_000, quiet: true, logLevel: 'error', logFormat: 'pretty' }, { logStream: out })).toBe(2);
    expect(out.lines[0]).toMatch(/^\S+ ERROR fetch failed err=.* exitCode=2$/);
  });
});
