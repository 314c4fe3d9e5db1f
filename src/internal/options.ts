/**
 * The options of every combinator, declared once: each option's name, the combinators that take it and its parser.
 * `Settings`, the list of names and the check for options a combinator does not take are derived from the table.
 * An option is checked before anything runs: a wrong value is an `InvalidOptionError` naming it, never clamped or
 * ignored (Effect's own `Duration` reading turns `-1` into zero, which would make `timeout: -1` "time out at once").
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Schedule from "effect/Schedule"
import type { Budget } from "../Budget.js"
import { isBudget } from "../Budget.js"
import { InvalidOptionError } from "../FanOutError.js"
import type { Adaptive } from "../Hedge.js"
import { isAdaptive } from "../Hedge.js"
import { show } from "./show.js"

/** The combinators that take options, by the name they have in error messages. */
export type Combinator =
  | "FanOut.all"
  | "FanOut.forEach"
  | "FanOut.settle"
  | "FanOut.settleForEach"
  | "FanOut.quorum"
  | "FanOut.firstSuccess"
  | "FanOut.stream"

/**
 * Hedging as the fan-out runs it: the delay in milliseconds before a backup (read from `adaptive` when it is set), at
 * most `max` attempts in all; `nonFatal`, when set, says which typed failures start the next attempt (the others end
 * every attempt at once).
 */
export interface Hedge {
  readonly delay: number
  readonly max: number
  readonly adaptive?: Adaptive | undefined
  readonly nonFatal?: ((error: unknown) => boolean) | undefined
  /**
   * A fan-out's `hedge.delay` given as a function of each task's key and index (one delay per downstream): each
   * task's hedging, with its own delay, read before any task starts. `delay` and `adaptive` are then unused.
   */
  readonly delayOf?: ((key: PropertyKey, index: number) => Hedge) | undefined
}

const invalid = (option: string, reason: string) => new InvalidOptionError({ option, reason })

/** A non-negative duration in milliseconds; `Infinity` for an infinite one. */
export const millis = (value: unknown, option: string): number | undefined => {
  if (value === undefined) return undefined
  const wrong = (why: string) => invalid(option, `must be a non-negative duration, ${why}, got ${show(value)}`)
  if (typeof value === "number") {
    if (Number.isNaN(value)) throw wrong("NaN is not a duration")
    if (value < 0) throw wrong("it is negative")
  } else if (typeof value === "bigint") {
    if (value < BigInt(0)) throw wrong("it is negative")
  } else if (typeof value === "string") {
    if (/^\s*-/.test(value)) throw wrong("it is negative")
  } else if (Array.isArray(value)) {
    if (value.length !== 2 || !value.every((part) => typeof part === "number" && !Number.isNaN(part) && part >= 0)) {
      throw wrong("a [seconds, nanos] pair needs two non-negative numbers")
    }
  } else if (!Duration.isDuration(value) && (typeof value !== "object" || value === null)) {
    throw wrong("expected a number of milliseconds, a Duration or a string such as \"2 seconds\"")
  }
  const decoded = Duration.fromInput(value as Duration.Input)
  if (decoded._tag === "None") {
    throw wrong(
      typeof value === "string"
        ? "expected a number and a unit such as \"2 seconds\" (nanos, micros, millis, seconds, minutes, hours, days, weeks)"
        : "it could not be read"
    )
  }
  const ms = Duration.toMillis(decoded.value)
  if (Number.isNaN(ms) || ms < 0) throw wrong("it is negative")
  return ms
}

const concurrency = (value: unknown): number => {
  if (value === undefined || value === "unbounded" || value === Infinity) return Infinity
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw invalid("concurrency", `must be a positive integer or "unbounded", got ${show(value)}`)
  }
  return value
}

const boolean = (option: string) => (value: unknown): boolean => {
  if (value === undefined) return false
  if (typeof value !== "boolean") throw invalid(option, `must be true or false, got ${show(value)}`)
  return value
}

const optionalBoolean = (option: string) => (value: unknown): boolean | undefined =>
  value === undefined ? undefined : boolean(option)(value)

