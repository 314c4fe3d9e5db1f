/**
 * The feature-service clients, all twelve derived from the table in `Features.ts`. Each feature's client is an
 * Effect service of its own (`services.listings`, ...) with its own Layer and its own tagged error (`ListingsError`,
 * ...), so that code can provide, replace or catch one feature at a time; this module is the one place that knows
 * how to call a feature service over HTTP.
 */
import { NodeHttpClient } from "@effect/platform-node"
import type { Cause } from "effect"
import { Config, Context, Data, Duration, Effect, Layer, Option, Result, Schema, Stream } from "effect"
import type { HttpClientError, HttpClientResponse } from "effect/http"
import { HttpClient, HttpClientRequest } from "effect/http"
import { Budget, Cancellation, Deadline } from "../../src/index.js"
import type { CustomerId } from "./Domain.js"
import { duration, httpUrl, integer, variable } from "./Environment.js"
import type { Feature, FeatureUsage } from "./Features.js"
import { byFeature, configPrefix, features, pathOf, table } from "./Features.js"
import * as LogLimit from "./LogLimit.js"

/**
 * Why a call failed; callers decide on it, `message` is for logs.
 * - `Unavailable`: the service could not be reached or answered with a non-2xx status.
 * - `BadResponse`: the service answered 2xx with a body that is not the expected JSON, or with usage of another customer
 *   or another feature than the one asked about.
 * - `Timeout`: the client's own request timeout passed (`FEATURE_TIMEOUT`).
 * - `TooLarge`: the service answered 2xx with a body over `FEATURE_MAX_BODY_BYTES`, of which the rest was not read.
 */
export type Reason = "Unavailable" | "BadResponse" | "Timeout" | "TooLarge"

/** The fields of every feature client's typed error. */
export interface ErrorFields<F extends Feature = Feature> {
  readonly feature: F
  readonly reason: Reason
  readonly message: string
}

/** `listings` → `"ListingsError"`: the tag of that feature's error. */
export type ErrorTag<F extends Feature> = `${Capitalize<F>}Error`

/** A feature's typed error: `ListingsError`, `SavedSearchesError`, ... */
export type FeatureError<F extends Feature = Feature> = { readonly [K in F]: ErrorOf<K> }[F]

type ErrorOf<F extends Feature> = Cause.YieldableError & ErrorFields<F> & { readonly _tag: ErrorTag<F> }

/** The class of a feature's typed error. */
export type ErrorClass<F extends Feature> = new(fields: ErrorFields<F>) => FeatureError<F>

const errorTag = <F extends Feature>(feature: F): ErrorTag<F> =>
  `${feature[0]!.toUpperCase()}${feature.slice(1)}Error` as ErrorTag<F>

// `byFeature` cannot say that each entry's type follows its key (`errors.listings` makes `ListingsError`s): the casts
// below say it, once for each record.

/** Each feature's error class, by feature: `new errors.listings({ feature: "listings", reason, message })`. */
export const errors: { readonly [F in Feature]: ErrorClass<F> } = byFeature((feature) =>
  class extends Data.TaggedError(errorTag(feature))<ErrorFields> {}
) as any

/** A feature service's client: one call, with the feature's own typed error. */
export interface FeatureClient<F extends Feature = Feature> {
  readonly feature: F
  readonly usage: (customerId: CustomerId) => Effect.Effect<FeatureUsage, FeatureError<F>>
  /**
   * The service's retry budget, made with the client and so shared by every request that calls it: the fan-outs'
   * retries of this service draw from it (`RETRY_BUDGET`). Absent: no budget.
   */
  readonly budget?: Budget.Budget | undefined
}

/** Each feature's client as a service of its own, keyed `analytics/features/<feature>`. */
export const services: { readonly [F in Feature]: Context.Service<FeatureClient<F>, FeatureClient<F>> } = byFeature(
  (feature) => Context.Service<FeatureClient>(`analytics/features/${feature}`)
) as any

