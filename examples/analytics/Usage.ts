/**
 * The fan-out at the heart of the application: one customer's usage of twelve features, from twelve services.
 *
 * - `partial` settles every call with `FanOut.settle` under a deadline and answers with what arrived: one panel
 *   per feature, `complete: false` when any is missing. One broken service costs one panel, not the page — unless
 *   it is one of the `REQUIRED_FEATURES`, which fail the request at once.
 * - `strict` runs the same calls with `FanOut.all`: the first failure cancels every call still in flight (their
 *   HTTP requests are aborted) and the request fails naming the feature. `outcomes: true` gives back each call's
 *   `Outcome.Success`, so a strict page shows each panel's attempts and duration as a partial one does.
 *
 * Partial mode retries a call whose service was `Unavailable` (a read is idempotent, and a 503 is often a blip): it
 * waits for every call anyway, so a couple of quick retries rarely delay the page and often save a panel. Strict mode
 * does not retry by default: it exists to answer at the first failure, with the other calls cancelled at once, and a
 * retry would hold that answer (and the eleven calls in flight) for a service that most likely fails again; a caller
 * who would rather wait for a blip to pass asks for partial mode, or the deployment sets `STRICT_RETRIES`. The
 * deadline bounds everything, retries included. A `BadResponse` is never retried: the same service would send the
 * same body again.
 *
 * Internal details — error messages of the downstream calls, stack traces of defects — are logged here and never
 * reach the response: the public side only sees a `PublicReason`.
 */
import { Config, Context, Duration, Effect, Layer, Record, Result, Schedule, SchemaIssue } from "effect"
import { FanOut, type FanOutError, Hedge, Outcome } from "../../src/index.js"
import { DeadlineExceeded, FeatureFailed } from "./Api.js"
import type { CustomerId, Mode, Panel, PublicReason } from "./Domain.js"
import { UsageResponse } from "./Domain.js"
import { variable } from "./Environment.js"
import * as FeatureClient from "./FeatureClient.js"
import type { Feature, FeatureUsage } from "./Features.js"
import { features, isFeature } from "./Features.js"
import * as LogLimit from "./LogLimit.js"

/**
 * Features whose panel the page cannot do without: `REQUIRED_FEATURES=payments,listings`. In partial mode they are
 * the fan-out's `required` tasks: the first of them to fail ends the fan-out at once (the other calls are cancelled)
 * and the request answers 502 naming it, or 504 when it did not answer by the deadline.
 *
 * A name that is not a feature is an error naming it and every feature, never a feature quietly left optional.
 * Spaces around a name are allowed; an empty name is not.
 */
export const requiredFeatures: Config.Config<ReadonlyArray<Feature>> = variable("REQUIRED_FEATURES", (raw) => {
  const names = raw.split(",").map((name) => name.trim())
  const unknown = names.filter((name) => !isFeature(name))
  return unknown.length === 0 ?
    Result.succeed(names as Array<Feature>) :
    Result.fail(
      `${unknown.map((name) => JSON.stringify(name)).join(", ")} ${
        unknown.length === 1 ? "is not a feature" : "are not features"
      } (the features are ${features.join(", ")})`
    )
}).pipe(Config.withDefault([]))

/**
 * A number of retries from 0 to 5, in decimal digits: `Number` would also read `0x2` and `1e0`, and an empty value
 * as 0.
 */
const retriesConfig = (name: string, fallback: number): Config.Config<number> =>
  variable(
    name,
    (raw) =>
      /^\d+$/.test(raw) && Number(raw) <= 5
        ? Result.succeed(Number(raw))
        : Result.fail("retries must be an integer from 0 to 5")
  ).pipe(Config.withDefault(fallback))

/** How many times partial mode retries a call to an `Unavailable` service: `FEATURE_RETRIES`, 0 to 5, default 2. */
export const featureRetries: Config.Config<number> = retriesConfig("FEATURE_RETRIES", 2)

/** How many times strict mode retries a call to an `Unavailable` service: `STRICT_RETRIES`, 0 to 5, default 0. */
export const strictRetries: Config.Config<number> = retriesConfig("STRICT_RETRIES", 0)

