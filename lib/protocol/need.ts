/**
 * NEED (type 8), client -> server: how many symbols one channel's blocks
 * still need at this client (docs/PROTOCOL.md §4.11, semantics §7a).
 *
 *   header(8) | cookieLen u8 | cookie | tsi u32 | rqseq u32 | loss u16
 *             | count u8 | count x (toi u32 | firstSbn u8 | lastSbn u8 | need u16)
 *
 * `rqseq` is the highest EXT_RQSEQ the client had received on the channel
 * when it counted; `loss` its observed loss fraction, in 1/65536ths. Each
 * entry gives every block firstSbn..lastSbn of object `toi` the same need
 * (0: complete, or not wanted). Canonical, and anything else is dropped:
 * 1..NEED_MAX_ENTRIES entries, TOI >= 1, firstSbn <= lastSbn, entries in
 * ascending (toi, firstSbn) order without overlap, and two entries of one
 * TOI whose ranges touch carry different needs (else they are one entry).
 */
import { ByteWriter, isU32 } from './bytes';
import { ControlReader, NEED_MAX_ENTRIES } from './control-header';
import { ProtocolEncodeError } from './errors';
import { readCookie, writeCookie } from './fields';
import { MessageType, NeedEntry, NeedMessage } from './messages';

const isU8 = (v: number): boolean => Number.isInteger(v) && v >= 0 && v <= 0xff;
const isU16 = (v: number): boolean => Number.isInteger(v) && v >= 0 && v <= 0xffff;

/** Why a list of entries is not canonical, or undefined if it is. */
function checkNeedShape(entries: readonly NeedEntry[]): 'bad-need-count' | 'bad-need-entry' | undefined {
  if (entries.length < 1 || entries.length > NEED_MAX_ENTRIES) return 'bad-need-count';
  let prev: NeedEntry | undefined;
  for (const e of entries) {
    if (e.toi < 1 || e.firstSbn > e.lastSbn) return 'bad-need-entry';
    if (prev !== undefined) {
      if (e.toi < prev.toi) return 'bad-need-entry';
      if (e.toi === prev.toi) {
        if (e.firstSbn <= prev.lastSbn) return 'bad-need-entry';
        if (e.firstSbn === prev.lastSbn + 1 && e.need === prev.need) return 'bad-need-entry';
      }
    }
    prev = e;
  }
  return undefined;
}

export function writeNeedBody(w: ByteWriter, msg: NeedMessage): void {
  if (!isU32(msg.tsi) || !isU32(msg.rqseq)) throw new ProtocolEncodeError('tsi and rqseq must be 32-bit unsigned integers');
  if (!isU16(msg.loss)) throw new ProtocolEncodeError('loss must be a 16-bit unsigned integer (1/65536ths)');
  if (!Array.isArray(msg.entries)) throw new ProtocolEncodeError('entries must be an array');
  for (const e of msg.entries) {
    if (!isU32(e.toi) || !isU8(e.firstSbn) || !isU8(e.lastSbn) || !isU16(e.need)) {
      throw new ProtocolEncodeError('a NEED entry is toi u32, firstSbn u8, lastSbn u8, need u16');
    }
  }
  const bad = checkNeedShape(msg.entries);
  if (bad !== undefined) throw new ProtocolEncodeError(`NEED is not canonical: ${bad}`);
  writeCookie(w, msg.cookie);
  w.u32(msg.tsi);
  w.u32(msg.rqseq);
  w.u16(msg.loss);
  w.u8(msg.entries.length);
  for (const e of msg.entries) {
    w.u32(e.toi);
    w.u8(e.firstSbn);
    w.u8(e.lastSbn);
    w.u16(e.need);
  }
}

export function readNeedBody(r: ControlReader): NeedMessage {
  const cookie = readCookie(r);
  const tsi = r.u32();
  const rqseq = r.u32();
  const loss = r.u16();
  const count = r.u8();
  if (count < 1 || count > NEED_MAX_ENTRIES) r.fail('bad-need-count');
  const entries: NeedEntry[] = [];
  for (let i = 0; i < count; i++) entries.push({ toi: r.u32(), firstSbn: r.u8(), lastSbn: r.u8(), need: r.u16() });
  const bad = checkNeedShape(entries);
  if (bad !== undefined) r.fail(bad);
  return { type: MessageType.Need, cookie, tsi, rqseq, loss, entries };
}

/**
 * Entries for per-block needs, in canonical form: `blocks` lists (toi, sbn,
 * need) in any order, one per block; runs of consecutive SBNs of one TOI
 * with the same need become one entry. At most NEED_MAX_ENTRIES entries
 * come back: the ones first in (toi, sbn) order (a caller that has more
 * sends the rest in another NEED).
 */
export function needEntries(blocks: readonly { toi: number; sbn: number; need: number }[]): NeedEntry[] {
  const sorted = blocks.slice().sort((a, b) => a.toi - b.toi || a.sbn - b.sbn);
  const out: NeedEntry[] = [];
  for (const b of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && last.toi === b.toi && last.lastSbn + 1 === b.sbn && last.need === b.need) {
      last.lastSbn = b.sbn;
      continue;
    }
    if (last !== undefined && last.toi === b.toi && b.sbn <= last.lastSbn) continue; // the same block twice: the first wins
    if (out.length === NEED_MAX_ENTRIES) break;
    out.push({ toi: b.toi, firstSbn: b.sbn, lastSbn: b.sbn, need: b.need });
  }
  return out;
}
