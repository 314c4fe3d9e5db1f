/**
 * What `npm run budget` and `npm run hedge` share: their flags, a run of the analytics API with its embedded
 * simulators under a given environment, usage requests sent a few at a time, and the end of the script.
 */
import { Effect, Layer, Logger } from "effect"
import * as Embedded from "../../examples/analytics/harness/Embedded.js"
import type * as Simulator from "../../examples/analytics/harness/Simulator.js"

/** The script's command line: `--name=value` flags, only those in `allowed`; a wrong one ends the script. */
export const flags = (script: string, argv: ReadonlyArray<string>, allowed: ReadonlyArray<string>) => {
  const fail = (message: string): never => {
    console.error(`${script}: ${message}`)
    process.exit(1)
  }
  for (const arg of argv) {
    if (!allowed.some((name) => arg.startsWith(`--${name}=`))) fail(`unrecognised flag ${arg}`)
  }
  const value = (name: string) => argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3)
  const integer = (name: string, fallback: number, max: number) => {
    const raw = value(name)
    if (raw === undefined) return fallback
    const n = /^\d+$/.test(raw) ? Number(raw) : NaN
    return n >= 1 && n <= max ? n : fail(`--${name}=${raw}: an integer from 1 to ${max}`)
  }
  const list = (name: string, fallback: string) => (value(name) ?? fallback).split(",")
  return { fail, integer, list }
}

/** Every service answering in 1–3 ms, none failing: what each phase changes one service of. */
export const healthy: Simulator.Overrides = {
  all: { latencyMs: 1, jitterMs: 2, errorRate: 0, malformedRate: 0, hangRate: 0, crash: false }
}

/**
 * Runs `effect` against a fresh API (fresh budgets and hedge delays per service) with its embedded simulators on
 * 127.0.0.1, under `config`. The app's logs are dropped: it logs every failed and cancelled call, thousands of lines
 * that say nothing here.
 */
export const withApp = (config: Record<string, string>) => {
  const app = Embedded.layer({ listen: { port: 0, host: "127.0.0.1" }, config }).pipe(Layer.provide(Logger.layer([])))
  return <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provide(effect, app)
}

/** Calls `send(i)` for `i` from 0 to `n - 1`, `concurrency` at a time (each one sends a request and reads it). */
export const load = (n: number, concurrency: number, send: (i: number) => Promise<void>): Effect.Effect<void> =>
  Effect.promise(async () => {
    let next = 0
    const worker = async () => {
      while (next < n) await send(next++)
    }
    await Promise.all(Array.from({ length: concurrency }, worker))
  })

/** `n` of each key, as a table cell: `194× ok, 6× timed_out`. */
export const counted = (record: Record<string, number>): string =>
  Object.entries(record).map(([key, n]) => `${n}× ${key}`).join(", ")

/** Runs the script's main effect and exits: 0 when it succeeded, 1 with its error when it failed. */
const main = <A, E>(script: string, effect: Effect.Effect<A, E>): void => {
  Effect.runPromise(effect).then(
    () => process.exit(0),
    (error) => {
      console.error(`${script}: ${String(error)}`)
      process.exit(1)
    }
  )
}

/**
 * Runs `run` once per setting (each on a fresh app), then prints `head` and one table line per row, and exits: the
 * script's whole main.
 */
export const report = <Row, E>(
  script: string,
  settings: ReadonlyArray<string>,
  run: (setting: string) => Effect.Effect<ReadonlyArray<Row>, E>,
  head: ReadonlyArray<string>,
  line: (row: Row) => string
): void =>
  main(
    script,
    Effect.gen(function*() {
      const rows: Array<Row> = []
      for (const setting of settings) rows.push(...(yield* run(setting)))
      console.log([...head, ...rows.map(line)].join("\n"))
    })
  )
