// Beijing days for the 交易 view: the API's summary days are Beijing dates ("YYYY-MM-DD") and
// its list filters epoch seconds. China keeps UTC+8 all year (no daylight saving), so a fixed
// offset is exact, and the browser's own zone never matters. No DOM: tests run it in Node.

const DAY_SECONDS = 86400;
const BEIJING_OFFSET_SECONDS = 8 * 3600;
export const MAX_SUMMARY_DAYS = 90;
export const PRESETS = [["today", "今天", 1], ["7d", "近7天", 7], ["30d", "近30天", 30], ["90d", "近90天", 90]];

/** "YYYY-MM-DD" of the Beijing day an epoch second falls on. */
export function beijingDay(seconds) {
  return new Date((seconds + BEIJING_OFFSET_SECONDS) * 1000).toISOString().slice(0, 10);
}

/** The epoch second a Beijing day starts at (its 00:00:00 in Beijing). */
export function dayStart(day) {
  return Date.parse(day + "T00:00:00Z") / 1000 - BEIJING_OFFSET_SECONDS;
}

export function addDays(day, count) {
  return beijingDay(dayStart(day) + count * DAY_SECONDS);
}

/** How many days from `fromDay` to `toDay`, both counted. */
export function dayCount(fromDay, toDay) {
  return Math.round((dayStart(toDay) - dayStart(fromDay)) / DAY_SECONDS) + 1;
}

/** The range of a preset ("7d": the last seven Beijing days, today included). */
export function presetRange(preset, nowSeconds) {
  const days = (PRESETS.find(([id]) => id === preset) || PRESETS[1])[2];
  const today = beijingDay(nowSeconds);
  return {from_day: addDays(today, 1 - days), to_day: today};
}

/** The list filters' `from` (included) and `to` (excluded) for a day range: its first second and the next day's. */
export function rangeSeconds(fromDay, toDay) {
  return {from: dayStart(fromDay), to: dayStart(toDay) + DAY_SECONDS};
}

/** Every day of the range, the API's days filled in and the others zero (the chart has a bar slot per day). */
export function everyDay(fromDay, toDay, days = []) {
  const byDay = new Map(days.map((day) => [day.day, day]));
  const count = Math.min(dayCount(fromDay, toDay), 366);
  return Array.from({length: Math.max(count, 0)}, (_, i) => {
    const day = addDays(fromDay, i);
    return {trade_amount: 0, trade_count: 0, refund_amount: 0, refund_count: 0, ...byDay.get(day), day};
  });
}
