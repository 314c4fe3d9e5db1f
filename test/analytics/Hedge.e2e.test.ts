/**
 * The app's hedging end to end (`FEATURE_HEDGE`), with the real clients and simulators: a call that has not answered
 * by its service's delay gets one backup call over HTTP, the first answer wins and the other call is cancelled and
 * logged as such. (The delays and their learning are tested with `TestClock` in Usage.test.ts.)
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as Embedded from "../../examples/analytics/harness/Embedded.js"
import * as Simulator from "../../examples/analytics/harness/Simulator.js"
import { get, makeCaptureLogger } from "./support.js"

const healthy: Simulator.Overrides = {
  all: { latencyMs: 1, jitterMs: 0, errorRate: 0, malformedRate: 0, hangRate: 0, crash: false }
}

/** `n` requests one after another to an app with `FEATURE_HEDGE=hedge`, `reports` behaving as `reports` says. */
const requests = (hedge: string, reports: Partial<Simulator.Settings>, n: number, deadlineMs: number) => {
  const logs = makeCaptureLogger()
  return Effect.gen(function*() {
    const simulators = yield* Simulator.SimulatorsService
    simulators.scenario({ ...healthy, reports })
    const base = yield* Embedded.apiUrl
    const panels: Array<unknown> = []
    for (let i = 0; i < n; i++) {
      const response = yield* get(`${base}/customers/c-${i}/usage?deadlineMs=${deadlineMs}`)
      expect(response.status).toBe(200)
      panels.push((response.json as any).panels.find((panel: any) => panel.feature === "reports"))
    }
    return { panels, counts: simulators.counts(), logs: logs.entries }
  }).pipe(
    Effect.provide(
      Embedded.layer({ listen: { port: 0, host: "127.0.0.1" }, config: { FEATURE_HEDGE: hedge } }).pipe(
        Layer.provide(logs.layer)
      )
    )
  )
}

describe("hedging in the app", () => {
  it.live(
    "a call still running at the delay gets a backup over HTTP; both calls of a hung service end at the deadline",
    () =>
      Effect.gen(function*() {
        // reports never answers: its call gets a backup at 250 ms (nothing learned yet), which never answers either.
        const hung = yield* requests("p95", { hangRate: 1 }, 2, 800)
        expect(hung.panels).toMatchObject([
          { status: "timed_out", reason: "deadline", attempts: 2 },
          { status: "timed_out", reason: "deadline", attempts: 2 }
        ])
        expect(hung.counts.reports.started).toBe(4)
        // Every other service answered its one call.
        expect(hung.counts.listings.started).toBe(2)
        const cancelled = hung.logs.filter((entry) =>
          entry.message === "feature call cancelled: Deadline" && entry.annotations.feature === "reports"
        )
        expect(cancelled).toHaveLength(4)

        // Without FEATURE_HEDGE, one call a request.
        const off = yield* requests("off", { hangRate: 1 }, 1, 400)
        expect(off.panels).toMatchObject([{ status: "timed_out", attempts: 1 }])
        expect(off.counts.reports.started).toBe(1)
      }),
    30_000
  )

  it.live(
    "a slow call loses to its backup, and is logged as a hedge lost",
    () =>
      Effect.gen(function*() {
        // reports answers every call after 600 ms: the first call's backup, at 250 ms, answers at 850 ms, after the
        // first call has (at 600 ms), so the backup is the one cancelled.
        const slow = yield* requests("p95", { latencyMs: 600 }, 1, 2000)
        expect(slow.panels).toMatchObject([{ status: "ok", attempts: 2 }])
        expect(slow.counts.reports.started).toBe(2)
        const lost = slow.logs.filter((entry) =>
          entry.message === "feature call cancelled: HedgeLost" && entry.annotations.feature === "reports"
        )
        expect(lost).toHaveLength(1)
      }),
    30_000
  )
})
