/**
 * The application's spans, captured by the console exporter's tracer: the real HTTP API on 127.0.0.1 port 0 over
 * `Layer.succeed` doubles, and an OTLP export to a collector stand-in on 127.0.0.1.
 */
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Deferred, Effect, Layer, Option } from "effect"
import type { Tracer } from "effect"
import { features } from "../../examples/analytics/Features.js"
import * as Embedded from "../../examples/analytics/harness/Embedded.js"
import * as Server from "../../examples/analytics/Server.js"
import * as Tracing from "../../examples/analytics/Tracing.js"
import { doubles } from "./doubles.js"
import { collector, get, makeCaptureLogger } from "./support.js"

/** The names of the spans `bodies` exported. */
const exported = (bodies: ReadonlyArray<any>): Array<string> =>
  bodies.flatMap((body) =>
    body.json.resourceSpans.flatMap((r: any) => r.scopeSpans.flatMap((s: any) => s.spans.map((span: any) => span.name)))
  ).sort()

/** The parent's span id (spans are compared by id: each tracer layer wraps the span objects of the one below). */
const parentOf = (span: Tracer.Span): string | undefined => Option.getOrUndefined(span.parent)?.spanId

/** Serves the API over doubles with the console exporter writing into `lines`; `ended` collects the spans. */
const tracedApp = (
  behaviours: Parameters<typeof doubles>[0],
  lines: Array<string>,
  ended: Array<Tracer.Span>,
  serverSpanEnded: Deferred.Deferred<void>
) =>
  Server.serveWith({ port: 0, host: "127.0.0.1" }, doubles(behaviours)).pipe(
    Layer.provide(Tracing.layerConsole((line) => lines.push(line))),
    // The console layer wraps the tracer in place when it is built: this one, which also keeps each span.
    Layer.provide(Tracing.layerReporting((span) => {
      ended.push(span)
      if (span.kind === "server") Deferred.doneUnsafe(serverSpanEnded, Effect.void)
    })),
    Layer.provide(makeCaptureLogger().layer)
  )

