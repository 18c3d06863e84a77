import fc from 'fast-check';
import { ChannelMembership, emptyDiff, isEmptyDiff, type MembershipDiff } from '../../lib/session/channel-membership';

type Snapshot = Map<string, Set<number>>;

function snapshot(m: ChannelMembership<number, string>, channels: string[]): Snapshot {
  const s: Snapshot = new Map();
  for (const c of channels) if (m.members(c).size > 0) s.set(c, new Set(m.members(c)));
  return s;
}

/** Applies a diff to a snapshot, as the replicator would apply the commands. */
function apply(before: Snapshot, diff: MembershipDiff<number, string>): Snapshot {
  const after: Snapshot = new Map(Array.from(before, ([c, s]) => [c, new Set(s)]));
  for (const [c, ms] of diff.removed) for (const m of ms) {
    if (!after.get(c)?.delete(m)) throw new Error(`diff removes ${m} from ${c}, which it was not on`);
  }
  for (const [c, ms] of diff.added) for (const m of ms) {
    const set = after.get(c) ?? new Set<number>();
    if (set.has(m)) throw new Error(`diff adds ${m} to ${c}, which it was already on`);
    set.add(m);
    after.set(c, set);
  }
  for (const [c, s] of after) if (s.size === 0) after.delete(c);
  return after;
}

const CHANNELS = ['a', 'b', 'c', 'd', 'e'];

describe('ChannelMembership', () => {
  test('replace drops omitted channels and adds new ones, reporting both', () => {
    const m = new ChannelMembership<number, string>();
    const d1 = m.replace(1, ['a', 'b']);
    expect(d1.added).toEqual(new Map([['a', new Set([1])], ['b', new Set([1])]]));
    expect(d1.removed.size).toBe(0);
    const d2 = m.replace(1, ['b', 'c']);
    expect(d2.added).toEqual(new Map([['c', new Set([1])]]));
    expect(d2.removed).toEqual(new Map([['a', new Set([1])]]));
    expect(Array.from(m.channelsOf(1)).sort()).toEqual(['b', 'c']);
    expect(m.members('a').size).toBe(0);
    expect(isEmptyDiff(m.replace(1, ['c', 'b', 'b']))).toBe(true);
  });

  test('removeMember drops a member from every channel at once', () => {
    const m = new ChannelMembership<number, string>();
    m.replace(1, ['a', 'b', 'c']);
    m.replace(2, ['a']);
    const d = m.removeMember(1);
    expect(d.removed).toEqual(new Map([['a', new Set([1])], ['b', new Set([1])], ['c', new Set([1])]]));
    expect(m.memberCount).toBe(1);
    expect(m.channelCount).toBe(1);
    expect(isEmptyDiff(m.removeMember(1))).toBe(true);
  });

  test('a diff shared by several mutations is grouped per channel and nets out', () => {
    const m = new ChannelMembership<number, string>();
    const d = emptyDiff<number, string>();
    for (let i = 0; i < 100; i++) m.add(i, 'a', d);
    m.add(5, 'b', d);
    m.remove(5, 'b', d);
    expect(d.added.get('a')?.size).toBe(100);
    expect(d.added.has('b')).toBe(false);
    expect(d.removed.has('b')).toBe(false);
  });

  test('removeChannel drops all its members', () => {
    const m = new ChannelMembership<number, string>();
    m.replace(1, ['a', 'b']);
    m.replace(2, ['a']);
    const d = m.removeChannel('a');
    expect(d.removed).toEqual(new Map([['a', new Set([1, 2])]]));
    expect(m.has(1, 'b')).toBe(true);
    expect(m.memberCount).toBe(1);
  });

  test('random operations: diffs applied to the old state give the new state, and both indexes agree', () => {
    const op = fc.oneof(
      fc.record({ k: fc.constant('replace' as const), m: fc.nat(8), cs: fc.subarray(CHANNELS) }),
      fc.record({ k: fc.constant('add' as const), m: fc.nat(8), c: fc.constantFrom(...CHANNELS) }),
      fc.record({ k: fc.constant('remove' as const), m: fc.nat(8), c: fc.constantFrom(...CHANNELS) }),
      fc.record({ k: fc.constant('removeMember' as const), m: fc.nat(8) }),
      fc.record({ k: fc.constant('removeChannel' as const), c: fc.constantFrom(...CHANNELS) }),
    );
    fc.assert(
      fc.property(fc.array(fc.array(op, { minLength: 1, maxLength: 5 }), { maxLength: 60 }), (batches) => {
        const m = new ChannelMembership<number, string>();
        const model = new Map<number, Set<string>>();
        let state = snapshot(m, CHANNELS);
        for (const batch of batches) {
          const diff = emptyDiff<number, string>();
          for (const o of batch) {
            switch (o.k) {
              case 'replace':
                m.replace(o.m, o.cs, diff);
                model.set(o.m, new Set(o.cs));
                break;
              case 'add':
                m.add(o.m, o.c, diff);
                model.set(o.m, (model.get(o.m) ?? new Set()).add(o.c));
                break;
              case 'remove':
                m.remove(o.m, o.c, diff);
                model.get(o.m)?.delete(o.c);
                break;
              case 'removeMember':
                m.removeMember(o.m, diff);
                model.delete(o.m);
                break;
              case 'removeChannel':
                m.removeChannel(o.c, diff);
                for (const cs of model.values()) cs.delete(o.c);
                break;
            }
          }
          const next = snapshot(m, CHANNELS);
          expect(apply(state, diff)).toEqual(next);
          state = next;
          for (let id = 0; id <= 8; id++) {
            expect(new Set(m.channelsOf(id))).toEqual(model.get(id) ?? new Set());
            for (const c of CHANNELS) expect(m.members(c).has(id)).toBe(m.has(id, c));
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});
