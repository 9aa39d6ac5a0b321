// Money: the API speaks integer fen, the console shows and takes yuan. The conversion is
// string and integer arithmetic only (never a float), so 0.1 + 0.2 cannot creep in, and
// a third decimal is refused rather than rounded away.

export const PAY_LIMIT_MAX_FEN = 100000000;

/** "1234.50" for 123450 fen; "" for null. */
export function yuanText(fen) {
  if (fen == null) return "";
  const sign = fen < 0 ? "-" : "";
  const abs = Math.abs(fen);
  return `${sign}${Math.trunc(abs / 100)}.${String(abs % 100).padStart(2, "0")}`;
}

/** "¥1,234.50" for display; "—" for null. */
export function yuan(fen) {
  if (fen == null) return "—";
  const [whole, cents] = yuanText(fen).split(".");
  return `¥${whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",")}.${cents}`;
}

/** A console-side field error, shown like the API's (`param` names the field). */
export class AmountError extends Error {
  constructor(code, param) {
    super(code);
    this.name = "AmountError";
    this.code = code;
    this.param = param;
  }
}

/**
 * Fen for a yuan text typed by the user ("12", "12.5", "12.50"): ASCII digits, at most two
 * decimals, from 0.01 to `maxFen`; "" is null (no limit). Throws AmountError naming `param`.
 */
export function parseYuan(text, param, maxFen = PAY_LIMIT_MAX_FEN) {
  const value = String(text ?? "").trim();
  if (value === "") return null;
  if (/^\d+\.\d{3,}$/.test(value)) throw new AmountError("yuan_too_many_decimals", param);
  const match = /^(\d{1,12})(?:\.(\d{1,2}))?$/.exec(value);
  if (!match) throw new AmountError("yuan_not_a_number", param);
  const fen = Number(match[1]) * 100 + Number((match[2] || "").padEnd(2, "0"));
  if (fen < 1 || fen > maxFen) throw new AmountError("yuan_out_of_range", param);
  return fen;
}

/**
 * Fen for a partial refund typed in yuan: required, from 0.01 up to what the order still has
 * to refund (checked before sending; the API checks again under its condition).
 */
export function parseRefundYuan(text, param, refundableFen) {
  if (!String(text ?? "").trim()) throw new AmountError("refund_amount_missing", param);
  let fen;
  try {
    fen = parseYuan(text, param, Number.MAX_SAFE_INTEGER);
  } catch (error) {
    throw error.code === "yuan_out_of_range" ? new AmountError("refund_amount_out_of_range", param) : error;
  }
  if (fen > refundableFen) throw new AmountError("refund_amount_out_of_range", param);
  return fen;
}
