/**
 * End to end: the twelve simulators and the analytics API on 127.0.0.1 port 0, called over real HTTP. Each test
 * sets its scenario on the simulators first; the counters at the simulators show what happened to the calls.
 */
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it, layer } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Exit, Fiber, Layer, Scope } from "effect"
import { HttpApiClient } from "effect/http-api"
import { AnalyticsApi } from "../../examples/analytics/Api.js"
import type { CustomerId } from "../../examples/analytics/Domain.js"
import { type Feature, features } from "../../examples/analytics/Features.js"
import * as Embedded from "../../examples/analytics/harness/Embedded.js"
import * as Simulator from "../../examples/analytics/harness/Simulator.js"
import * as Server from "../../examples/analytics/Server.js"
import { featureFailedBody, get, makeCaptureLogger, type RawResponse, stackFrame } from "./support.js"

const healthy: Simulator.Overrides = {
  all: { latencyMs: 1, jitterMs: 5, errorRate: 0, malformedRate: 0, hangRate: 0, crash: false }
}
const others = (feature: string) => features.filter((f) => f !== feature)

const logs = makeCaptureLogger()
const bodies: Array<RawResponse> = []

const App = Embedded.layer({ listen: { port: 0, host: "127.0.0.1" } }).pipe(Layer.provide(logs.layer))

/** Calls the API, remembering the body for the "no stack trace in any body" check. */
const call = (path: string, method = "GET") =>
  Effect.gen(function*() {
    const response = yield* get(`${yield* Embedded.apiUrl}${path}`, method)
    bodies.push(response)
    return response
  })

const scenario = (overrides: Simulator.Overrides) =>
  Effect.map(Simulator.SimulatorsService, (simulators) => {
    simulators.scenario(overrides)
    return simulators
  })

/** Resolves once no call is in flight at any simulator: every request started has completed or been aborted. */
const settled = (simulators: Simulator.Simulators) =>
  Effect.promise(() =>
    simulators.awaitCounts((counts) => {
      const sum = Simulator.total(counts)
      return sum.started === sum.completed + sum.aborted
    })
  )