/** Any one of the twelve client services: what needs them all requires this union. */
export type Clients = { readonly [F in Feature]: FeatureClient<F> }[Feature]

/** The twelve clients from the context, by feature. */
export const all: Effect.Effect<{ readonly [F in Feature]: FeatureClient<F> }, never, Clients> = Effect.map(
  Effect.context<Clients>(),
  (context) => byFeature((feature) => Context.get(context, services[feature] as Context.Key<Clients, Clients>)) as any
)

/** The base URL of a feature service: `<FEATURE>_URL`, for example `SAVED_SEARCHES_URL=http://10.0.0.7:8080`. */
export const baseUrl = (feature: Feature): Config.Config<string> => httpUrl(`${configPrefix(feature)}_URL`)

/**
 * The client-side timeout of one call, shared by all features: `FEATURE_TIMEOUT`, a duration greater than zero such as
 * `2 seconds`; default 5 seconds. `0 seconds` and `-1 seconds` would be a timeout every call hits at once: both are
 * errors here.
 */
export const requestTimeout: Config.Config<Duration.Duration> = duration(
  "FEATURE_TIMEOUT",
  Duration.isPositive,
  `the timeout must be a duration greater than zero, such as "2 seconds" or "500 millis"`
).pipe(Config.withDefault(Duration.seconds(5)))

/**
 * The most a client reads of one answer's body: `FEATURE_MAX_BODY_BYTES`, 1 to 16777216, default 65536 (an answer
 * is about 100 bytes). A longer body is a `TooLarge` ("body over N bytes", the panel's reason `too_large`): reading stops there and the
 * connection is closed, the rest is never read, so a service that answers with hundreds of megabytes costs the API
 * this much memory per call, not the body's size.
 */
export const maxBodyBytes: Config.Config<number> = integer("FEATURE_MAX_BODY_BYTES", 1, 16_777_216).pipe(
  Config.withDefault(65_536)
)

/**
 * The connections the client keeps to each feature service at most: `FEATURE_CONNECTIONS`, 1 to 1024, default 32.
 * A call beyond them waits for a connection of the pool (within its deadline) instead of opening another: however
 * many requests come in, each service sees at most this many connections from one API process.
 */
export const connectionsPerService: Config.Config<number> = integer("FEATURE_CONNECTIONS", 1, 1024).pipe(
  Config.withDefault(32)
)

/** The most of an error answer's body that is read, to be logged. */
const excerptBytes = 500

/**
 * The body's first `limit` bytes as text, and whether it had more: reading stops once past `limit` (which aborts the
 * request and closes its connection), so what is read is at most `limit` bytes and one chunk. A body whose
 * `content-length` is within `limit` is read whole in one step (the HTTP client ends the body at its
 * `content-length`, so no more is read); one without, or over it, chunk by chunk as a stream — which costs a call
 * ~85 µs more CPU, about half again a minimal call's (docs/BENCHMARKS.md, "What each feature call costs").
 */
export const readAtMost = (
  response: HttpClientResponse.HttpClientResponse,
  limit: number
): Effect.Effect<{ readonly text: string; readonly more: boolean }, HttpClientError.HttpClientError> =>
  Effect.suspend(() => {
    const length = response.headers["content-length"]
    if (length !== undefined && /^\d+$/.test(length) && Number(length) <= limit) {
      return Effect.map(response.text, (text) => ({ text, more: false }))
    }
    const chunks: Array<Uint8Array> = []
    let size = 0
    return Stream.runForEachWhile(response.stream, (chunk) =>
      Effect.sync(() => {
        size += chunk.length
        chunks.push(chunk)
        return size <= limit
      })).pipe(
        Effect.map(() => ({ text: Buffer.concat(chunks).subarray(0, limit).toString("utf8"), more: size > limit }))
      )
  })

/** The first `excerptBytes` of an error answer's body, for the log. */
const bodyExcerpt = (response: HttpClientResponse.HttpClientResponse) =>
  readAtMost(response, excerptBytes).pipe(
    Effect.map(({ more, text }) => more ? `${text}…` : text),
    Effect.orElseSucceed(() => "<unreadable body>")
  )

