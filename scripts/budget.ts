/**
 * `npm run budget`: what a retry budget does to a downstream that fails every call. The analytics API with its
 * embedded simulators, `payments` answering 503 to every call and the other eleven healthy, gets `--requests` usage
 * requests (partial mode, `FEATURE_RETRIES` 2: up to three calls per feature), at most `--concurrency` in flight,
 * once with `RETRY_BUDGET=off` and once with each budget given (default `10:0.1`, the app's default); the simulators
 * count the calls each service received. Then as many requests again with `payments` failing half its calls (at
 * 10:0.1 a bucket drained by failures stays drained until fewer than about 1 call in 11 fails: gRPC's design keeps
 * retries off while they would mostly fail), and as many with it healthy. Prints a Markdown table, the one in
 * docs/BENCHMARKS.md.
 *
 *   npm run budget                                  200 requests, 8 in flight, budgets off and 10:0.1
 *   npm run budget -- --requests=500 --concurrency=16 --budgets=off,10:0.1,100:0.1
 */
import { Effect } from "effect"
import * as Embedded from "../examples/analytics/harness/Embedded.js"
import * as Simulator from "../examples/analytics/harness/Simulator.js"
import { counted, flags, healthy, load, report, withApp } from "./app/runs.js"

const cli = flags("budget", process.argv.slice(2), ["requests", "concurrency", "budgets"])
const options = {
  requests: cli.integer("requests", 200, 100_000),
  concurrency: cli.integer("concurrency", 8, 1000),
  budgets: cli.list("budgets", "off,10:0.1")
}

const phases = {
  "payments failing every call": { ...healthy, payments: { errorRate: 1 } },
  "payments failing half its calls": { ...healthy, payments: { errorRate: 0.5 } },
  "payments healthy": healthy
} satisfies Record<string, Simulator.Overrides>

type Phase = keyof typeof phases

interface Row {
  readonly budget: string
  readonly phase: Phase
  readonly requests: number
  readonly payments: number
  readonly othersPerRequest: number
  readonly statuses: Record<string, number>
}

/** One run of the app with `RETRY_BUDGET=budget`: a fresh app, so a fresh budget per service. */
const run = (budget: string) =>
  Effect.gen(function*() {
    const simulators = yield* Simulator.SimulatorsService
    const base = yield* Embedded.apiUrl
    const rows: Array<Row> = []
    for (const phase of Object.keys(phases) as Array<Phase>) {
      simulators.scenario(phases[phase])
      const statuses: Record<string, number> = {}
      yield* load(options.requests, options.concurrency, async (i) => {
        const response = await fetch(`${base}/customers/c-${i}/usage`)
        await response.arrayBuffer()
        statuses[response.status] = (statuses[response.status] ?? 0) + 1
      })
      const counts = simulators.counts()
      const others = Simulator.total(counts).started - counts.payments.started
      rows.push({
        budget,
        phase,
        requests: options.requests,
        payments: counts.payments.started,
        othersPerRequest: others / options.requests / 11,
        statuses
      })
    }
    return rows
  }).pipe(withApp({ RETRY_BUDGET: budget }))

report(
  "budget",
  options.budgets,
  run,
  [
    `| \`RETRY_BUDGET\` | phase | requests | calls to payments | per request | calls to each other service per request | statuses |`,
    `|---|---|---:|---:|---:|---:|---|`
  ],
  (row) =>
    `| ${row.budget} | ${row.phase} | ${row.requests} | ${row.payments} | ${
      (row.payments / row.requests).toFixed(2)
    } | ${row.othersPerRequest.toFixed(2)} | ${counted(row.statuses)} |`
)
