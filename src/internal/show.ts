/**
 * A wrong value, for an error message: as JSON where that reads well, else what it is (JSON says `{}` for a `Set`, a
 * generator or a promise). Never throws, whatever the value (a cycle, a revoked `Proxy`, a getter that throws), and
 * stays short.
 *
 * @internal
 */
export const show = (value: unknown): string => {
  try {
    const shown = showValue(value, 0)
    return shown.length > 200 ? `${shown.slice(0, 200)}…` : shown
  } catch {
    return "a value that cannot be shown"
  }
}

const showValue = (value: unknown, depth: number): string => {
  if (typeof value === "string") return JSON.stringify(value)
  if (typeof value === "bigint") return `${value}n`
  if (typeof value === "function") return "a function"
  if (Array.isArray(value)) {
    if (depth >= 2) return "[…]"
    const items = value.slice(0, 10).map((item) => showValue(item, depth + 1))
    return `[${items.join(", ")}${value.length > 10 ? ", …" : ""}]`
  }
  if (typeof value === "object" && value !== null) {
    if ("then" in value && typeof value.then === "function") return "a promise"
    if (value instanceof Set) return "a Set"
    if (value instanceof Map) return "a Map"
    if (Symbol.iterator in value) return "an iterable that is not an array"
    if ("length" in value && typeof value.length === "number") return "an array-like object that is not an array"
    // As JSON for a plain record, a few levels and keys deep: a deep or cyclic value is cut, not walked whole.
    if (depth >= 2) return "{…}"
    const keys = Object.keys(value)
    const record = value as Record<string, unknown>
    const entries = keys.slice(0, 10).map((key) => `${JSON.stringify(key)}:${showValue(record[key], depth + 1)}`)
    return `{${entries.join(",")}${keys.length > 10 ? ",…" : ""}}`
  }
  return String(value)
}
