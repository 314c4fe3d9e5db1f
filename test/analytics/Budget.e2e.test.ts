/**
 * The app's retry budgets end to end: one per feature service, shared across requests, so that a service failing every
 * call gets about one call per request instead of three (`FEATURE_RETRIES` 2).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as Embedded from "../../examples/analytics/harness/Embedded.js"
import * as Simulator from "../../examples/analytics/harness/Simulator.js"
import { get, makeCaptureLogger } from "./support.js"

const failingPayments: Simulator.Overrides = {
  all: { latencyMs: 1, jitterMs: 0, errorRate: 0, malformedRate: 0, hangRate: 0, crash: false },
  payments: { errorRate: 1 }
}

/** `n` requests one after another to an app with `RETRY_BUDGET=budget`; the calls each simulator received. */
const callsFor = (budget: string, n: number) =>
  Effect.gen(function*() {
    const simulators = yield* Simulator.SimulatorsService
    simulators.scenario(failingPayments)
    const base = yield* Embedded.apiUrl
    const attempts: Array<number> = []
    for (let i = 0; i < n; i++) {
      const response = yield* get(`${base}/customers/c-${i}/usage`)
      expect(response.status).toBe(200)
      attempts.push(response.json.panels.find((panel: any) => panel.feature === "payments").attempts)
    }
    return { counts: simulators.counts(), attempts }
  }).pipe(
    Effect.provide(
      Embedded.layer({ listen: { port: 0, host: "127.0.0.1" }, config: { RETRY_BUDGET: budget } }).pipe(
        Layer.provide(makeCaptureLogger().layer)
      )
    )
  )

describe("retry budgets in the app", () => {
  it.live(
    "a service failing every call: three calls a request without a budget, one once its budget is spent",
    () =>
      Effect.gen(function*() {
        const off = yield* callsFor("off", 10)
        expect(off.counts.payments.started).toBe(30)
        expect(off.attempts).toStrictEqual(Array(10).fill(3))
        // 10 tokens, retries while more than 5 are left: 3 calls (7 left), 2 calls (5 left), then 1 call a request.
        const budgeted = yield* callsFor("10:0.1", 10)
        expect(budgeted.attempts).toStrictEqual([3, 2, 1, 1, 1, 1, 1, 1, 1, 1])
        expect(budgeted.counts.payments.started).toBe(13)
        // The healthy services are called once a request either way.
        expect(budgeted.counts.listings.started).toBe(10)
      }),
    30_000
  )
})
