/**
 * The feature clients' Layers against a test `HttpClient`: what they request, how they decode, how each way of
 * failing becomes a typed error, and that interrupting a call aborts its request.
 */
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Deferred, Effect, Fiber, Layer, Result } from "effect"
import { HttpClient, HttpClientError, HttpClientRequest, HttpClientResponse } from "effect/http"
import { TestClock } from "effect/testing"
import * as Http from "node:http"
import type * as Net from "node:net"
import type { CustomerId } from "../../examples/analytics/Domain.js"
import * as FeatureClient from "../../examples/analytics/FeatureClient.js"
import { configPrefix, features } from "../../examples/analytics/Features.js"
import { FanOut } from "../../src/index.js"
import { makeCaptureLogger } from "./support.js"

type Handler = (
  url: URL,
  signal: AbortSignal,
  request: HttpClientRequest.HttpClientRequest
) => Effect.Effect<Response, HttpClientError.HttpClientError>

const testClient = (handler: Handler) =>
  HttpClient.make((request, url, signal) =>
    Effect.map(handler(url, signal, request), (response) => HttpClientResponse.fromWeb(request, response))
  )

const config = (entries: Record<string, string>) => ConfigProvider.layer(ConfigProvider.fromEnv({ env: entries }))

const listingsWith = (handler: Handler) =>
  FeatureClient.layer("listings").pipe(
    Layer.provide(Layer.succeed(HttpClient.HttpClient, testClient(handler))),
    Layer.provide(config({ LISTINGS_URL: "http://listings.internal:8080", FEATURE_TIMEOUT: "2 seconds" }))
  )

const json = (body: unknown, status = 200) =>
  Effect.succeed(new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } }))

const customer = "c-9" as CustomerId
const callListings = Effect.gen(function*() {
  const listings = yield* FeatureClient.services.listings
  return yield* listings.usage(customer)
})

const transportError = (request: HttpClientRequest.HttpClientRequest, message: string) =>
  new HttpClientError.HttpClientError({
    reason: new HttpClientError.TransportError({ request, cause: new Error(message) })
  })

