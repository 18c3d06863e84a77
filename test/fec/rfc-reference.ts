// Plain TypeScript transcriptions of RFC 6330 formulas, written from the
// RFC text, to check the native core against. Kept deliberately naive.
import * as fs from 'fs';
import * as path from 'path';

export interface Rfc6330Tables {
  V0: number[];
  V1: number[];
  V2: number[];
  V3: number[];
  table2_columns: string[];
  table2: number[][];
  K_prime_max: number;
  deg_f: number[];
}

const repoRoot = path.resolve(__dirname, '..', '..');

/**
 * The tables, from the committed fixture, else from shared/ beside the
 * clone (CI layout). Undefined, with the reason, when neither exists.
 */
export function loadTables(): { tables?: Rfc6330Tables; reason?: string } {
  const candidates = [
    path.join(repoRoot, 'test', 'fixtures', 'rfc6330-tables.json'),
    path.resolve(repoRoot, '..', 'shared', 'reference', 'rfc6330-tables.json'),
  ];
  for (const p of candidates) {
    if (fs.existsSync(p)) return { tables: JSON.parse(fs.readFileSync(p, 'utf8')) as Rfc6330Tables };
  }
  return { reason: `RFC 6330 tables not found at ${candidates.join(' or ')}` };
}

export class Rfc6330 {
  constructor(private readonly t: Rfc6330Tables) {}

  /** §5.3.5.1 */
  rand(y: number, i: number, m: number): number {
    const x0 = y % 256;
    const x1 = Math.floor(y / 256) % 256;
    const x2 = Math.floor(y / 65536) % 256;
    const x3 = Math.floor(y / 16777216) % 256;
    const v =
      (this.t.V0[(x0 + i) % 256] ^ this.t.V1[(x1 + i) % 256] ^ this.t.V2[(x2 + i) % 256] ^ this.t.V3[(x3 + i) % 256]) >>>
      0;
    return v % m;
  }

  /** §5.3.5.2: the d with f[d-1] <= v < f[d], then min(d, W-2). */
  deg(v: number, W: number): number {
    const f = this.t.deg_f;
    let d = 1;
    while (d < f.length && !(v < f[d])) d++;
    return Math.min(d, W - 2);
  }

  /** §5.6 Table 2 plus the derived L, P, P1, U, B. */
  params(K: number): { Kprime: number; J: number; S: number; H: number; W: number; L: number; P: number; P1: number; U: number; B: number } {
    const cols = this.t.table2_columns;
    const row = this.t.table2.find((r) => r[0] >= K);
    if (row === undefined) throw new Error(`K ${K} beyond Table 2`);
    const get = (name: string): number => row[cols.indexOf(name)];
    const Kprime = row[0];
    const J = get('J_K_prime');
    const S = get('S');
    const H = get('H');
    const W = get('W');
    const L = Kprime + S + H;
    const P = L - W;
    let P1 = P;
    while (!isPrime(P1)) P1++;
    return { Kprime, J, S, H, W, L, P, P1, U: P - H, B: W - S };
  }

  /** §5.3.5.4 Tuple[K', X]. */
  tuple(K: number, X: number): { d: number; a: number; b: number; d1: number; a1: number; b1: number } {
    const p = this.params(K);
    let A = 53591 + p.J * 997;
    if (A % 2 === 0) A = A + 1;
    const B = 10267 * (p.J + 1);
    const y = Number((BigInt(B) + BigInt(X) * BigInt(A)) % 2n ** 32n);
    const v = this.rand(y, 0, 2 ** 20);
    const d = this.deg(v, p.W);
    const a = 1 + this.rand(y, 1, p.W - 1);
    const b = this.rand(y, 2, p.W);
    const d1 = d < 4 ? 2 + this.rand(X, 3, 2) : 2;
    const a1 = 1 + this.rand(X, 4, p.P1 - 1);
    const b1 = this.rand(X, 5, p.P1);
    return { d, a, b, d1, a1, b1 };
  }

  /** The K' values of Table 2, ascending. */
  kPrimes(): number[] {
    return this.t.table2.map((r) => r[0]);
  }
}

export function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let i = 2; i * i <= n; i++) if (n % i === 0) return false;
  return true;
}

/** §4.4.1.2 Partition[I, J]. */
export function partition(I: number, J: number): { IL: number; IS: number; JL: number; JS: number } {
  const IL = Math.ceil(I / J);
  const IS = Math.floor(I / J);
  const JL = I - IS * J;
  return { IL, IS, JL, JS: J - JL };
}

/**
 * §4.3 derivation of (T, Z, N) from F, P', Al, SS, WS, as the RFC writes
 * it (T = P', assumed a multiple of Al).
 */
export function deriveOti(
  rfc: Rfc6330,
  F: number,
  P: number,
  Al: number,
  SS: number,
  WS: number,
): { T: number; Z: number; N: number } {
  const T = P;
  const Kt = Math.ceil(F / T);
  const Nmax = Math.floor(T / (SS * Al));
  const kp = rfc.kPrimes();
  const KL = (n: number): number => {
    const limit = WS / (Al * Math.ceil(T / (Al * n)));
    // Largest K' <= limit (binary search over the ascending column).
    let lo = 0;
    let hi = kp.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (kp[mid] <= limit) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? 0 : kp[lo - 1];
  };
  const Z = Math.ceil(Kt / KL(Nmax));
  let N = Nmax;
  for (let n = 1; n <= Nmax; n++) {
    if (Math.ceil(Kt / Z) <= KL(n)) {
      N = n;
      break;
    }
  }
  return { T, Z, N };
}
