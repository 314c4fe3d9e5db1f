/**
 * What every feature-service client has in common. Each feature has its own file with its own service tag,
 * Layer and typed error; this module is the one place that knows how to call a feature service over HTTP.
 */
import type { HttpClientError } from "@effect/platform"
import { HttpClient, HttpClientRequest, HttpClientResponse } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import type { ConfigError } from "effect"
import { Config, Duration, Effect, Either, Layer, Option } from "effect"
import type { CustomerId, Feature } from "../Domain.js"
import { FeatureUsage } from "../Domain.js"
import { httpUrl, variable } from "../Environment.js"

/**
 * The fields of every feature client's typed error. `message` is for logs; callers decide on `reason`.
 * - `Unavailable`: the service could not be reached or answered with a non-2xx status.
 * - `BadResponse`: the service answered 2xx with a body that is not the expected JSON, or with usage of another customer
 *   or another feature than the one asked about.
 * - `Timeout`: the client's own request timeout passed (`FEATURE_TIMEOUT`, a duration such as `2 seconds`; default
 *   5 seconds).
 */
export interface ErrorFields {
  readonly feature: Feature
  readonly reason: "Unavailable" | "BadResponse" | "Timeout"
  readonly message: string
}

/** A feature service's client: one call, with the feature's own typed error `E`. */
export interface FeatureClient<E> {
  readonly feature: Feature
  readonly usage: (customerId: CustomerId) => Effect.Effect<FeatureUsage, E>
}

/** `savedSearches` → `SAVED_SEARCHES`, the prefix of that feature's configuration keys. */
export const configPrefix = (feature: Feature): string => feature.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()

/** The base URL of a feature service: `<FEATURE>_URL`, for example `SAVED_SEARCHES_URL=http://10.0.0.7:8080`. */
export const baseUrl = (feature: Feature): Config.Config<string> => httpUrl(`${configPrefix(feature)}_URL`)

/**
 * The client-side timeout of one call, shared by all features: `FEATURE_TIMEOUT`, a duration greater than zero such as
 * `2 seconds`; default 5 seconds. `Duration` reads `0 seconds` and `-1 seconds` as zero, a timeout every call would
 * hit at once: both are errors here.
 */
export const requestTimeout: Config.Config<Duration.Duration> = variable("FEATURE_TIMEOUT", (raw) =>
  Either.fromOption(
    Option.filter(Duration.decodeUnknown(raw), (duration) => Duration.greaterThan(duration, Duration.zero)),
    () => `the timeout must be a duration greater than zero, such as "2 seconds" or "500 millis"`
  )).pipe(Config.withDefault(Duration.seconds(5)))

interface ErrorStatus {
  readonly status: number
  readonly body: string
}

const bodyExcerpt = (response: HttpClientResponse.HttpClientResponse) =>
  response.text.pipe(
    Effect.map((text) => text.slice(0, 500)),
    Effect.orElseSucceed(() => "<unreadable body>")
  )

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

/** What the platform's message leaves out of a transport error: the socket's own error, such as `read ECONNRESET`. */
const causeOf = (error: HttpClientError.RequestError): string =>
  error.cause instanceof Error && error.cause.message !== "" ? `: ${error.cause.message}` : ""

/**
 * Builds a feature client from the `HttpClient` in context. Interrupting `usage` aborts its HTTP request (the
 * platform client passes an `AbortSignal` to `node:http`), so a cancelled sibling in a fan-out closes its
 * connection instead of waiting for an answer nobody will read.
 *
 * A request that fails before any answer comes (a transport error) is sent once more at once, on a new connection.
 * The case it is for: a kept-alive connection that the service closes just as the client reuses it ("socket hang
 * up", `ECONNRESET`), a race of the two sides' idle timers that no setting removes; under load it failed about one
 * request in 1,500 in strict mode (`npm run bench:load`). A GET is safe to send again, the service never saw it, and
 * this is the transport's job, as in Go's `net/http`: it is not a retry of the call (`attempts` and
 * `FEATURE_RETRIES` / `STRICT_RETRIES` do not count it). A service that is down is refused twice, at once. An answer,
 * even a 5xx, is never sent again here.
 */
export const make = <E>(
  feature: Feature,
  makeError: (fields: ErrorFields) => E
): Effect.Effect<FeatureClient<E>, ConfigError.ConfigError, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const url = yield* baseUrl(feature)
    const timeout = yield* requestTimeout
    const client = (yield* HttpClient.HttpClient).pipe(
      HttpClient.mapRequest(HttpClientRequest.prependUrl(url)),
      HttpClient.mapRequest(HttpClientRequest.acceptJson),
      HttpClient.retryTransient({ mode: "errors-only", times: 1 })
    )
    const usage = (customerId: CustomerId): Effect.Effect<FeatureUsage, E> =>
      Effect.gen(function*() {
        const response = yield* client.get(`/customers/${encodeURIComponent(customerId)}/usage`)
        if (response.status < 200 || response.status >= 300) {
          return Either.left<ErrorStatus>({ status: response.status, body: yield* bodyExcerpt(response) })
        }
        return Either.right(yield* HttpClientResponse.schemaBodyJson(FeatureUsage)(response))
      }).pipe(
        Effect.mapError((error) =>
          error._tag === "RequestError" ?
            makeError({ feature, reason: "Unavailable", message: `${feature}: ${error.message}${causeOf(error)}` }) :
            makeError({ feature, reason: "BadResponse", message: `${feature}: ${error.message}` })
        ),
        Effect.flatMap((result: Either.Either<FeatureUsage, ErrorStatus>) =>
          Either.isRight(result) ?
            Effect.succeed(result.right) :
            // The body of a failed call may hold the service's stack trace: log it here, keep it out of the error.
            Effect.logWarning("feature service answered with an error status").pipe(
              Effect.annotateLogs({ feature, status: result.left.status, body: result.left.body }),
              Effect.zipRight(
                Effect.fail(
                  makeError({ feature, reason: "Unavailable", message: `${feature} answered ${result.left.status}` })
                )
              )
            )
        ),
        Effect.flatMap((usage) => {
          const wrong = mismatch({ customerId, feature }, usage)
          return wrong === undefined ?
            Effect.succeed(usage) :
            Effect.fail(makeError({ feature, reason: "BadResponse", message: `${feature}: ${wrong}` }))
        }),
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () =>
            makeError({
              feature,
              reason: "Timeout",
              message: `${feature}: no answer within ${Duration.format(timeout)}`
            })
        }),
        Effect.withSpan(`feature.${feature}.usage`, { attributes: { feature, customerId } })
      )

    return { feature, usage }
  })

/**
 * The `HttpClient` every feature client uses: `node:http` with a keep-alive agent, so a fan-out of twelve
 * calls reuses connections from the previous request instead of opening twelve new ones.
 */
export const layerHttpClient: Layer.Layer<HttpClient.HttpClient> = NodeHttpClient.layerWithoutAgent.pipe(
  Layer.provide(NodeHttpClient.makeAgentLayer({ keepAlive: true }))
)