/**
 * The header that sends a call's remaining budget to the feature service, in the style of gRPC's `grpc-timeout`:
 * whole milliseconds followed by `m`, such as `x-fanout-timeout: 250m`. The service gives up (504) on work it cannot
 * finish within it.
 */
export const budgetHeader = "x-fanout-timeout"

/** `250` → `"250m"`: the header's value for a budget in milliseconds (rounded down: never more than is left). */
export const budgetValue = (millis: number): string => `${Math.max(0, Math.floor(millis))}m`

/**
 * The retry budget of each feature service: `RETRY_BUDGET`, `<maxTokens>:<tokenRatio>` (gRPC's retry throttling, see
 * `Budget` in the library) or `off`; default `10:0.1`, gRPC's example: a service failing every call gets its retries
 * while more than 5 tokens are left, so 3 of them after its first failures, and one call per request from then on,
 * until a tenth of its successes have earned them back.
 */
export const retryBudget: Config.Config<Budget.Settings | undefined> = variable("RETRY_BUDGET", (raw) => {
  if (raw === "off") return Result.succeed(undefined)
  const match = /^(\d+(?:\.\d+)?):(\d+(?:\.\d+)?)$/.exec(raw)
  const settings = match === null ? undefined : { maxTokens: Number(match[1]), tokenRatio: Number(match[2]) }
  if (settings === undefined) return Result.fail(`"off", or <maxTokens>:<tokenRatio> such as "10:0.1"`)
  try {
    Budget.makeUnsafe(settings)
    return Result.succeed(settings)
  } catch (error) {
    return Result.fail(error instanceof Error ? error.message : String(error))
  }
}).pipe(Config.withDefault({ maxTokens: 10, tokenRatio: 0.1 }))

/**
 * How an answer differs from what was asked (its customer, its feature), or `undefined` when it does not. A service
 * behind the wrong URL, or a cache or proxy that mixes up requests, answers 2xx with a well-formed body: decoding
 * alone would show another customer's (or another feature's) usage in this customer's panel.
 */
const mismatch = (
  asked: { readonly customerId: CustomerId; readonly feature: Feature },
  answer: FeatureUsage
): string | undefined => {
  const wrong = (["customerId", "feature"] as const).filter((key) => answer[key] !== asked[key])
  if (wrong.length === 0) return undefined
  const show = (values: Record<(typeof wrong)[number], string>) =>
    wrong.map((key) => `${key} ${JSON.stringify(values[key])}`).join(" and ")
  return `answer for ${show(answer)}, expected ${show(asked)}`
}

/** What the client's message leaves out of a transport error: the socket's own error, such as `read ECONNRESET`. */
const causeOf = (error: HttpClientError.HttpClientError): string => {
  const cause: unknown = "cause" in error.reason ? error.reason.cause : undefined
  return cause instanceof Error && cause.message !== "" ? `: ${cause.message}` : ""
}

/** What is wrong with an answer's body: its reason and what to log. */
type Wrong = readonly [Reason, string]

const isRequestError = (error: HttpClientError.HttpClientError): boolean =>
  error.reason._tag === "TransportError" || error.reason._tag === "EncodeError" ||
  error.reason._tag === "InvalidUrlError"

/**
 * Builds `feature`'s client from the `HttpClient` in context, its row of the table and its configuration.
 * Interrupting `usage` aborts its HTTP request, so a cancelled sibling in a fan-out closes its connection instead of
 * waiting for an answer nobody will read.
 *
 * A request that fails before any answer comes (a transport error) is sent once more at once, on a new connection.
 * The case it is for: a kept-alive connection that the service closes just as the client reuses it ("socket hang
 * up", `ECONNRESET`), a race of the two sides' idle timers that no setting removes. A GET is safe to send again, the
 * service never saw it, and this is the transport's job, as in Go's `net/http`: it is not a retry of the call
 * (`attempts` and `FEATURE_RETRIES` / `STRICT_RETRIES` do not count it). A service that is down is refused twice, at
 * once. An answer, even a 5xx, is never sent again here.
 */