const name = (value: unknown): string | undefined => {
  if (value === undefined) return undefined
  if (typeof value !== "string" || value.length === 0) {
    throw invalid("name", `must be a non-empty string, got ${show(value)}`)
  }
  return value
}

const retry = (value: unknown): Schedule.Schedule<any, any, any> | undefined => {
  if (value === undefined) return undefined
  if (!Schedule.isSchedule(value)) throw invalid("retry", `must be a Schedule, got ${show(value)}`)
  return value as Schedule.Schedule<any, any, any>
}

/**
 * The most attempts `hedge.max` may ask for: every attempt may become a running fiber, so an unbounded count is a
 * way to exhaust memory, not a policy.
 */
export const maxHedgeAttempts = 100

/** @internal */
export const hedge = (value: unknown, option = "hedge", perTaskDelays = true): Hedge | undefined => {
  if (value === undefined) return undefined
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalid(option, `must be { delay, max? }, got ${show(value)}`)
  }
  const record = value as Record<string, unknown>
  for (const key of Object.keys(record)) {
    if (key !== "delay" && key !== "max" && key !== "nonFatal" && record[key] !== undefined) {
      throw invalid(`${option}.${key}`, "is not a hedging setting (the settings: delay, max, nonFatal)")
    }
  }
  if (record.delay === undefined) throw invalid(`${option}.delay`, "is required")
  const perTask = typeof record.delay === "function"
    ? record.delay as (key: PropertyKey, index: number) => unknown
    : undefined
  if (perTask !== undefined && !perTaskDelays) {
    throw invalid(
      `${option}.delay`,
      "must be a duration or Hedge.adaptive here: a function of the task's key is for a fan-out's hedge option"
    )
  }
  const nonFatal = record.nonFatal
  if (nonFatal !== undefined && typeof nonFatal !== "function") {
    throw invalid(`${option}.nonFatal`, `must be a function from an error to a boolean, got ${show(nonFatal)}`)
  }
  const max = record.max === undefined ? 2 : record.max
  if (typeof max !== "number" || !Number.isInteger(max) || max < 1 || max > maxHedgeAttempts) {
    throw invalid(`${option}.max`, `must be an integer from 1 to ${maxHedgeAttempts}, got ${show(max)}`)
  }
  const fatalityOf = nonFatal as ((error: unknown) => boolean) | undefined
  if (perTask !== undefined) {
    // `delay` is each task's, read by `delayOf`; the fan-out's own is unused.
    const delayOf = (key: PropertyKey, index: number): Hedge => ({
      ...delaySetting(perTask(key, index), `${option}.delay (task ${show(key)})`),
      max,
      nonFatal: fatalityOf
    })
    return { delay: 0, max, nonFatal: fatalityOf, delayOf }
  }
  const { adaptive, delay } = delaySetting(record.delay, `${option}.delay`)
  if (adaptive === undefined && nonFatal === undefined) return { delay, max }
  return { delay, max, adaptive, nonFatal: fatalityOf }
}

/** A hedge delay as given (a duration, or `Hedge.adaptive`): its milliseconds (the adaptive one's `max` until read). */
const delaySetting = (given: unknown, option: string): { readonly delay: number; readonly adaptive?: Adaptive } => {
  if (isAdaptive(given)) return { delay: given.maxMillis, adaptive: given }
  const delay = millis(given, option)
  if (delay === undefined) throw invalid(option, "is undefined, not a duration or Hedge.adaptive")
  return { delay }
}

/** The budget of each task, by its key and index: one for all, or one per downstream the tasks call. */
export type BudgetOf = (key: PropertyKey, index: number) => Budget | undefined

const budget = (value: unknown): BudgetOf | undefined => {
  if (value === undefined) return undefined
  if (isBudget(value)) return () => value
  if (typeof value === "function") {
    const of = value as BudgetOf
    return (key, index) => {
      const found = of(key, index)
      if (found === undefined || isBudget(found)) return found
      throw invalid("budget", `gave task ${show(key)} ${show(found)}, not a Budget made by Budget.make or undefined`)
    }
  }
  throw invalid(
    "budget",
    `must be a Budget made by Budget.make, or a function from a task's key to one, got ${show(value)}`
  )
}