describe("feature clients", () => {
  it.effect("call <FEATURE>_URL/customers/:id/usage and decode the body", () => {
    const seen: Array<string> = []
    return Effect.gen(function*() {
      const usage = yield* callListings
      expect(usage).toMatchObject({ customerId: "c-9", feature: "listings", count: 3, lastUsedAt: null })
      expect(seen).toEqual(["http://listings.internal:8080/customers/c-9/usage"])
    }).pipe(Effect.provide(listingsWith((url) => {
      seen.push(url.href)
      return json({ customerId: "c-9", feature: "listings", count: 3, lastUsedAt: null })
    })))
  })

  it.effect("fail with reason Unavailable on a 5xx, logging the body instead of keeping it", () => {
    const logs = makeCaptureLogger()
    return Effect.gen(function*() {
      const error = yield* Effect.flip(callListings)
      expect(error).toMatchObject({ _tag: "ListingsError", feature: "listings", reason: "Unavailable" })
      expect(error.message).not.toMatch(/secret stack/)
      expect(logs.entries.map((entry) => entry.annotations.body)).toContain("Error: secret stack\n    at handler")
    }).pipe(
      Effect.provide(
        listingsWith(() => Effect.succeed(new Response("Error: secret stack\n    at handler", { status: 500 })))
      ),
      Effect.provide(logs.layer)
    )
  })

  it.effect("fail with reason Unavailable when the service cannot be reached", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(callListings)
      expect(error).toMatchObject({ _tag: "ListingsError", reason: "Unavailable" })
    }).pipe(Effect.provide(listingsWith((url, _, request) =>
      Effect.fail(transportError(request, `connect ECONNREFUSED ${url.host}`))
    ))))

  it.effect("send a request once more, at once, when it failed before any answer (a closed kept-alive connection)", () => {
    let sent = 0
    return Effect.gen(function*() {
      const usage = yield* callListings
      expect(usage).toMatchObject({ customerId: "c-9", count: 3 })
      expect(sent).toBe(2)
    }).pipe(Effect.provide(listingsWith((_url, _signal, request) =>
      ++sent === 1 ?
        Effect.fail(transportError(request, "socket hang up")) :
        json({ customerId: "c-9", feature: "listings", count: 3, lastUsedAt: null })
    )))
  })

  it.effect("send it at most twice, and say why the transport failed", () => {
    let sent = 0
    return Effect.gen(function*() {
      const error = yield* Effect.flip(callListings)
      expect(error).toMatchObject({ _tag: "ListingsError", reason: "Unavailable" })
      expect(error.message).toMatch(/^listings: Transport error \(GET .*\): read ECONNRESET$/)
      expect(sent).toBe(2)
    }).pipe(Effect.provide(listingsWith((_url, _signal, request) => {
      sent++
      return Effect.fail(transportError(request, "read ECONNRESET"))
    })))
  })

  it.effect("never send a request again once an answer came, even a 5xx", () => {
    let sent = 0
    return Effect.gen(function*() {
      const error = yield* Effect.flip(callListings)
      expect(error).toMatchObject({ _tag: "ListingsError", reason: "Unavailable" })
      expect(sent).toBe(1)
    }).pipe(Effect.provide(listingsWith(() => {
      sent++
      return Effect.succeed(new Response("unavailable", { status: 503 }))
    })))
  })

  it.effect("fail with reason BadResponse on malformed JSON or a body of the wrong shape", () =>
    Effect.gen(function*() {
      const malformed = yield* Effect.flip(
        callListings.pipe(
          Effect.provide(
            listingsWith(() => Effect.succeed(new Response("{\"customerId\": \"c-9\", \"cou", { status: 200 })))
          )
        )
      )
      expect(malformed).toMatchObject({ _tag: "ListingsError", reason: "BadResponse" })
      const wrongShape = yield* Effect.flip(callListings.pipe(Effect.provide(listingsWith(() => json({ count: -1 })))))
      expect(wrongShape).toMatchObject({ _tag: "ListingsError", reason: "BadResponse" })
    }))

  it.effect("fail with reason BadResponse when the answer is for another customer", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(callListings)
      expect(error).toMatchObject({
        _tag: "ListingsError",
        feature: "listings",
        reason: "BadResponse",
        message: `listings: answer for customerId "c-8", expected customerId "c-9"`
      })
    }).pipe(
      Effect.provide(listingsWith(() => json({ customerId: "c-8", feature: "listings", count: 3, lastUsedAt: null })))
    ))

  it.effect("fail with reason BadResponse when the answer is for another feature", () =>
    Effect.gen(function*() {
      const answering = (customerId: string, feature: string) =>
        Effect.flip(
          callListings.pipe(
            Effect.provide(listingsWith(() => json({ customerId, feature, count: 3, lastUsedAt: null })))
          )
        )
      expect(yield* answering("c-9", "payments")).toMatchObject({
        _tag: "ListingsError",
        feature: "listings",
        reason: "BadResponse",
        message: `listings: answer for feature "payments", expected feature "listings"`
      })
      expect(yield* answering("c-8", "payments")).toMatchObject({
        _tag: "ListingsError",
        reason: "BadResponse",
        message:
          `listings: answer for customerId "c-8" and feature "payments", expected customerId "c-9" and feature "listings"`
      })
    }))

  it.effect("fail with reason Timeout when no answer comes within FEATURE_TIMEOUT", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(Effect.flip(callListings))
      yield* TestClock.adjust("2 seconds")
      const error = yield* Fiber.join(fiber)
      expect(error).toMatchObject({ _tag: "ListingsError", reason: "Timeout" })
    }).pipe(Effect.provide(listingsWith(() => Effect.never))))

  it.effect("under a fan-out deadline, the nearer of it and FEATURE_TIMEOUT (2 s) ends a call that gets no answer", () =>
    Effect.gen(function*() {
      // The deadline nearer: the call is the deadline's (no timer of the client's own races it).
      const cut = yield* Effect.forkChild(FanOut.settle([callListings], { deadline: "2 seconds" }))
      // FEATURE_TIMEOUT nearer: the client's own timer fails the call with reason Timeout.
      const timed = yield* Effect.forkChild(FanOut.settle([callListings], { deadline: "3 seconds" }))
      yield* TestClock.adjust("2 seconds")
      const [byDeadline] = yield* Fiber.join(cut)
      expect(byDeadline).toMatchObject({ _tag: "TimedOut", reason: "Deadline" })
      const [byTimeout] = yield* Fiber.join(timed)
      expect(byTimeout).toMatchObject({ _tag: "Failure", error: { _tag: "ListingsError", reason: "Timeout" } })
    }).pipe(Effect.provide(listingsWith(() => Effect.never))))

  it.effect("abort the HTTP request when the call is interrupted", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<AbortSignal>()
      const fiber = yield* Effect.forkChild(callListings.pipe(Effect.provide(listingsWith((_, signal) =>
        Effect.andThen(Deferred.succeed(started, signal), Effect.never)
      ))))
      const signal = yield* Deferred.await(started)
      expect(signal.aborted).toBe(false)
      yield* Fiber.interrupt(fiber)
      expect(signal.aborted).toBe(true)
    }))

  it.effect("fail to build without their base URL", () =>
    Effect.gen(function*() {
      const result = yield* Effect.result(Layer.build(
        FeatureClient.layer("listings").pipe(
          Layer.provide(Layer.succeed(HttpClient.HttpClient, testClient(() => Effect.never))),
          Layer.provide(config({}))
        )
      ))
      expect(Result.isFailure(result)).toBe(true)
      expect(Result.isFailure(result) && result.failure.message).toMatch(/LISTINGS_URL/)
    }).pipe(Effect.scoped))

  it.effect("each of the twelve has its own tag, base URL and tagged error", () => {
    const urls = Object.fromEntries(
      features.map((feature) => [`${configPrefix(feature)}_URL`, `http://${feature.toLowerCase()}.internal`])
    )
    const seen: Array<string> = []
    return Effect.gen(function*() {
      for (const feature of features) {
        const client: FeatureClient.FeatureClient = yield* FeatureClient.services[feature]
        expect(client.feature).toBe(feature)
        const error = yield* Effect.flip(client.usage(customer))
        expect(error._tag).toBe(`${feature[0]!.toUpperCase()}${feature.slice(1)}Error`)
        expect(error.feature).toBe(feature)
      }
      expect(seen).toEqual(features.map((feature) => `http://${feature.toLowerCase()}.internal/customers/c-9/usage`))
    }).pipe(
      Effect.provide(FeatureClient.layerAll.pipe(
        Layer.provide(Layer.succeed(
          HttpClient.HttpClient,
          testClient((url) => {
            seen.push(url.href)
            return json({ error: "down" }, 503)
          })
        )),
        Layer.provide(config(urls))
      )),
      Effect.provide(makeCaptureLogger().layer)
    )
  })

  it.effect("under a fan-out deadline, send the budget left as x-fanout-timeout; none outside one", () => {
    const budgets: Array<string | undefined> = []
    return Effect.gen(function*() {
      // A call made 100 ms into a 300 ms deadline has 200 ms left.
      const later = Effect.andThen(Effect.sleep("100 millis"), callListings)
      const fiber = yield* Effect.forkChild(FanOut.settle([callListings, later], { deadline: "300 millis" }))
      yield* Effect.yieldNow
      yield* TestClock.adjust("100 millis")
      expect(budgets).toEqual(["300m", "200m"])
      yield* Fiber.join(fiber)
      yield* callListings
      expect(budgets).toEqual(["300m", "200m", undefined])
    }).pipe(Effect.provide(listingsWith((_url, _signal, request) => {
      budgets.push(request.headers["x-fanout-timeout"])
      return json({ customerId: "c-9", feature: "listings", count: 3, lastUsedAt: null })
    })))
  })

  it.effect("a 504 from the service (its budget could not be met) is a Timeout", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(callListings)
      expect(error).toMatchObject({ reason: "Timeout", message: expect.stringContaining("answered 504") })
    }).pipe(
      Effect.provide(listingsWith(() => json({ error: "listings cannot answer within the 5 ms budget" }, 504))),
      Effect.provide(makeCaptureLogger().layer)
    ))

  it.effect("a cancelled call logs why it was cancelled", () => {
    const logs = makeCaptureLogger()
    return Effect.gen(function*() {
      const failing = Effect.andThen(Effect.sleep("10 millis"), Effect.fail("down"))
      const fiber = yield* Effect.forkChild(FanOut.all({ listings: callListings, other: failing }))
      yield* Effect.yieldNow
      yield* TestClock.adjust("10 millis")
      yield* Fiber.await(fiber)
      const cancelled = logs.entries.filter((entry) => entry.message.startsWith("feature call cancelled"))
      expect(cancelled.map((entry) => entry.message)).toEqual(["feature call cancelled: SiblingFailed by other"])
      expect(cancelled.map((entry) => entry.annotations)).toEqual([
        { feature: "listings", cancelReason: "SiblingFailed", cancelledBy: "other" }
      ])
    }).pipe(
      Effect.provide(logs.layer),
      Effect.provide(listingsWith(() => Effect.never))
    )
  })
})