describe("tracing", () => {
  it.live("a request's spans nest: HTTP request → Usage.forCustomer → usage.partial → one span per feature", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const ended: Array<Tracer.Span> = []
      const serverSpanEnded = yield* Deferred.make<void>()
      const response = yield* Effect.gen(function*() {
        const response = yield* get(`${yield* Embedded.apiUrl}/customers/c-9/usage?mode=partial`)
        // The server span ends once the response is written: wait for it rather than for time to pass.
        yield* Deferred.await(serverSpanEnded)
        return response
      }).pipe(
        Effect.provide(tracedApp({ offers: (_, fail) => fail("BadResponse") }, lines, ended, serverSpanEnded))
      )
      expect(response.status).toBe(200)

      const server = ended.find((span) => span.kind === "server")!
      expect(server.name).toBe("GET")
      expect(server.attributes.get("http.response.status_code")).toBe(200)
      const usage = ended.find((span) => span.name === "Usage.forCustomer")!
      expect(parentOf(usage)).toBe(server.spanId)
      const fanOut = ended.find((span) => span.name === "usage.partial")!
      expect(parentOf(fanOut)).toBe(usage.spanId)
      expect(Object.fromEntries(fanOut.attributes)).toMatchObject({
        "fanout.mode": "settle",
        "fanout.tasks": 12,
        "fanout.outcome.Success": 11,
        "fanout.outcome.Failure": 1,
        "fanout.outcome.Defect": 0,
        "fanout.outcome.TimedOut": 0,
        "fanout.outcome.Interrupted": 0
      })

      const tasks = ended.filter((span) => parentOf(span) === fanOut.spanId)
      expect(tasks.map((span) => span.name).sort()).toEqual([...features].sort())
      const offers = tasks.find((span) => span.name === "offers")!
      expect(offers.attributes.get("fanout.task.outcome")).toBe("Failure")
      expect(offers.attributes.get("fanout.task.attempts")).toBe(1)
      expect(tasks.find((span) => span.name === "listings")!.attributes.get("fanout.task.outcome")).toBe("Success")
      // Every span of the request belongs to one trace.
      expect(new Set(ended.map((span) => span.traceId))).toEqual(new Set([server.traceId]))

      // The console exporter's line for the fan-out: parent, outcome counts (zero counts left out).
      const line = lines.find((line) => line.includes(" usage.partial "))!
      expect(line).toMatch(new RegExp(`^trace=${server.traceId.slice(0, 8)} usage\\.partial [\\d.]+ms `))
      expect(line).toContain("parent=Usage.forCustomer")
      expect(line).toContain("fanout.outcome.Success=11 fanout.outcome.Failure=1")
      expect(line).not.toContain("fanout.outcome.Defect")
      expect(lines.find((line) => line.includes(" offers "))).toMatch(
        /parent=usage\.partial error .*fanout\.task\.outcome=Failure fanout\.task\.attempts=1/
      )
      expect(lines).toHaveLength(ended.length)
    }))

  it.live("exports spans over OTLP/HTTP as JSON, flushed when the layer closes", () =>
    Effect.gen(function*() {
      const { bodies, port } = yield* collector
      yield* Effect.scoped(
        Effect.void.pipe(
          Effect.withSpan("child", { attributes: { feature: "listings" } }),
          Effect.withSpan("usage.partial"),
          Effect.provide(Tracing.layerOtlp(`http://127.0.0.1:${port}/`))
        )
      )
      expect(bodies.map((body) => body.path)).toEqual(["/v1/traces"])
      const spans = bodies[0].json.resourceSpans[0].scopeSpans[0].spans
      expect(spans.map((span: any) => span.name).sort()).toEqual(["child", "usage.partial"])
      const child = spans.find((span: any) => span.name === "child")
      const parent = spans.find((span: any) => span.name === "usage.partial")
      expect(child.parentSpanId).toBe(parent.spanId)
      expect(child.attributes).toContainEqual({ key: "feature", value: { stringValue: "listings" } })
    }).pipe(Effect.scoped))

  it.live("exports only the traces its sampler keeps (OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG)", () =>
    Effect.gen(function*() {
      const trace = (sampling: Tracing.Sampling, port: number) =>
        Effect.scoped(
          Effect.void.pipe(
            Effect.withSpan("child"),
            Effect.withSpan("usage.partial"),
            Effect.provide(Tracing.layerOtlp(`http://127.0.0.1:${port}`, { sampling }))
          )
        )
      const kept = yield* collector
      yield* trace({ sampler: "parentbased_traceidratio", ratio: 1 }, kept.port)
      expect(exported(kept.bodies)).toEqual(["child", "usage.partial"])
      // Ratio 0 keeps no root, and a child follows its parent's decision; always_off keeps nothing either.
      const dropped = yield* collector
      yield* trace({ sampler: "parentbased_traceidratio", ratio: 0 }, dropped.port)
      yield* trace({ sampler: "always_off", ratio: 1 }, dropped.port)
      expect(exported(dropped.bodies)).toEqual([])
    }).pipe(Effect.scoped))

  it.live("below a span its sampler dropped, spansIfSampled makes no spans at all; below a kept one, all of them", () =>
    Effect.gen(function*() {
      const { port } = yield* collector
      const made = (sampling: Tracing.Sampling) => {
        const names: Array<string> = []
        return Effect.scoped(
          Effect.void.pipe(
            Effect.withSpan("feature.listings.usage"),
            Effect.withSpan("usage.partial"),
            Tracing.spansIfSampled,
            Effect.withSpan("GET"),
            Effect.provide(
              Tracing.layerReporting((span) => names.push(span.name)).pipe(
                Layer.provide(Tracing.layerOtlp(`http://127.0.0.1:${port}`, { sampling }))
              )
            )
          )
        ).pipe(Effect.as(names))
      }
      expect(yield* made({ sampler: "parentbased_always_on", ratio: 1 })).toEqual([
        "feature.listings.usage",
        "usage.partial",
        "GET"
      ])
      expect(yield* made({ sampler: "parentbased_always_off", ratio: 1 })).toEqual(["GET"])
    }).pipe(Effect.scoped))

  it.effect("reads its sampler from OpenTelemetry's variables, every trace by default", () =>
    Effect.gen(function*() {
      const read = (env: Record<string, string>) =>
        Tracing.sampling.parse(ConfigProvider.fromEnv({ env })).pipe(Effect.map(Tracing.sampler))
      expect((yield* read({})).toString()).toMatch(/^ParentBased\{root=AlwaysOnSampler/)
      expect(
        (yield* read({ OTEL_TRACES_SAMPLER: "parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG: "0.1" })).toString()
      ).toMatch(/^ParentBased\{root=TraceIdRatioBased\{0\.1\}/)
      expect((yield* read({ OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "0.25" })).toString())
        .toBe("TraceIdRatioBased{0.25}")
      expect((yield* read({ OTEL_TRACES_SAMPLER: "always_off" })).toString()).toBe("AlwaysOffSampler")
    }))
})
