/**
 * The edge of the API, served on port 0 over doubled feature clients that count their calls: what is answered
 * without a fan-out (`HEAD`, `__proto__`, unknown parameters, unknown paths), how big those answers are, how 4xx are
 * logged, and that `/health` answers while one client holds more sockets than `MAX_CONNECTIONS`.
 */
import { describe, expect, layer } from "@effect/vitest"
import { ConfigProvider, Effect, Layer } from "effect"
import * as Net from "node:net"
import { features } from "../../examples/analytics/Features.js"
import * as Embedded from "../../examples/analytics/harness/Embedded.js"
import * as Server from "../../examples/analytics/Server.js"
import { doubles, usageOf } from "./doubles.js"
import { get, makeCaptureLogger } from "./support.js"

const logs = makeCaptureLogger()
let calls = 0
const maxConnections = 4

const App = Server.serveWith(
  { port: 0, host: "127.0.0.1" },
  doubles(Object.fromEntries(features.map((feature) => [
    feature,
    (customerId: string) =>
      Effect.sync(() => {
        calls++
        return usageOf(feature, customerId)
      })
  ])))
).pipe(
  Layer.provide(logs.layer),
  Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env: { MAX_CONNECTIONS: String(maxConnections) } })))
)

/** The calls the doubles saw during `effect`. */
const callsDuring = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const before = calls
    const result = yield* effect
    return { result, calls: calls - before }
  })

const schemaInternals = /Encoded side|└─|Expected|Schema/

describe("the API's edge", () => {
  layer(App, { excludeTestServices: true })((it) => {
    it.effect("answers HEAD without a fan-out: 200 for /health, 405 with Allow: GET for the usage, no body", () =>
      Effect.gen(function*() {
        const base = yield* Embedded.apiUrl
        const { calls: made, result } = yield* callsDuring(Effect.promise(async () => {
          const usage = await fetch(`${base}/customers/c-1/usage`, { method: "HEAD" })
          const health = await fetch(`${base}/health`, { method: "HEAD" })
          return {
            usage: { status: usage.status, allow: usage.headers.get("allow"), body: await usage.text() },
            health: { status: health.status, body: await health.text() }
          }
        }))
        expect(result).toEqual({ usage: { status: 405, allow: "GET", body: "" }, health: { status: 200, body: "" } })
        expect(made).toBe(0)
        // The same GET does fan out, to all twelve.
        const { calls: byGet } = yield* callsDuring(get(`${base}/customers/c-1/usage`))
        expect(byGet).toBe(12)
      }))

    it.effect("refuses __proto__ and constructor as parameters, naming them, without a fan-out", () =>
      Effect.gen(function*() {
        const base = yield* Embedded.apiUrl
        for (const name of ["__proto__", "constructor"]) {
          const { calls: made, result } = yield* callsDuring(get(`${base}/customers/c-1/usage?${name}=1`))
          expect(result.status, name).toBe(400)
          expect(result.json.issues, name).toMatchObject([{ _tag: "Unexpected", path: [name] }])
          expect(made, name).toBe(0)
        }
      }))

    it.effect("answers 3,000 unknown parameters with a 400 listing 10 and counting the rest, in under 4 KB", () =>
      Effect.gen(function*() {
        const base = yield* Embedded.apiUrl
        // 3-character names: 12 KB of query, under the 16 KB head limit (a longer one is a 431).
        const names = Array.from({ length: 3_000 }, (_, n) => n.toString(36).padStart(3, "0"))
        const { calls: made, result } = yield* callsDuring(get(`${base}/customers/c-1/usage?${names.join("&")}`))
        expect(result.status).toBe(400)
        expect(result.text.length).toBeLessThan(4_096)
        expect(result.json.issues).toHaveLength(10)
        expect(result.json.message).toMatch(/; and 2990 more$/)
        expect(result.text).not.toMatch(schemaInternals)
        expect(made).toBe(0)
      }))

    it.effect("cuts long values and paths in 400 and 404 bodies to 64 characters", () =>
      Effect.gen(function*() {
        const base = yield* Embedded.apiUrl
        const bad = yield* get(`${base}/customers/c-1/usage?mode=${"x".repeat(5_000)}`)
        expect(bad.status).toBe(400)
        expect(bad.text.length).toBeLessThan(512)
        expect(bad.json.issues[0].message).toMatch(/^mode must be "partial" or "strict", got "x{63}…$/)
        expect(bad.text).not.toMatch(schemaInternals)
        const missing = yield* get(`${base}/${"a".repeat(10_000)}`)
        expect(missing.status).toBe(404)
        expect(missing.text.length).toBeLessThan(512)
        expect(missing.json.message).toBe(`GET /${"a".repeat(63)}… is not an endpoint of this API`)
      }))

    it.effect("answers /health while one client holds many more idle sockets than MAX_CONNECTIONS", () =>
      Effect.gen(function*() {
        const base = yield* Embedded.apiUrl
        const port = Number(new URL(base).port)
        const hoarded = 5 * maxConnections
        const sockets: Array<Net.Socket> = []
        const closedByServer = yield* Effect.promise(() =>
          new Promise<number>((resolve) => {
            let closed = 0
            for (let n = 0; n < hoarded; n++) {
              const socket = Net.connect(port, "127.0.0.1")
              socket.on("error", () => undefined)
              // The server closes the oldest idle one for each connection past the limit.
              socket.on("close", () => {
                closed++
                if (closed === hoarded - maxConnections) resolve(closed)
              })
              sockets.push(socket)
            }
          })
        )
        expect(closedByServer).toBe(hoarded - maxConnections)
        const health = yield* get(`${base}/health`)
        expect(health.status).toBe(200)
        expect(health.json).toEqual({ status: "ok" })
        for (const socket of sockets) socket.destroy()
      }))
  })
})

const quietLogs = makeCaptureLogger()

/** The same API with a window of an hour (no window ends during the test), listings answering too large a body. */
const QuietApp = Server.serveWith(
  { port: 0, host: "127.0.0.1" },
  doubles({ listings: (_, fail) => fail("TooLarge") })
).pipe(
  Layer.provide(quietLogs.layer),
  Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env: { LOG_WINDOW: "1 hour" } })))
)