/**
 * Hedging of the feature calls: `FEATURE_HEDGE`, `off` (the default) or `p<percentile>` from `p50` to `p99.9`, such
 * as `p95`. A call that has not answered once its service's `<percentile>` latency has passed — over that service's
 * last 200 calls that answered, at least 5 ms and at most 250 ms (250 ms until one has answered) — gets one backup
 * call; the first answer wins and the other call is cancelled. Each service learns its own delay, shared across
 * requests, and its backups draw on its retry budget (`RETRY_BUDGET`), so a slow service gets at most its budget's
 * worth of extra calls. In partial mode an `Unavailable` answer starts the backup at once (any other failure ends
 * the call); strict mode hedges only slowness: a failure fails the call, as it does without hedging.
 */
export const featureHedge: Config.Config<number | undefined> = variable("FEATURE_HEDGE", (raw) => {
  if (raw === "off") return Result.succeed(undefined)
  const match = /^p(\d{2}(?:\.\d)?)$/.exec(raw)
  const percentile = match === null ? NaN : Number(match[1])
  return percentile >= 50 && percentile < 100
    ? Result.succeed(percentile / 100)
    : Result.fail(`"off", or p<percentile> from p50 to p99.9 such as "p95"`)
}).pipe(Config.withDefault(undefined))

/** The adaptive delay's window and bounds for `FEATURE_HEDGE`. */
export const hedgeWindow = 200
export const hedgeMin = Duration.millis(5)
export const hedgeMax = Duration.millis(250)

type FeatureError = FeatureClient.FeatureError

const formatIssue = SchemaIssue.makeFormatterDefault()

/**
 * The retry policy of one feature call: `retries` more tries after 20 ms, 40 ms, ... and only while the service
 * was `Unavailable` (connection refused or reset, a 5xx). `undefined` (no retry) for 0.
 */
export const retryPolicy = (retries: number) =>
  retries === 0 ? undefined : Schedule.exponential("20 millis").pipe(
    Schedule.setInputType<FeatureError>(),
    Schedule.while(({ attempt, input }) => attempt <= retries && input.reason === "Unavailable")
  )

const publicReason = (reason: FeatureClient.Reason): PublicReason => {
  switch (reason) {
    case "Unavailable":
      return "unavailable"
    case "BadResponse":
      return "bad_response"
    case "Timeout":
      return "timeout"
    case "TooLarge":
      return "too_large"
  }
}

type FeatureOutcome = Outcome.Outcome<unknown, FeatureError>

/**
 * A feature's panel when it has no data. A call that ran out of time is `timed_out` whichever limit passed first: the
 * request's deadline (`deadline`) or the client's own `FEATURE_TIMEOUT` (`timeout`, when the deadline is longer).
 */
const panel = (feature: Feature, outcome: Outcome.NotSuccess<FeatureError>): Panel => {
  const common = { feature, durationMs: Math.round(outcome.durationMillis), attempts: outcome.attempts }
  switch (outcome._tag) {
    case "Failure":
      return outcome.error.reason === "Timeout"
        ? { status: "timed_out", ...common, reason: "timeout" }
        : { status: "failed", ...common, reason: publicReason(outcome.error.reason) }
    case "Defect":
      return { status: "failed", ...common, reason: "internal_error" }
    case "TimedOut":
      return { status: "timed_out", ...common, reason: outcome.reason === "Deadline" ? "deadline" : "timeout" }
    case "Interrupted":
      return { status: "failed", ...common, reason: "cancelled" }
  }
}

/** The panel of a feature that answered, with the attempts and duration its outcome counted. */
export const okPanel = (feature: Feature, outcome: Outcome.Success<FeatureUsage>): Panel => ({
  status: "ok",
  feature,
  durationMs: Math.round(outcome.durationMillis),
  attempts: outcome.attempts,
  usage: { count: outcome.value.count, lastUsedAt: outcome.value.lastUsedAt }
})

/**
 * Logs what the response will not say: the downstream error message, or the defect's stack and full cause. Through
 * `logLimit`, keyed by feature and outcome: a feature failing the same way on every request is logged once per
 * `LOG_WINDOW`, the next line counting the ones left out (`suppressed`).
 */