export const make = <F extends Feature>(
  feature: F
): Effect.Effect<FeatureClient<F>, Config.ConfigError, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const url = yield* baseUrl(feature)
    const timeout = yield* requestTimeout
    const limit = yield* maxBodyBytes
    const logLimit = yield* LogLimit.fromConfig
    const budgetSettings = yield* retryBudget
    const ErrorClass = errors[feature] as ErrorClass<Feature>
    const fail = (reason: Reason, message: string) =>
      Effect.fail(new ErrorClass({ feature, reason, message }) as FeatureError<F>)
    // The answer's body decoded, or what is wrong with it. A `content-length` over the limit is refused unread.
    const body = (response: HttpClientResponse.HttpClientResponse): Effect.Effect<FeatureUsage, Wrong> =>
      (Number(response.headers["content-length"] ?? NaN) > limit ?
        Effect.succeed({ text: "", more: true }) :
        readAtMost(response, limit)).pipe(
          Effect.mapError((error): Wrong => ["BadResponse", error.message]),
          Effect.flatMap(({ more, text }): Effect.Effect<unknown, Wrong> =>
            more ?
              Effect.fail(["TooLarge", `body over ${limit} bytes`]) :
              Effect.try({
                try: (): unknown => JSON.parse(text),
                catch: (): Wrong => ["BadResponse", "the body is not JSON"]
              })
          ),
          Effect.flatMap((json) => Effect.mapError(decode(json), (error): Wrong => ["BadResponse", error.message]))
        )
    // Built once per client, not per call.
    const decode = Schema.decodeUnknownEffect(table[feature].response)
    const client = (yield* HttpClient.HttpClient).pipe(
      HttpClient.mapRequest(HttpClientRequest.prependUrl(url)),
      HttpClient.mapRequest(HttpClientRequest.acceptJson),
      HttpClient.retryTransient({ retryOn: "errors-only", times: 1 })
    )
    // The call: under the fan-out's deadline, the budget left goes with the request. The deadline itself ends the
    // call when the budget runs out, so the client's own timer runs only when it is the shorter one (a timer that
    // fired with the deadline would race it and report `timeout`; one that never fires still costs each call a race
    // of two fibers: docs/BENCHMARKS.md, "What each feature call costs").
    const usage = (customerId: CustomerId): Effect.Effect<FeatureUsage, FeatureError<F>> =>
      Effect.flatMap(Deadline.remaining, (left) => {
        if (Option.isNone(left)) return call(customerId, timeout, undefined)
        const budget = Duration.toMillis(left.value)
        if (budget < 1) return fail("Timeout", `${feature}: no budget left for the call`)
        return call(customerId, Duration.isLessThan(timeout, left.value) ? timeout : undefined, budgetValue(budget))
      }).pipe(
        Effect.onExit((exit) =>
          Option.match(Cancellation.ofExit(exit), {
            onNone: () => Effect.void,
            onSome: (reason) =>
              Effect.logInfo(
                `feature call cancelled: ${reason._tag}${"key" in reason ? ` by ${String(reason.key)}` : ""}`
              ).pipe(
                Effect.annotateLogs({
                  feature,
                  cancelReason: reason._tag,
                  ...("key" in reason ? { cancelledBy: String(reason.key) } : {})
                })
              )
          })
        ),
        Effect.withSpan(`feature.${feature}.usage`, { attributes: { feature, customerId } })
      )
    // `timeout`: the client's own timer, when it is the nearer bound (no timer: the deadline's).
    const call = (
      customerId: CustomerId,
      timeout: Duration.Duration | undefined,
      budget: string | undefined
    ): Effect.Effect<FeatureUsage, FeatureError<F>> => {
      const answer = client.get(
        pathOf(feature, customerId),
        budget === undefined ? undefined : { headers: { [budgetHeader]: budget } }
      )
        .pipe(
          Effect.catch((error) =>
            fail(
              isRequestError(error) ? "Unavailable" : "BadResponse",
              `${feature}: ${error.message}${isRequestError(error) ? causeOf(error) : ""}`
            )
          ),
          Effect.flatMap((response) => {
            if (response.status === 504) {
              // The service could not finish within the budget it was sent.
              return bodyExcerpt(response).pipe(
                Effect.flatMap((body) => fail("Timeout", `${feature} answered 504: ${body}`))
              )
            }
            if (response.status < 200 || response.status >= 300) {
              // The body of a failed call may hold the service's stack trace: log it here, keep it out of the error.
              return bodyExcerpt(response).pipe(
                Effect.flatMap((body) =>
                  logLimit(
                    `${feature}:${response.status}`,
                    (suppressed) =>
                      Effect.logWarning("feature service answered with an error status").pipe(
                        Effect.annotateLogs({ feature, status: response.status, body, suppressed })
                      )
                  )
                ),
                Effect.andThen(fail("Unavailable", `${feature} answered ${response.status}`))
              )
            }
            return body(response).pipe(
              Effect.catch(([reason, message]) => fail(reason, `${feature}: ${message}`)),
              Effect.flatMap((answer) => {
                const wrong = mismatch({ customerId, feature }, answer)
                return wrong === undefined ? Effect.succeed(answer) : fail("BadResponse", `${feature}: ${wrong}`)
              })
            )
          })
        )
      return timeout === undefined ? answer : answer.pipe(
        Effect.timeoutOrElse({
          duration: timeout,
          orElse: () => fail("Timeout", `${feature}: no answer within ${Duration.format(timeout)}`)
        })
      )
    }
    return { feature, usage, budget: budgetSettings === undefined ? undefined : Budget.makeUnsafe(budgetSettings) }
  })