describe("feature clients' body cap (FEATURE_MAX_BODY_BYTES)", () => {
  const capped = (handler: Handler) =>
    FeatureClient.layer("listings").pipe(
      Layer.provide(Layer.succeed(HttpClient.HttpClient, testClient(handler))),
      Layer.provide(config({ LISTINGS_URL: "http://listings.internal:8080", FEATURE_MAX_BODY_BYTES: "1000" }))
    )

  /** A body of `chunks` chunks of 256 bytes, counting how many were pulled. */
  const endless = (chunks: number, pulled: { count: number }, status = 200) =>
    Effect.succeed(
      new Response(
        new ReadableStream<Uint8Array>({
          pull: (controller) => {
            pulled.count++
            if (pulled.count > chunks) controller.close()
            else controller.enqueue(new Uint8Array(256).fill(32))
          }
        }, { highWaterMark: 0 }),
        { status, headers: { "content-type": "application/json" } }
      )
    )

  it.effect("is a TooLarge saying the body is over the cap, reading no more of it than the cap", () => {
    const pulled = { count: 0 }
    return Effect.gen(function*() {
      const error = yield* Effect.flip(callListings)
      expect(error).toMatchObject({ reason: "TooLarge", message: "listings: body over 1000 bytes" })
      // 4 chunks of 256 bytes pass the cap; at most one more was asked for, not the 100,000 the service would send.
      expect(pulled.count).toBeLessThanOrEqual(5)
    }).pipe(Effect.provide(capped(() => endless(100_000, pulled))))
  })

  it.effect("refuses a content-length over the cap before reading", () => {
    const pulled = { count: 0 }
    return Effect.gen(function*() {
      const error = yield* Effect.flip(callListings)
      expect(error).toMatchObject({ reason: "TooLarge", message: "listings: body over 1000 bytes" })
      expect(pulled.count).toBe(0)
    }).pipe(Effect.provide(capped(() =>
      Effect.succeed(
        new Response(
          new ReadableStream<Uint8Array>({ pull: () => void pulled.count++ }, { highWaterMark: 0 }),
          { status: 200, headers: { "content-type": "application/json", "content-length": "400000000" } }
        )
      )
    )))
  })

  describe("readAtMost", () => {
    const response = (body: string | ReadableStream<Uint8Array>, headers: Record<string, string>) =>
      HttpClientResponse.fromWeb(
        HttpClientRequest.get("http://listings.internal:8080/x"),
        new Response(body, { status: 200, headers })
      )

    it.effect("reads a body whose content-length is within the limit whole, up to the limit exactly", () =>
      Effect.gen(function*() {
        const read = yield* FeatureClient.readAtMost(response("x".repeat(1000), { "content-length": "1000" }), 1000)
        expect(read).toEqual({ text: "x".repeat(1000), more: false })
      }))

    it.effect("reads a body without a content-length, or with one that is not a number, as a stream, to the limit", () =>
      Effect.gen(function*() {
        const pulled = { count: 0 }
        const stream = new ReadableStream<Uint8Array>({
          pull: (controller) => {
            pulled.count++
            controller.enqueue(new Uint8Array(256).fill(120))
          }
        }, { highWaterMark: 0 })
        const read = yield* FeatureClient.readAtMost(response(stream, { "content-length": "1e3" }), 1000)
        expect(read.more).toBe(true)
        expect(read.text).toBe("x".repeat(1000))
        expect(pulled.count).toBe(4)
        const short = yield* FeatureClient.readAtMost(response("xyz", {}), 1000)
        expect(short).toEqual({ text: "xyz", more: false })
      }))
  })

  it.effect("reads an error answer's body no further than its log excerpt", () => {
    const pulled = { count: 0 }
    return Effect.gen(function*() {
      const error = yield* Effect.flip(callListings)
      expect(error).toMatchObject({ reason: "Unavailable", message: "listings answered 503" })
      expect(pulled.count).toBeLessThanOrEqual(3)
    }).pipe(Effect.provide(capped(() => endless(100_000, pulled, 503))))
  })
})