const logOutcome = (logLimit: LogLimit.LogLimit, feature: Feature, outcome: FeatureOutcome) => {
  const annotations = { feature, attempts: outcome.attempts }
  const limited = (entry: Effect.Effect<void>) => logLimit(`${feature}:${outcome._tag}`, LogLimit.counting(entry))
  switch (outcome._tag) {
    case "Failure":
      return limited(
        Effect.logWarning(`${feature} failed: ${outcome.error.message}`).pipe(Effect.annotateLogs(annotations))
      )
    case "Defect":
      return limited(
        Effect.logError(`${feature} crashed`, outcome.cause).pipe(
          Effect.annotateLogs({ ...annotations, stack: outcome.stack })
        )
      )
    case "TimedOut":
      return limited(Effect.logWarning(`${feature} timed out`).pipe(Effect.annotateLogs(annotations)))
    default:
      return Effect.void
  }
}

/**
 * The request's error when a fan-out fails with a `FanOutFailure` (strict mode, or a required feature in partial
 * mode): 504 naming the `needed` features still missing at the deadline, or 502 naming the feature that failed.
 * Every outcome is logged first, so the defect's stack and the downstream messages stay on the server.
 */
const requestError = (
  logLimit: LogLimit.LogLimit,
  failure: FanOutError.FanOutFailure<FeatureError>,
  deadline: Duration.Duration,
  needed: (feature: Feature) => boolean
): Effect.Effect<never, FeatureFailed | DeadlineExceeded> =>
  Effect.gen(function*() {
    const outcomes = failure.outcomes
    yield* Effect.forEach(outcomes, (outcome) => logOutcome(logLimit, outcome.key as Feature, outcome), {
      discard: true
    })
    if (failure.reason === "Deadline" || failure.key === undefined) {
      const deadlineMs = Math.round(Duration.toMillis(deadline))
      const pending = outcomes.filter((outcome) => !Outcome.isSuccess(outcome) && needed(outcome.key as Feature))
        .map((outcome) => outcome.key as Feature)
      // The features cut off at the deadline are interrupted, which `logOutcome` leaves out: say which they were.
      yield* logLimit(
        `deadline:${pending.join(",")}`,
        LogLimit.counting(
          Effect.logWarning(`deadline of ${deadlineMs} ms passed; pending: ${pending.join(", ")}`).pipe(
            Effect.annotateLogs({ pending: pending.join(",") })
          )
        )
      )
      return yield* new DeadlineExceeded({
        deadlineMs,
        pending,
        message: `not every needed feature answered within ${deadlineMs} ms`
      })
    }
    const feature = failure.key as Feature
    const outcome = outcomes.find((outcome) => outcome.key === feature)
    const attempts = outcome?.attempts ?? 1
    const failedPanel = outcome === undefined || Outcome.isSuccess(outcome) ? undefined : panel(feature, outcome)
    const reason = failedPanel === undefined || failedPanel.status === "ok" ? "internal_error" : failedPanel.reason
    return yield* new FeatureFailed({
      feature,
      reason,
      attempts,
      message: `${feature} failed (${reason})${attempts > 1 ? ` after ${attempts} attempts` : ""}`
    })
  })

export interface UsageRequest {
  readonly mode: Mode
  readonly deadline: Duration.Duration
}

/**
 * The response around the panels of one request: how long they took, whether all are `ok`, the request's log
 * annotations and its `Usage.forCustomer` span.
 */
export const respond = <E, R>(
  customerId: CustomerId,
  request: UsageRequest,
  panels: Effect.Effect<ReadonlyArray<Panel>, E, R>
): Effect.Effect<UsageResponse, E, R> =>
  panels.pipe(
    Effect.timed,
    Effect.flatMap(([elapsed, panels]) =>
      UsageResponse.makeEffect({
        customerId,
        mode: request.mode,
        complete: panels.every((panel) => panel.status === "ok"),
        durationMs: Math.round(Duration.toMillis(elapsed)),
        panels
      }).pipe(
        // Panels that are not panels are the application's own bug: a crash, with the schema's words for it.
        Effect.catch((issue) => Effect.die(new Error(`not a UsageResponse: ${formatIssue(issue)}`)))
      )
    ),
    Effect.annotateLogs({ customerId, mode: request.mode }),
    Effect.withSpan("Usage.forCustomer", { attributes: { customerId, mode: request.mode } })
  )

