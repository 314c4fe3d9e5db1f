/**
 * The real HTTP API served on port 0 with `Layer.succeed` doubles for the feature clients: what a crash inside
 * the application looks like from outside.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Duration, Effect, Layer } from "effect"
import { UsageResponse } from "../../examples/analytics/Domain.js"
import * as Embedded from "../../examples/analytics/harness/Embedded.js"
import * as Server from "../../examples/analytics/Server.js"
import { Usage } from "../../examples/analytics/Usage.js"
import { doubles, usageOf } from "./doubles.js"
import { featureFailedBody, get, makeCaptureLogger, stackFrame } from "./support.js"

const logs = makeCaptureLogger()

const App = Server.serveWith(
  { port: 0, host: "127.0.0.1" },
  doubles({
    listings: () =>
      Effect.sync(() => {
        throw new TypeError("boom: cannot read properties of undefined (reading 'plan')")
      })
  })
).pipe(Layer.provide(logs.layer))

describe("analytics API over doubled clients", () => {
  layer(App, { excludeTestServices: true })((it) => {
    it.effect("partial mode answers 200 with the crashed feature's panel failed, and no stack or message in the body", () =>
      Effect.gen(function*() {
        const response = yield* get(`${yield* Embedded.apiUrl}/customers/c-5/usage`)
        expect(response.status).toBe(200)
        expect(response.json.panels[0]).toMatchObject({
          status: "failed",
          feature: "listings",
          reason: "internal_error"
        })
        expect(response.text).not.toMatch(/boom|TypeError/)
        expect(response.text).not.toMatch(stackFrame)
        const logged = logs.entries.find((entry) => entry.level === "ERROR" && entry.annotations.feature === "listings")
        expect(String(logged?.annotations.stack)).toMatch(/TypeError: boom/)
      }))

    it.effect("strict mode answers 502 naming the crashed feature, and no stack or message in the body", () =>
      Effect.gen(function*() {
        const response = yield* get(`${yield* Embedded.apiUrl}/customers/c-5/usage?mode=strict`)
        expect(response.status).toBe(502)
        expect(response.json).toEqual(featureFailedBody("listings", "internal_error"))
        expect(response.text).not.toMatch(/boom|TypeError/)
      }))
  })
})

describe("analytics API with a bug of its own", () => {
  const crashLogs = makeCaptureLogger()
  // A client that answers what its type does not allow: building the response throws inside the handler, a defect
  // no fan-out catches.
  const App = Server.serveWith(
    { port: 0, host: "127.0.0.1" },
    doubles({ offers: (customerId) => Effect.succeed({ ...usageOf("offers", customerId), count: "many" } as any) })
  ).pipe(Layer.provide(crashLogs.layer))

  layer(App, { excludeTestServices: true })((it) => {
    it.effect("answers 500 with an empty body and logs the defect as a crash", () =>
      Effect.gen(function*() {
        const response = yield* get(`${yield* Embedded.apiUrl}/customers/c-5/usage`)
        expect(response.status).toBe(500)
        expect(response.text).toBe("")
        const crashes = crashLogs.entries.filter((entry) =>
          entry.level === "ERROR" && entry.message === "request crashed"
        )
        expect(crashes).toHaveLength(1)
        expect(crashes[0]!.cause).toMatch(
          /not a UsageResponse: Expected number\n\s+at \["panels"\]\[3\]\["usage"\]\["count"\]/
        )
        // The 500 the platform sent is not logged as if it were part of the crash.
        expect(crashes[0]!.cause).not.toMatch(/HttpServerResponse/)
      }))
  })
})

describe("analytics API over another Usage", () => {
  // `serveWith`'s third argument replaces the application's fan-out (the load benchmark serves an `Effect.all` one):
  // the handlers call it, and the feature clients are never asked.
  const asked: Array<string> = []
  const usage = Layer.succeed(
    Usage,
    Usage.of({
      forCustomer: (customerId, request) =>
        Effect.sync(() => {
          asked.push(`${customerId} ${request.mode} ${Duration.toMillis(request.deadline)}`)
          return new UsageResponse({ customerId, mode: request.mode, complete: true, durationMs: 1, panels: [] })
        })
    })
  )
  const App = Server.serveWith(
    { port: 0, host: "127.0.0.1" },
    doubles({ listings: () => Effect.die("the feature clients must not be called") }),
    usage
  )

  layer(App, { excludeTestServices: true })((it) => {
    it.effect("answers with what that Usage returns", () =>
      Effect.gen(function*() {
        const response = yield* get(`${yield* Embedded.apiUrl}/customers/c-7/usage?mode=strict&deadlineMs=250`)
        expect(response.status).toBe(200)
        expect(response.json).toEqual({ customerId: "c-7", mode: "strict", complete: true, durationMs: 1, panels: [] })
        expect(asked).toEqual(["c-7 strict 250"])
      }))
  })
})