describe("the HTTP client of the feature calls (FEATURE_HTTP_CLIENT)", () => {
  /** A real feature service on an ephemeral loopback port that records the connection of each request. */
  const service = Effect.acquireRelease(
    Effect.callback<{ readonly url: string; readonly server: Http.Server; readonly sockets: Set<unknown> }>(
      (resume) => {
        const sockets = new Set<unknown>()
        const server = Http.createServer((request, response) => {
          sockets.add(request.socket)
          response.writeHead(200, { "content-type": "application/json" })
          response.end(JSON.stringify({ customerId: "c-9", feature: "listings", count: 3, lastUsedAt: null }))
        })
        server.listen(0, "127.0.0.1", () => {
          const { port } = server.address() as Net.AddressInfo
          resume(Effect.succeed({ url: `http://127.0.0.1:${port}`, server, sockets }))
        })
      }
    ),
    ({ server }) =>
      Effect.callback<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )

  for (const kind of ["undici", "node", undefined] as const) {
    it.effect(`${kind ?? "unset (undici)"}: calls a real service and keeps its connection alive between calls`, () =>
      Effect.gen(function*() {
        const { sockets, url } = yield* service
        const env: Record<string, string> = {
          LISTINGS_URL: url,
          ...(kind === undefined ? {} : { FEATURE_HTTP_CLIENT: kind })
        }
        const listings = FeatureClient.layer("listings").pipe(
          Layer.provide(FeatureClient.layerHttpClient),
          Layer.provide(config(env))
        )
        const answers = yield* Effect.all(Array.from({ length: 6 }, () => callListings)).pipe(Effect.provide(listings))
        expect(answers[0]).toMatchObject({ customerId: "c-9", feature: "listings", count: 3 })
        for (const answer of answers) expect(answer).toStrictEqual(answers[0])
        // Six calls one after the other over kept-alive connections: at most two (undici hands a connection back to
        // its pool a moment after the answer, so the next call may open a second one), never one per call.
        expect(sockets.size).toBeGreaterThanOrEqual(1)
        expect(sockets.size).toBeLessThanOrEqual(2)
      }).pipe(Effect.scoped))
  }

  it.effect("any other value is refused when the client is built, naming the variable", () =>
    Effect.gen(function*() {
      const result = yield* Effect.result(Layer.build(FeatureClient.layerHttpClient.pipe(
        Layer.provide(config({ FEATURE_HTTP_CLIENT: "curl" }))
      )))
      expect(Result.isFailure(result)).toBe(true)
      expect(Result.isFailure(result) && result.failure.message).toMatch(/FEATURE_HTTP_CLIENT/)
    }).pipe(Effect.scoped))
})