const required = (value: unknown): ReadonlyArray<unknown> | undefined => {
  if (value === undefined) return undefined
  if (!Array.isArray(value)) throw invalid("required", `must be an array of task keys, got ${show(value)}`)
  return value
}

const label = (value: unknown): ((item: any, index: number) => string) | undefined => {
  if (value === undefined) return undefined
  if (typeof value !== "function") throw invalid("label", `must be a function, got ${show(value)}`)
  return value as (item: any, index: number) => string
}

const every: ReadonlyArray<Combinator> = [
  "FanOut.all",
  "FanOut.forEach",
  "FanOut.settle",
  "FanOut.settleForEach",
  "FanOut.quorum",
  "FanOut.firstSuccess",
  "FanOut.stream"
]
const failFast: ReadonlyArray<Combinator> = ["FanOut.all", "FanOut.forEach"]
const settling: ReadonlyArray<Combinator> = ["FanOut.settle", "FanOut.settleForEach"]
const forEachForms: ReadonlyArray<Combinator> = ["FanOut.forEach", "FanOut.settleForEach"]

/** Every option: who takes it, and how it is read. */
const table = {
  concurrency: { takes: every, read: concurrency },
  timeout: { takes: every, read: (value: unknown) => millis(value, "timeout") },
  deadline: { takes: every, read: (value: unknown) => millis(value, "deadline") },
  retry: { takes: every, read: retry },
  hedge: { takes: every, read: (value: unknown) => hedge(value) },
  budget: { takes: every, read: budget },
  name: { takes: every, read: name },
  taskSpans: { takes: every, read: optionalBoolean("taskSpans") },
  report: { takes: [...failFast, ...settling], read: boolean("report") },
  detach: { takes: failFast, read: boolean("detach") },
  discard: { takes: failFast, read: boolean("discard") },
  outcomes: { takes: failFast, read: boolean("outcomes") },
  required: { takes: settling, read: required },
  label: { takes: forEachForms, read: label }
} as const

/** The options of a fan-out, read and checked. */
export type Settings = { readonly [K in keyof typeof table]: ReturnType<(typeof table)[K]["read"]> }

/** Every option's name: a record holding only these (and no effect) is options, not a struct of tasks. */
export const names: ReadonlySet<string> = new Set(Object.keys(table))

/** For options a fan-out does not have, what to use instead (options of `Effect.all`, of the Effect 3 line). */
const hints: Readonly<Record<string, string>> = {
  mode: `: for Effect.all's mode "result" (every result, failures included), use FanOut.settle`,
  batching: ": on Effect 4, requests made by concurrent tasks are batched by their RequestResolver's own window, " +
    "as with Effect.all: no option is needed"
}

/** The settings of no options at all, read once. */
let defaultsRead: Settings | undefined = undefined
const defaultSettings = (): Settings => defaultsRead ??= readAll({})

/**
 * Reads and checks the options of `combinator`: an option it does not take (a misspelt one, `detach` on `settle`) is
 * an `InvalidOptionError` naming it, rather than ignored.
 */
export const settings = (raw: unknown, combinator: Combinator): Settings => {
  if (raw === undefined) return defaultSettings()
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw invalid("options", `must be an object, got ${show(raw)}`)
  }
  const o = raw as Record<string, unknown>
  for (const key of Object.keys(o)) {
    if (o[key] === undefined) continue
    const option = (table as Record<string, { readonly takes: ReadonlyArray<Combinator> }>)[key]
    if (option === undefined || !option.takes.includes(combinator)) {
      const known = Object.keys(table).filter((name) => table[name as keyof typeof table].takes.includes(combinator))
      throw invalid(key, `is not an option of ${combinator} (its options: ${known.join(", ")})${hints[key] ?? ""}`)
    }
  }
  return readAll(o)
}

const readAll = (o: Record<string, unknown>): Settings => {
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(table) as Array<keyof typeof table>) out[key] = table[key].read(o[key])
  if (out.discard === true && out.outcomes === true) {
    throw invalid(
      "outcomes",
      "cannot be combined with `discard`: discard keeps no task's value, outcomes keeps them all"
    )
  }
  return out as Settings
}
