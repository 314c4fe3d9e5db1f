/**
 * Checks the options shared by the combinators before anything runs. Effect's own `Duration.decode` turns a
 * negative or NaN number into zero, which would make `timeout: -1` mean "time out at once": a silent wrong answer,
 * so durations are checked here first.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Predicate from "effect/Predicate"
import { InvalidOptionError } from "../FanOutError.js"

/**
 * A bound on the tasks running at once: a positive integer, `Infinity` for unbounded (`"unbounded"`, `Infinity`, or
 * nothing), or `"inherit"`, the caller's `Effect.withConcurrency` setting, read when the fan-out runs (as `Effect.all`
 * does).
 *
 * @internal
 */
export const concurrency = (value: unknown, option = "concurrency"): number | "inherit" => {
  if (value === undefined || value === "unbounded" || value === Infinity) return Infinity
  if (value === "inherit") return value
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw new InvalidOptionError({
      option,
      reason: `must be a positive integer, "unbounded" or "inherit", got ${show(value)}`
    })
  }
  return value
}

/** @internal */
export const duration = (value: unknown, option: string): Duration.Duration | undefined => {
  if (value === undefined) return undefined
  const invalid = (why: string) =>
    new InvalidOptionError({ option, reason: `must be a non-negative duration, ${why}, got ${show(value)}` })
  if (typeof value === "number") {
    if (Number.isNaN(value)) throw invalid("NaN is not a duration")
    if (value < 0) throw invalid("it is negative")
  } else if (typeof value === "bigint") {
    if (value < BigInt(0)) throw invalid("it is negative")
  } else if (typeof value === "string") {
    if (/^\s*-/.test(value)) throw invalid("it is negative")
  } else if (Array.isArray(value)) {
    if (value.length !== 2 || !value.every((part) => typeof part === "number" && !Number.isNaN(part) && part >= 0)) {
      throw invalid("a [seconds, nanos] pair needs two non-negative numbers")
    }
  } else if (!Duration.isDuration(value)) {
    throw invalid("expected a number of milliseconds, a Duration or a string such as \"2 seconds\"")
  }
  const decoded = Duration.decodeUnknown(value as Duration.DurationInput)
  if (decoded._tag === "None") {
    throw invalid(
      typeof value === "string"
        ? "expected a number and a unit such as \"2 seconds\" (nanos, micros, millis, seconds, minutes, hours, days, weeks)"
        : "it could not be read"
    )
  }
  return decoded.value
}

/** @internal */
export const positiveInteger = (value: unknown, option: string): number => {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw new InvalidOptionError({ option, reason: `must be a positive integer, got ${show(value)}` })
  }
  return value
}

/** @internal */
export const boolean = (value: unknown, option: string): boolean => {
  if (value === undefined) return false
  if (typeof value !== "boolean") {
    throw new InvalidOptionError({ option, reason: `must be true or false, got ${show(value)}` })
  }
  return value
}

/**
 * Whether requests are batched across tasks: `true`, `false` (or nothing), or `"inherit"`, the caller's
 * `Effect.withRequestBatching` setting, read when the fan-out runs.
 *
 * @internal
 */
export const batching = (value: unknown): boolean | "inherit" => {
  if (value === undefined) return false
  if (typeof value !== "boolean" && value !== "inherit") {
    throw new InvalidOptionError({ option: "batching", reason: `must be true, false or "inherit", got ${show(value)}` })
  }
  return value
}

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
  if (Predicate.isFunction(value)) return "a function"
  if (Array.isArray(value)) {
    if (depth >= 2) return "[…]"
    const items = value.slice(0, 10).map((item) => showValue(item, depth + 1))
    return `[${items.join(", ")}${value.length > 10 ? ", …" : ""}]`
  }
  if (typeof value === "object" && value !== null) {
    if (Predicate.hasProperty(value, "then") && Predicate.isFunction(value.then)) return "a promise"
    if (value instanceof Set) return "a Set"
    if (value instanceof Map) return "a Map"
    if (Symbol.iterator in value) return "an iterable that is not an array"
    if (Predicate.hasProperty(value, "length") && typeof value.length === "number") {
      return "an array-like object that is not an array"
    }
    try {
      return JSON.stringify(value) ?? "an object"
    } catch {
      return "an object"
    }
  }
  return String(value)
}

/** @internal */
export const name = (value: unknown): string | undefined => {
  if (value === undefined) return undefined
  if (typeof value !== "string" || value.length === 0) {
    throw new InvalidOptionError({ option: "name", reason: `must be a non-empty string, got ${show(value)}` })
  }
  return value
}