describe("analytics API end to end", () => {
  layer(App, { excludeTestServices: true })((it) => {
    it.effect("GET /health answers 200", () =>
      Effect.gen(function*() {
        const response = yield* call("/health")
        expect(response.status).toBe(200)
        expect(response.json).toEqual({ status: "ok" })
      }))

    it.effect("partial mode with every service healthy answers twelve ok panels, complete", () =>
      Effect.gen(function*() {
        const simulators = yield* scenario(healthy)
        const response = yield* call("/customers/c-1042/usage")
        expect(response.status).toBe(200)
        expect(response.json.mode).toBe("partial")
        expect(response.json.complete).toBe(true)
        expect(response.json.panels.map((panel: any) => [panel.feature, panel.status])).toEqual(
          features.map((feature) => [feature, "ok"])
        )
        expect(Simulator.total(yield* settled(simulators))).toEqual({ started: 12, completed: 12, aborted: 0 })
      }))

    it.effect("strict mode with every service healthy answers 200 with every panel", () =>
      Effect.gen(function*() {
        const simulators = yield* scenario(healthy)
        const response = yield* call("/customers/c-1042/usage?mode=strict")
        expect(response.status).toBe(200)
        expect(response.json.mode).toBe("strict")
        expect(response.json.complete).toBe(true)
        expect(response.json.panels).toHaveLength(12)
        // Each panel holds what its own service answers for this customer.
        for (const panel of response.json.panels) {
          const direct = yield* get(`${simulators.urls[panel.feature as Feature]}/customers/c-1042/usage`)
          expect(direct.json.feature).toBe(panel.feature)
          expect(panel.usage, panel.feature).toEqual({ count: direct.json.count, lastUsedAt: direct.json.lastUsedAt })
        }
      }))

    it.effect("reuses keep-alive connections to the feature services", () =>
      Effect.gen(function*() {
        const simulators = yield* scenario(healthy)
        yield* call("/customers/c-1/usage")
        yield* call("/customers/c-2/usage")
        const counts = yield* settled(simulators)
        expect(Simulator.total(counts).completed).toBe(24)
        // Connections left open by earlier tests may serve both requests; at most the first one opens a new one.
        for (const feature of features) expect(simulators.connections()[feature], feature).toBeLessThanOrEqual(1)
      }))

    it.effect("the client derived from the spec decodes the response", () =>
      Effect.gen(function*() {
        yield* scenario(healthy)
        const client = yield* HttpApiClient.make(AnalyticsApi, { baseUrl: yield* Embedded.apiUrl })
        const response = yield* client.usage.usage({
          params: { id: "c-7" as CustomerId },
          query: { mode: "partial", deadlineMs: 2000 }
        })
        expect(response.customerId).toBe("c-7")
        expect(response.complete).toBe(true)
      }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

    it.effect("strict mode answers 502 naming the failed feature at its first failure, aborting the calls in flight", () =>
      Effect.gen(function*() {
        // Every other service hangs, so only the API closing their connections can end those calls; payments
        // answers 503 once all twelve requests have reached their simulators (it is held until then).
        const simulators = yield* scenario({
          all: { ...healthy.all, hangRate: 1 },
          payments: { hangRate: 0, errorRate: 1 }
        })
        const releasePayments = simulators.hold("payments")
        const request = yield* Effect.forkChild(call("/customers/c-1042/usage?mode=strict"))
        yield* Effect.promise(() => simulators.awaitCounts((counts) => Simulator.total(counts).started === 12))
        releasePayments()
        const response = yield* Fiber.join(request)
        expect(response.status).toBe(502)
        expect(response.json).toEqual(featureFailedBody("payments", "unavailable"))
        const counts = yield* settled(simulators)
        // Strict mode fails fast: no retry (STRICT_RETRIES defaults to 0), unlike partial mode below.
        expect(counts.payments).toEqual({ started: 1, completed: 1, aborted: 0 })
        for (const feature of others("payments")) {
          expect(counts[feature], feature).toEqual({ started: 1, completed: 0, aborted: 1 })
        }
      }))

    it.effect("partial mode answers eleven ok panels and one failed when a service fails", () =>
      Effect.gen(function*() {
        yield* scenario({ ...healthy, payments: { errorRate: 1 } })
        const response = yield* call("/customers/c-1042/usage")
        expect(response.status).toBe(200)
        expect(response.json.complete).toBe(false)
        const failed = response.json.panels.filter((panel: any) => panel.status !== "ok")
        expect(failed).toEqual([{
          status: "failed",
          feature: "payments",
          reason: "unavailable",
          durationMs: expect.any(Number),
          attempts: 3
        }])
        expect(response.json.panels.filter((panel: any) => panel.status === "ok")).toHaveLength(11)
      }))

    it.effect("partial mode answers at the deadline with the hanging service timed_out", () =>
      Effect.gen(function*() {
        const simulators = yield* scenario({ ...healthy, calendar: { hangRate: 1 } })
        // Long enough for the eleven healthy services (1–6 ms) to answer first on a loaded machine.
        const response = yield* call("/customers/c-1042/usage?deadlineMs=1000")
        expect(response.status).toBe(200)
        expect(response.json.complete).toBe(false)
        const calendar = response.json.panels.find((panel: any) => panel.feature === "calendar")
        expect(calendar).toMatchObject({ status: "timed_out", reason: "deadline", attempts: 1 })
        expect(response.json.panels.filter((panel: any) => panel.status === "ok")).toHaveLength(11)
        // The hanging call was cut off by the API, not answered.
        const counts = yield* settled(simulators)
        expect(counts.calendar).toEqual({ started: 1, completed: 0, aborted: 1 })
      }))

    it.effect("strict mode answers 504 at the deadline naming what was pending", () =>
      Effect.gen(function*() {
        const simulators = yield* scenario({ ...healthy, calendar: { hangRate: 1 } })
        const response = yield* call("/customers/c-1042/usage?mode=strict&deadlineMs=1000")
        expect(response.status).toBe(504)
        expect(response.json._tag).toBe("DeadlineExceeded")
        expect(response.json.deadlineMs).toBe(1000)
        expect(response.json.pending).toEqual(["calendar"])
        const counts = yield* settled(simulators)
        expect(counts.calendar).toEqual({ started: 1, completed: 0, aborted: 1 })
      }))

    it.effect("a crashing service costs its panel; its stack trace is logged, not sent", () =>
      Effect.gen(function*() {
        yield* scenario({ ...healthy, reports: { crash: true } })
        logs.entries.length = 0
        const response = yield* call("/customers/c-1042/usage")
        expect(response.status).toBe(200)
        const reports = response.json.panels.find((panel: any) => panel.feature === "reports")
        expect(reports).toEqual({
          status: "failed",
          feature: "reports",
          reason: "unavailable",
          durationMs: expect.any(Number),
          // A 500 is retried like any 5xx: the service cannot be told from a broken proxy in front of it.
          attempts: 3
        })
        expect(response.text).not.toMatch(/simulated crash/)
        expect(response.text).not.toMatch(stackFrame)
        const logged = logs.entries.find((entry) =>
          entry.annotations.feature === "reports" && entry.annotations.status === 500
        )
        expect(String(logged?.annotations.body)).toMatch(/simulated crash in the reports service/)
        expect(String(logged?.annotations.body)).toMatch(stackFrame)
      }))

    it.effect("strict mode answers 502 for a crashing service without its stack trace", () =>
      Effect.gen(function*() {
        yield* scenario({ ...healthy, reports: { crash: true } })
        const response = yield* call("/customers/c-1042/usage?mode=strict")
        expect(response.status).toBe(502)
        expect(response.json.feature).toBe("reports")
        expect(response.text).not.toMatch(stackFrame)
      }))

    it.effect("a malformed JSON answer is a failed panel with reason bad_response", () =>
      Effect.gen(function*() {
        yield* scenario({ ...healthy, documents: { malformedRate: 1 } })
        const response = yield* call("/customers/c-1042/usage")
        expect(response.status).toBe(200)
        const documents = response.json.panels.find((panel: any) => panel.feature === "documents")
        expect(documents).toEqual({
          status: "failed",
          feature: "documents",
          reason: "bad_response",
          durationMs: expect.any(Number),
          attempts: 1
        })
        expect(response.json.complete).toBe(false)
      }))

    it.effect("strict mode answers 502 for a malformed JSON answer, with reason bad_response", () =>
      Effect.gen(function*() {
        const simulators = yield* scenario({ ...healthy, documents: { malformedRate: 1 } })
        const response = yield* call("/customers/c-1042/usage?mode=strict")
        expect(response.status).toBe(502)
        expect(response.json).toEqual(featureFailedBody("documents", "bad_response"))
        // A bad body is never retried: the service would send the same one again.
        expect((yield* settled(simulators)).documents).toEqual({ started: 1, completed: 1, aborted: 0 })
      }))

    it.effect("bad input answers 400 with a schema message", () =>
      Effect.gen(function*() {
        yield* scenario(healthy)
        const deadlineMs = (got: string) => `deadlineMs must be an integer between 10 and 10000, got "${got}"`
        const cases = [
          ["/customers/NOT-AN-ID/usage", "id", `id must be a customer id such as c-1042, got "NOT-AN-ID"`],
          ["/customers/c-1/usage?mode=eventually", "mode", `mode must be "partial" or "strict", got "eventually"`],
          ["/customers/c-1/usage?mode=STRICT", "mode", `mode must be "partial" or "strict", got "STRICT"`],
          ["/customers/c-1/usage?deadlineMs=5", "deadlineMs", deadlineMs("5")],
          ["/customers/c-1/usage?deadlineMs=-1", "deadlineMs", deadlineMs("-1")],
          ["/customers/c-1/usage?deadlineMs=100000", "deadlineMs", deadlineMs("100000")],
          ["/customers/c-1/usage?deadlineMs=1.5", "deadlineMs", deadlineMs("1.5")],
          ["/customers/c-1/usage?deadlineMs=soon", "deadlineMs", deadlineMs("soon")],
          // Numbers `Number` reads but a query string does not write: decimal digits only.
          ["/customers/c-1/usage?deadlineMs=0x20", "deadlineMs", deadlineMs("0x20")],
          ["/customers/c-1/usage?deadlineMs=1e3", "deadlineMs", deadlineMs("1e3")],
          ["/customers/c-1/usage?deadlineMs=%2B50", "deadlineMs", deadlineMs("+50")],
          // A `+` in a query string is a space.
          ["/customers/c-1/usage?deadlineMs=+50", "deadlineMs", deadlineMs(" 50")],
          ["/customers/c-1/usage?deadlineMs=%2050", "deadlineMs", deadlineMs(" 50")]
        ] as const
        const simulators = yield* Simulator.SimulatorsService
        for (const [path, field, message] of cases) {
          const response = yield* call(path)
          expect(response.status, path).toBe(400)
          expect(response.json._tag, path).toBe("HttpApiDecodeError")
          // One issue per bad parameter, saying what is allowed: no "Expected undefined" for an optional parameter.
          expect(response.json.issues, path).toEqual([{ _tag: "Invalid", path: [field], message }])
          expect(response.json.message, path).toContain(message)
          expect(response.json.message, path).not.toMatch(/Expected undefined/)
        }
        // Rejected before any fan-out: no feature service was called.
        expect(Simulator.total(simulators.counts()).started).toBe(0)
      }))

    it.effect("an unknown query parameter answers 400 naming it and the known ones, instead of being dropped", () =>
      Effect.gen(function*() {
        yield* scenario(healthy)
        const simulators = yield* Simulator.SimulatorsService
        const known = `is unexpected, expected: "mode" | "deadlineMs"`
        for (
          const [query, name] of [
            ["MODE=strict", "MODE"],
            ["mode[]=strict", "mode[]"],
            ["deadlineMs[0]=50", "deadlineMs[0]"],
            ["foo=1", "foo"],
            ["mode=strict&foo=1", "foo"]
          ] as const
        ) {
          const path = `/customers/c-1/usage?${query}`
          const response = yield* call(path)
          expect(response.status, path).toBe(400)
          expect(response.json._tag, path).toBe("HttpApiDecodeError")
          expect(response.json.issues, path).toEqual([{ _tag: "Unexpected", path: [name], message: known }])
          expect(response.json.message, path).toContain(`["${name}"]`)
          expect(response.json.message, path).toContain(known)
        }
        // Every bad parameter is named, not only the first.
        const response = yield* call("/customers/c-1/usage?MODE=strict&mode=eventually")
        expect(response.json.issues.map((issue: any) => issue.path)).toEqual([["MODE"], ["mode"]])
        expect(Simulator.total(simulators.counts()).started).toBe(0)
      }))

    it.effect("an unknown path or method answers 404 with a NotFound body and is not logged as a crash", () =>
      Effect.gen(function*() {
        logs.entries.length = 0
        const cases = [
          ["GET", "/nope", "/nope"],
          ["GET", "/customers/c-1", "/customers/c-1"],
          ["GET", "/customers/c-1/usage/extra", "/customers/c-1/usage/extra"],
          // The query string is not repeated back.
          ["GET", "/nope?token=abc", "/nope"],
          // A known path with another method: the platform's router has no 405.
          ["POST", "/health", "/health"],
          ["DELETE", "/customers/c-1/usage", "/customers/c-1/usage"]
        ] as const
        for (const [method, path, named] of cases) {
          const response = yield* call(path, method)
          expect(response.status, `${method} ${path}`).toBe(404)
          expect(response.json, `${method} ${path}`).toEqual({
            _tag: "NotFound",
            message: `${method} ${named} is not an endpoint of this API`
          })
        }
        expect(logs.entries.filter((entry) => entry.level === "ERROR")).toEqual([])
      }))

    it.effect("no response body contains a stack trace, whatever went wrong", () =>
      Effect.gen(function*() {
        // The check can see one: a crashing simulator's own answer has its stack, and so would a JSON body holding it.
        const simulators = yield* scenario({ ...healthy, reports: { crash: true } })
        expect((yield* get(`${simulators.urls.reports}/customers/c-1/usage`)).text).toMatch(stackFrame)
        expect(JSON.stringify({ message: new Error("boom").stack })).toMatch(stackFrame)
        const faults: ReadonlyArray<Simulator.Overrides> = [
          { ...healthy, reports: { crash: true } },
          { ...healthy, documents: { malformedRate: 1 } },
          { ...healthy, payments: { errorRate: 1 } }
        ]
        const texts: Array<string> = []
        for (const overrides of faults) {
          yield* scenario(overrides)
          for (const mode of ["partial", "strict"]) texts.push((yield* call(`/customers/c-1/usage?mode=${mode}`)).text)
        }
        for (const path of ["/customers/NOPE/usage", "/customers/c-1/usage?deadlineMs=abc", "/nope"]) {
          texts.push((yield* call(path)).text)
        }
        expect(texts).toHaveLength(9)
        for (const text of texts) expect(text).not.toMatch(stackFrame)
        // Nor any other body this file has received.
        for (const body of bodies) expect(body.text).not.toMatch(stackFrame)
      }))
  })
})

describe("analytics API end to end, with a required feature", () => {
  const Required = Embedded.layer({ listen: { port: 0, host: "127.0.0.1" }, config: { REQUIRED_FEATURES: "payments" } })
    .pipe(Layer.provide(makeCaptureLogger().layer))

  layer(Required, { excludeTestServices: true })((it) => {
    it.effect("partial mode fails with 502 when a required feature fails, aborting the other calls", () =>
      Effect.gen(function*() {
        const simulators = yield* scenario({
          all: { ...healthy.all, hangRate: 1 },
          payments: { hangRate: 0, errorRate: 1 }
        })
        // payments fails (three times: partial mode retries it) once every call is in flight.
        const releasePayments = simulators.hold("payments")
        const request = yield* Effect.forkChild(get(`${yield* Embedded.apiUrl}/customers/c-1/usage`))
        yield* Effect.promise(() => simulators.awaitCounts((counts) => Simulator.total(counts).started === 12))
        releasePayments()
        const response = yield* Fiber.join(request)
        expect(response.status).toBe(502)
        expect(response.json).toMatchObject({ _tag: "FeatureFailed", feature: "payments", reason: "unavailable" })
        const counts = yield* settled(simulators)
        for (const feature of others("payments")) {
          expect(counts[feature], feature).toEqual({ started: 1, completed: 0, aborted: 1 })
        }
      }))

    it.effect("partial mode still costs only a panel when an optional feature fails", () =>
      Effect.gen(function*() {
        yield* scenario({ ...healthy, offers: { errorRate: 1 } })
        const response = yield* get(`${yield* Embedded.apiUrl}/customers/c-1/usage`)
        expect(response.status).toBe(200)
        expect(response.json.complete).toBe(false)
      }))
  })
})

describe("analytics API end to end, with a feature service behind the wrong URL", () => {
  const misrouteLogs = makeCaptureLogger()
  // `PAYMENTS_URL` points at the listings service, as a misconfigured deployment would: it answers 200 with
  // well-formed usage, of listings.
  const Misrouted = Layer.unwrap(
    Effect.map(Simulator.SimulatorsService, (simulators) =>
      Server.layer({ port: 0, host: "127.0.0.1" }).pipe(
        Layer.provide(
          ConfigProvider.layer(Embedded.configFor(simulators, { PAYMENTS_URL: simulators.urls.listings }))
        )
      ))
  ).pipe(Layer.provideMerge(Simulator.layer()), Layer.provide(misrouteLogs.layer))

  layer(Misrouted, { excludeTestServices: true })((it) => {
    it.effect("partial mode shows that panel failed with reason bad_response, not another feature's usage", () =>
      Effect.gen(function*() {
        const simulators = yield* scenario(healthy)
        misrouteLogs.entries.length = 0
        const response = yield* get(`${yield* Embedded.apiUrl}/customers/c-1/usage`)
        expect(response.status).toBe(200)
        expect(response.json.complete).toBe(false)
        expect(response.json.panels.filter((panel: any) => panel.status !== "ok")).toEqual([{
          status: "failed",
          feature: "payments",
          reason: "bad_response",
          durationMs: expect.any(Number),
          attempts: 1
        }])
        // Both calls reached the listings service; the payments one was answered and then refused.
        expect((yield* settled(simulators)).listings).toEqual({ started: 2, completed: 2, aborted: 0 })
        expect(misrouteLogs.entries.map((entry) => entry.message)).toContain(
          `payments failed: payments: answer for feature "listings", expected feature "payments"`
        )
        expect(response.text).not.toMatch(/expected feature/)
      }))

    it.effect("strict mode answers 502 naming that feature, with reason bad_response", () =>
      Effect.gen(function*() {
        yield* scenario(healthy)
        const response = yield* get(`${yield* Embedded.apiUrl}/customers/c-1/usage?mode=strict`)
        expect(response.status).toBe(502)
        expect(response.json).toEqual(featureFailedBody("payments", "bad_response"))
      }))
  })
})

describe("analytics API shutting down", () => {
  it.live("finishes the requests in flight before releasing the HTTP client: no downstream call is cut or retried", () =>
    // The app's scope is closed by the test itself, mid-way; the release only matters if the test fails before that.
    Effect.acquireUseRelease(Scope.make(), (scope) =>
      Effect.gen(function*() {
        const app = yield* Layer.buildWithScope(Embedded.layer({ listen: { port: 0, host: "127.0.0.1" } }), scope)
        const simulators = Context.get(app, Simulator.SimulatorsService)
        simulators.scenario(healthy)
        // No service answers until the shutdown has begun.
        const releases = features.map((feature) => simulators.hold(feature))
        const base = yield* Effect.provideContext(Embedded.apiUrl, app)
        const request = yield* Effect.forkChild(get(`${base}/customers/c-1/usage`))
        // Every downstream call has reached its service: the request is in flight.
        yield* Effect.promise(() => simulators.awaitCounts((counts) => Simulator.total(counts).started === 12))

        const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
        // The shutdown has begun once the API takes no new connection.
        yield* Effect.exit(get(`${base}/health`)).pipe(Effect.repeat({ while: Exit.isSuccess }))
        for (const release of releases) release()
        yield* Fiber.join(closing)

        const response = yield* Fiber.join(request)
        expect(response.status).toBe(200)
        expect(response.json.complete).toBe(true)
        for (const panel of response.json.panels) expect(panel.attempts, panel.feature).toBe(1)
        expect(Simulator.total(simulators.counts())).toEqual({ started: 12, completed: 12, aborted: 0 })
      }), (scope) => Scope.close(scope, Exit.void)).pipe(Effect.provide(makeCaptureLogger().layer)))
})
