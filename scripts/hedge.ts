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
import { Effect } from "effect"
import * as Embedded from "../examples/analytics/harness/Embedded.js"
import * as Simulator from "../examples/analytics/harness/Simulator.js"
import { counted, flags, healthy, load, report, withApp } from "./app/runs.js"

const cli = flags("hedge", process.argv.slice(2), ["requests", "concurrency", "deadline", "hedges"])
const options = {
  requests: cli.integer("requests", 200, 100_000),
  concurrency: cli.integer("concurrency", 8, 1000),
  deadline: cli.integer("deadline", 800, 60_000),
  hedges: cli.list("hedges", "off,p95")
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

/** One run of the app with `FEATURE_HEDGE=hedge`: a fresh app, so fresh delays and budgets per service. */
const run = (hedge: string) =>
  Effect.gen(function*() {
    const simulators = yield* Simulator.SimulatorsService
    const base = yield* Embedded.apiUrl
    const rows: Array<Row> = []
    for (const phase of Object.keys(phases) as Array<Phase>) {
      simulators.scenario(phases[phase])
      const statuses: Record<string, number> = {}
      const panels: Record<string, number> = {}
      const times: Array<number> = []
      yield* load(options.requests, options.concurrency, async (i) => {
        const started = performance.now()
        const response = await fetch(`${base}/customers/c-${i}/usage?deadlineMs=${options.deadline}`)
        const body = await response.json() as { panels?: ReadonlyArray<{ feature: string; status: string }> }
        times.push(performance.now() - started)
        statuses[response.status] = (statuses[response.status] ?? 0) + 1
        const reports = body.panels?.find((panel) => panel.feature === "reports")?.status ?? "none"
        panels[reports] = (panels[reports] ?? 0) + 1
      })
      times.sort((a, b) => a - b)
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
  }).pipe(withApp({ FEATURE_HEDGE: hedge }))

report(
  "hedge",
  options.hedges,
  run,
  [
    `${options.requests} requests per phase, ${options.concurrency} in flight, partial mode, deadline ${options.deadline} ms`,
    "",
    "| `FEATURE_HEDGE` | phase | calls to reports per request | reports panels | request p50 ms | p99 ms | max ms | statuses |",
    "|---|---|---:|---|---:|---:|---:|---|"
  ],
  (row) =>
    `| ${row.hedge} | ${row.phase} | ${(row.reportsCalls / options.requests).toFixed(2)} | ${counted(row.panels)} | ${
      row.p50.toFixed(1)
    } | ${row.p99.toFixed(1)} | ${row.max.toFixed(1)} | ${counted(row.statuses)} |`
)