/** `feature`'s client as a Layer, over whichever `HttpClient` is provided. */
export const layer = <F extends Feature>(
  feature: F
): Layer.Layer<FeatureClient<F>, Config.ConfigError, HttpClient.HttpClient> =>
  Layer.effect(services[feature], make(feature))

/** The twelve clients, each reading its base URL from `Config`, over whichever `HttpClient` is provided. */
export const layerAll: Layer.Layer<Clients, Config.ConfigError, HttpClient.HttpClient> = Layer.mergeAll(
  ...features.map(layer) as [Layer.Layer<Clients, Config.ConfigError, HttpClient.HttpClient>]
)

/**
 * Which HTTP client calls the feature services: `FEATURE_HTTP_CLIENT`, `undici` (the default) or `node` (`node:http`
 * with a keep-alive agent). docs/BENCHMARKS.md ("What each choice of the app costs") measures the two.
 */
export const httpClientKind: Config.Config<"undici" | "node"> = variable<"undici" | "node">(
  "FEATURE_HTTP_CLIENT",
  (raw) => raw === "undici" || raw === "node" ? Result.succeed(raw) : Result.fail("must be undici or node")
).pipe(Config.withDefault("undici" as const))

/**
 * The `HttpClient` every feature client uses, with a keep-alive pool, so a fan-out of twelve calls reuses the
 * connections of the previous request instead of opening twelve new ones; at most `FEATURE_CONNECTIONS` of them per
 * service. undici by default; `node:http` with `FEATURE_HTTP_CLIENT=node`.
 */
export const layerHttpClient: Layer.Layer<HttpClient.HttpClient, Config.ConfigError> = Layer.unwrap(
  Effect.gen(function*() {
    const connections = yield* connectionsPerService
    return (yield* httpClientKind) === "node" ?
      NodeHttpClient.layerNodeHttpOptions({ keepAlive: true, maxSockets: connections }) :
      NodeHttpClient.layerUndiciOptions({ connections })
  })
)
