// The real server as a child process (src/server/main.ts with tsx's loader, the bundled model), for tests
// that kill it, start two, or fill its disk: what an operator's machine does to it.
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { REPO_ROOT } from './shared.js';

const MAIN = join(REPO_ROOT, 'src/server/main.ts');

export interface ServerProcess {
  child: ChildProcess;
  /** Everything it wrote to stdout and stderr so far. */
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the port once it listens; rejects with its output if it exits first. */
  port: () => Promise<number>;
}

/**
 * Starts one server process on dataDir (port chosen by the system); `env` adds to or overrides ours. Accounts
 * are off (loopback only): these runs exercise uploads, the store and faults; accounts.test.ts tests access.
 */
export function startServerProcess(dataDir: string, env: Record<string, string> = {}): ServerProcess {
  // node with tsx's loader, not the tsx command, which would run the server in a child of its own (and
  // kill -9 would then hit only the wrapper).
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
    cwd: REPO_ROOT,
    env: { ...process.env, DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', AUTH: 'off', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  let exitedYet = false;
  void exited.then(() => (exitedYet = true));
  const port = async (timeoutMs = 90_000) => {
    const t0 = Date.now();
    while (Date.now() - t0 < timeoutMs) {
      const m = /at http:\/\/127\.0\.0\.1:(\d+)\//.exec(out);
      if (m) return Number(m[1]);
      if (exitedYet) throw new Error(`the server exited before listening:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`the server did not start within ${timeoutMs} ms:\n${out}`);
  };
  return { child, output: () => out, exited, port };
}

/** Stops it with SIGKILL (no clean-up of any kind) and waits for the exit. */
export async function killHard(s: ServerProcess): Promise<void> {
  if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
  await s.exited;
}

export interface RawReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/**
 * One HTTP request with exactly these headers and bytes (no fetch niceties: a malformed body goes out as
 * is). Rejects on a network error (reset, refused) or after timeoutMs.
 */
export function rawRequest(
  port: number,
  o: { method?: string; path: string; headers?: Record<string, string>; body?: Buffer | string },
  timeoutMs = 60_000,
): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const body = o.body === undefined ? undefined : Buffer.from(o.body);
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: o.method ?? 'GET',
        path: o.path,
        agent: false,
        headers: { ...(body ? { 'content-length': String(body.length) } : {}), ...o.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Runs `task` over `items` with at most `limit` at once, results in order. */
export async function mapLimit<T, R>(items: T[], limit: number, task: (t: T, i: number) => Promise<R>) {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await task(items[i], i);
      }
    }),
  );
  return out;
}
