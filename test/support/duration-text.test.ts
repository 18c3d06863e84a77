import { durationText } from '../../lib/support/duration-text';

describe('durationText', () => {
  test('below a second: whole milliseconds', () => {
    expect(durationText(0)).toBe('0 ms');
    expect(durationText(150)).toBe('150 ms');
    expect(durationText(999.4)).toBe('999 ms');
  });

  test('from a second: seconds with at most one decimal', () => {
    expect(durationText(1000)).toBe('1 s');
    expect(durationText(999.6)).toBe('1 s');
    expect(durationText(1500)).toBe('1.5 s');
    expect(durationText(20_000)).toBe('20 s');
    expect(durationText(2_049)).toBe('2 s');
    expect(durationText(90_000)).toBe('90 s');
  });

  test('what is not a duration is shown as given', () => {
    expect(durationText(-5)).toBe('-5 ms');
    expect(durationText(Number.NaN)).toBe('NaN ms');
  });
});
