/**
 * `npm run hedge`: what hedging (`FEATURE_HEDGE`) does to a request's latency, and what it costs the service it
 * hedges. The analytics API with its embedded simulators gets `--requests` usage requests (partial mode, deadline
 * `--deadline` ms), at most `--concurrency` in flight, once per `FEATURE_HEDGE` setting given (default `off,p95`),
 * each run a fresh app (fresh adaptive delays and retry budgets), in three phases of `reports`: hanging on 5% of its
 * calls (the rest answering in 1–3 ms), slow for everyone (100–120 ms), and failing every call (503). The simulators
 * count the calls each service received; each request's time is taken around its `fetch`. Prints a Markdown table,
 * the one in docs/BENCHMARKS.md.
 *
 *   npm run hedge                                   200 requests, 8 in flight, deadline 800 ms, off and p95
 *   npm run hedge -- --requests=1000 --concurrency=16 --hedges=off,p95,p99
 */
import { Effect, Layer, Logger } from "effect"
import * as Embedded from "../examples/analytics/harness/Embedded.js"
import * as Simulator from "../examples/analytics/harness/Simulator.js"

function fail(message: string): never {
  console.error(`hedge: ${message}`)
  process.exit(1)
}

const flags = (argv: ReadonlyArray<string>) => {
  const value = (name: string) => argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3)
  for (const arg of argv) {
    if (!/^--(requests|concurrency|deadline|hedges)=/.test(arg)) fail(`unrecognised flag ${arg}`)
  }
  const integer = (name: string, fallback: number, max: number) => {
    const raw = value(name)
    if (raw === undefined) return fallback
    const n = /^\d+$/.test(raw) ? Number(raw) : NaN
    return n >= 1 && n <= max ? n : fail(`--${name}=${raw}: an integer from 1 to ${max}`)
  }
  return {
    requests: integer("requests", 200, 100_000),
    concurrency: integer("concurrency", 8, 1000),
    deadline: integer("deadline", 800, 60_000),
    hedges: (value("hedges") ?? "off,p95").split(",")
  }
}

const options = flags(process.argv.slice(2))

const healthy: Simulator.Overrides = {
  all: { latencyMs: 1, jitterMs: 2, errorRate: 0, malformedRate: 0, hangRate: 0, crash: false }
}

const phases = {
  "reports hangs on 5% of calls": { ...healthy, reports: { hangRate: 0.05 } },
  "reports slow for everyone (100–120 ms)": { ...healthy, reports: { latencyMs: 100, jitterMs: 20 } },
  "reports failing every call": { ...healthy, reports: { errorRate: 1 } }
} satisfies Record<string, Simulator.Overrides>

type Phase = keyof typeof phases

interface Row {
  readonly hedge: string
  readonly phase: Phase
  readonly reportsCalls: number
  readonly panels: Record<string, number>
  readonly p50: number
  readonly p99: number
  readonly max: number
  readonly statuses: Record<string, number>
}

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!

/** Sends `n` requests, `concurrency` at a time; each one's time, status and `reports` panel status. */
const load = (base: string, n: number, concurrency: number) =>
  Effect.promise(async () => {
    const statuses: Record<string, number> = {}
    const panels: Record<string, number> = {}
    const times: Array<number> = []
    let next = 0
    const worker = async () => {
      while (next < n) {
        const i = next++
        const started = performance.now()
        const response = await fetch(`${base}/customers/c-${i}/usage?deadlineMs=${options.deadline}`)
        const body = await response.json() as { panels?: ReadonlyArray<{ feature: string; status: string }> }
        times.push(performance.now() - started)
        statuses[response.status] = (statuses[response.status] ?? 0) + 1
        const reports = body.panels?.find((panel) => panel.feature === "reports")?.status ?? "none"
        panels[reports] = (panels[reports] ?? 0) + 1
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker))
    return { statuses, panels, times: times.sort((a, b) => a - b) }
  })

/** One run of the app with `FEATURE_HEDGE=hedge`: a fresh app, so fresh delays and budgets per service. */
const run = (hedge: string) =>
  Effect.gen(function*() {
    const simulators = yield* Simulator.SimulatorsService
    const base = yield* Embedded.apiUrl
    const rows: Array<Row> = []
    for (const phase of Object.keys(phases) as Array<Phase>) {
      simulators.scenario(phases[phase])
      const { panels, statuses, times } = yield* load(base, options.requests, options.concurrency)
      rows.push({
        hedge,
        phase,
        reportsCalls: simulators.counts().reports.started,
        panels,
        p50: percentile(times, 0.5),
        p99: percentile(times, 0.99),
        max: times[times.length - 1]!,
        statuses
      })
    }
    return rows
  }).pipe(
    Effect.provide(
      Embedded.layer({ listen: { port: 0, host: "127.0.0.1" }, config: { FEATURE_HEDGE: hedge } }).pipe(
        // The app logs every failed and cancelled call: thousands of lines that say nothing here.
        Layer.provide(Logger.layer([]))
      )
    )
  )

const main = Effect.gen(function*() {
  const rows: Array<Row> = []
  for (const hedge of options.hedges) rows.push(...(yield* run(hedge)))
  const count = (record: Record<string, number>) => Object.entries(record).map(([key, n]) => `${n}× ${key}`).join(", ")
  const lines = [
    `${options.requests} requests per phase, ${options.concurrency} in flight, partial mode, deadline ${options.deadline} ms`,
    "",
    "| `FEATURE_HEDGE` | phase | calls to reports per request | reports panels | request p50 ms | p99 ms | max ms | statuses |",
    "|---|---|---:|---|---:|---:|---:|---|",
    ...rows.map((row) =>
      `| ${row.hedge} | ${row.phase} | ${(row.reportsCalls / options.requests).toFixed(2)} | ${count(row.panels)} | ${
        row.p50.toFixed(1)
      } | ${row.p99.toFixed(1)} | ${row.max.toFixed(1)} | ${count(row.statuses)} |`
    )
  ]
  console.log(lines.join("\n"))
})

Effect.runPromise(main).then(
  () => process.exit(0),
  (error) => fail(String(error))
)