describe("the API's 4xx log, and a body over the cap", () => {
  layer(QuietApp, { excludeTestServices: true })((it) => {
    it.effect("shows a body over FEATURE_MAX_BODY_BYTES as the panel's reason too_large", () =>
      Effect.gen(function*() {
        const response = yield* get(`${yield* Embedded.apiUrl}/customers/c-1/usage`)
        expect(response.status).toBe(200)
        expect(response.json.panels[0]).toMatchObject({ status: "failed", feature: "listings", reason: "too_large" })
        const strict = yield* get(`${yield* Embedded.apiUrl}/customers/c-1/usage?mode=strict`)
        expect(strict.status).toBe(502)
        expect(strict.json).toMatchObject({ feature: "listings", reason: "too_large" })
      }))

    it.effect("logs the first 4xx of each status in LOG_WINDOW and only counts the others", () =>
      Effect.gen(function*() {
        const base = yield* Embedded.apiUrl
        for (let n = 0; n < 20; n++) {
          expect((yield* get(`${base}/customers/c-1/usage?deadlineMs=x${n}`)).status).toBe(400)
        }
        for (let n = 0; n < 20; n++) expect((yield* get(`${base}/nowhere-${n}`)).status).toBe(404)
        const logged = quietLogs.entries.filter((entry) => entry.message === "client error")
        expect(logged.map((entry) => entry.annotations)).toMatchObject([
          { status: 400, method: "GET", path: "/customers/c-1/usage", suppressed: 0 },
          { status: 404, method: "GET", path: "/nowhere-0", suppressed: 0 }
        ])
      }))
  })
})
