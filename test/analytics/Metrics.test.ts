/**
 * The application's metrics exported over OTLP/HTTP to a collector stand-in on 127.0.0.1: the fan-outs' outcome
 * counts and the attempt metrics the layer turns on, flushed when the layer closes.
 */
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Schedule } from "effect"
import * as Metrics from "../../examples/analytics/Metrics.js"
import { Budget, FanOut } from "../../src/index.js"
import { collector } from "./support.js"

/** The data points of metric `name` in the exported bodies whose `fanout` attribute is `fanout`. */
const points = (bodies: ReadonlyArray<any>, name: string, fanout: string): Array<any> =>
  bodies.flatMap((body) =>
    body.json.resourceMetrics.flatMap((r: any) =>
      r.scopeMetrics.flatMap((s: any) =>
        s.metrics.filter((metric: any) => metric.name === name).flatMap((metric: any) =>
          (metric.sum ?? metric.histogram ?? metric.gauge).dataPoints.filter((point: any) =>
            point.attributes.some((a: any) => a.key === "fanout" && a.value.stringValue === fanout)
          )
        )
      )
    )
  )

const attribute = (point: any, key: string) => point.attributes.find((a: any) => a.key === key)?.value.stringValue

/** A task failing its first `failures` calls with "down". */
const flaky = (failures: number) => {
  let calls = 0
  return Effect.suspend(() => ++calls <= failures ? Effect.fail("down") : Effect.succeed(calls))
}

describe("Metrics.layerOtlp", () => {
  it.live("exports the outcome and attempt metrics over OTLP/HTTP as JSON, flushed when the layer closes", () =>
    Effect.gen(function*() {
      const { bodies, port } = yield* collector
      const budget = Budget.makeUnsafe({ maxTokens: 2, tokenRatio: 1 })
      yield* Effect.scoped(
        Effect.gen(function*() {
          // "ok" answers on its second call; "down" fails all three; "budgeted" is refused its retry by a budget
          // at its floor.
          yield* FanOut.settle({ ok: flaky(1), down: flaky(9) }, { retry: Schedule.recurs(2), name: "metrics.test" })
          yield* FanOut.settle([flaky(9)], { retry: Schedule.recurs(2), budget, name: "metrics.budget" })
        }).pipe(Effect.provide(Metrics.layerOtlp(`http://127.0.0.1:${port}/`, { intervalMillis: 60_000 })))
      )
      expect(bodies.map((body) => body.path)).toEqual(["/v1/metrics"])
      // Sent as the spans' service.
      expect(bodies[0].json.resourceMetrics[0].resource.attributes).toContainEqual({
        key: "service.name",
        value: { stringValue: "analytics" }
      })
      const started = points(bodies, "fanout_attempts_started_total", "metrics.test")
      const byType = Object.fromEntries(started.map((p) => [attribute(p, "type"), Number(p.asDouble ?? p.asInt)]))
      expect(byType).toMatchObject({ original: 2, retry: 3 })
      const outcomes = points(bodies, "fanout_task_outcomes_total", "metrics.test")
      const byOutcome = Object.fromEntries(
        outcomes.map((p) => [attribute(p, "outcome"), Number(p.asDouble ?? p.asInt)])
      )
      expect(byOutcome).toMatchObject({ Success: 1, Failure: 1 })
      const retries = points(bodies, "fanout_task_retries", "metrics.test")
      expect(retries.map((p) => [Number(p.count), Number(p.sum)])).toEqual([[2, 3]])
      // A budget of 2 tokens allows retries while more than 1 is left: the first failure leaves 1, so no retry.
      const refused = points(bodies, "fanout_attempts_refused_total", "metrics.budget")
      expect(refused.map((p) => [attribute(p, "reason"), Number(p.asDouble ?? p.asInt)])).toContainEqual(["budget", 1])
    }).pipe(Effect.scoped))

  it.live("a collector that cannot be reached fails nothing: the fan-out answers and the layer closes", () =>
    Effect.gen(function*() {
      // A port that was just free: nothing listens there.
      const { port } = yield* Effect.scoped(collector)
      const exit = yield* Effect.exit(Effect.scoped(
        FanOut.settle([flaky(1)], { retry: Schedule.recurs(1), name: "metrics.unreachable" }).pipe(
          Effect.provide(Metrics.layerOtlp(`http://127.0.0.1:${port}`, { intervalMillis: 60_000 }))
        )
      ))
      expect(exit).toMatchObject({ _tag: "Success", value: [{ _tag: "Success", value: 2, attempts: 2 }] })
    }))

  it("OTEL_METRIC_EXPORT_INTERVAL takes 100 to 3600000 whole milliseconds", () => {
    const read = (raw: string) =>
      Effect.runSync(
        Effect.exit(Metrics.exportInterval.parse(ConfigProvider.fromEnv({ env: { OTEL_METRIC_EXPORT_INTERVAL: raw } })))
      )
    expect(read("60000")).toMatchObject({ _tag: "Success", value: 60000 })
    expect(read("100")).toMatchObject({ _tag: "Success", value: 100 })
    for (const bad of ["99", "3600001", "1e4", "ten", "0x10"]) expect(read(bad)._tag, bad).toBe("Failure")
  })
})