/** Builds the fan-out service from the twelve clients in context and the retry and required-feature settings. */
export const make = Effect.gen(function*() {
  const clients = yield* FeatureClient.all
  const required = yield* requiredFeatures
  const partialRetry = retryPolicy(yield* featureRetries)
  const strictRetry = retryPolicy(yield* strictRetries)
  const percentile = yield* featureHedge
  // One adaptive delay per feature service, made once and so shared by every request: each learns its own latency.
  const hedgeDelays = percentile === undefined ? undefined : Record.map(
    clients,
    () => Hedge.adaptive({ percentile, window: hedgeWindow, min: hedgeMin, max: hedgeMax })
  )
  const hedge = (nonFatal: (error: FeatureError | FanOutError.FanOutTimeoutError) => boolean) =>
    hedgeDelays === undefined ? undefined : {
      delay: (feature: PropertyKey) => hedgeDelays[feature as Feature],
      max: 2,
      nonFatal
    }
  const partialHedge = hedge((error) => error.reason === "Unavailable")
  const strictHedge = hedge(() => false)
  const logLimit = yield* LogLimit.fromConfig

  // One task per feature, keyed by feature name: the key becomes each outcome's key and label, and the name of
  // the task's span.
  const calls = (customerId: CustomerId) => Record.map(clients, (client) => client.usage(customerId))
  // Each feature's retries draw from its own service's budget, shared across requests.
  const budgetOf = (feature: PropertyKey) => clients[feature as Feature].budget

  const partial = (customerId: CustomerId, deadline: Duration.Duration) =>
    Effect.gen(function*() {
      const settled = yield* FanOut.settle(calls(customerId), {
        deadline,
        required,
        report: true,
        retry: partialRetry,
        hedge: partialHedge,
        budget: budgetOf,
        name: "usage.partial"
      }).pipe(
        Effect.catchTag("FanOutFailure", (failure) =>
          requestError(logLimit, failure, deadline, (f) => required.includes(f)))
      )
      const outcomes = features.map((feature) =>
        [feature, settled[feature]] as const
      )
      yield* Effect.forEach(outcomes, ([feature, outcome]) => logOutcome(logLimit, feature, outcome), { discard: true })
      return outcomes.map(([feature, outcome]) =>
        Outcome.isSuccess(outcome) ? okPanel(feature, outcome) : panel(feature, outcome)
      )
    })

  const strict = (customerId: CustomerId, deadline: Duration.Duration) =>
    FanOut.all(calls(customerId), {
      deadline,
      report: true,
      outcomes: true,
      retry: strictRetry,
      hedge: strictHedge,
      budget: budgetOf,
      name: "usage.strict"
    }).pipe(
      Effect.catchTag("FanOutFailure", (failure) => requestError(logLimit, failure, deadline, () => true)),
      Effect.map((outcomes) => features.map((feature) => okPanel(feature, outcomes[feature])))
    )

  return Usage.of({
    forCustomer: (customerId, request) =>
      respond(
        customerId,
        request,
        request.mode === "strict" ? strict(customerId, request.deadline) : partial(customerId, request.deadline)
      )
  })
})

export class Usage extends Context.Service<Usage, {
  /** The usage page of one customer, in the given mode, answered by `request.deadline` at the latest. */
  readonly forCustomer: (
    customerId: CustomerId,
    request: UsageRequest
  ) => Effect.Effect<UsageResponse, FeatureFailed | DeadlineExceeded>
}>()("analytics/Usage") {
  /** The application's fan-out, over the twelve clients in context. */
  static readonly layer: Layer.Layer<Usage, Config.ConfigError, FeatureClient.Clients> = Layer.effect(Usage, make)
}
