/**
 * The fan-out at the heart of the application: one customer's usage of twelve features, from twelve services.
 *
 * - `partial` settles every call with `FanOut.settle` under a deadline and answers with what arrived: one panel
 *   per feature, `complete: false` when any is missing. One broken service costs one panel, not the page — unless
 *   it is one of the `REQUIRED_FEATURES`, which fail the request at once.
 * - `strict` runs the same calls with `FanOut.all`: the first failure cancels every call still in flight (their
 *   HTTP requests are aborted) and the request fails naming the feature.
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
import { Clock, Config, Duration, Effect, Either, Record, Schedule } from "effect"
import { FanOut, type FanOutError, Outcome } from "../../src/index.js"
import { DeadlineExceeded, FeatureFailed } from "./Api.js"
import type { CustomerId, Feature, FeatureUsage, Mode, Panel, PublicReason } from "./Domain.js"
import { features, UsageResponse } from "./Domain.js"
import { variable } from "./Environment.js"
import { Alerts } from "./features/Alerts.js"
import { Calendar } from "./features/Calendar.js"
import { Collections } from "./features/Collections.js"
import { Documents } from "./features/Documents.js"
import type { ErrorFields } from "./features/FeatureClient.js"
import { Listings } from "./features/Listings.js"
import { Messages } from "./features/Messages.js"
import { Offers } from "./features/Offers.js"
import { Payments } from "./features/Payments.js"
import { Referrals } from "./features/Referrals.js"
import { Reports } from "./features/Reports.js"
import { SavedSearches } from "./features/SavedSearches.js"
import { Tours } from "./features/Tours.js"

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
  const unknown = names.filter((name) => !(features as ReadonlyArray<string>).includes(name))
  return unknown.length === 0 ?
    Either.right(names as Array<Feature>) :
    Either.left(
      `${unknown.map((name) => JSON.stringify(name)).join(", ")} ${
        unknown.length === 1 ? "is not a feature" : "are not features"
      } (the features are ${features.join(", ")})`
    )
}).pipe(Config.withDefault([]))

/**
 * A number of retries from 0 to 5, in decimal digits: `Config.integer` would also read `0x2` and `1e0`, and an empty
 * value as 0.
 */
const retriesConfig = (name: string, fallback: number): Config.Config<number> =>
  variable(
    name,
    (raw) =>
      /^\d+$/.test(raw) && Number(raw) <= 5
        ? Either.right(Number(raw))
        : Either.left("retries must be an integer from 0 to 5")
  ).pipe(Config.withDefault(fallback))

/** How many times partial mode retries a call to an `Unavailable` service: `FEATURE_RETRIES`, 0 to 5, default 2. */
export const featureRetries: Config.Config<number> = retriesConfig("FEATURE_RETRIES", 2)

/** How many times strict mode retries a call to an `Unavailable` service: `STRICT_RETRIES`, 0 to 5, default 0. */
export const strictRetries: Config.Config<number> = retriesConfig("STRICT_RETRIES", 0)

/** The twelve feature clients, one service each, by feature name. */
export const featureClients = {
  listings: Listings,
  savedSearches: SavedSearches,
  tours: Tours,
  offers: Offers,
  messages: Messages,
  documents: Documents,
  collections: Collections,
  alerts: Alerts,
  reports: Reports,
  calendar: Calendar,
  payments: Payments,
  referrals: Referrals
} satisfies Record<Feature, unknown>

/** What every feature client's error has in common (each client has its own tagged class). */
type FeatureError = ErrorFields

/**
 * The retry policy of one feature call: `retries` more tries after 20 ms, 40 ms, ... and only while the service
 * was `Unavailable` (connection refused or reset, a 5xx). `undefined` (no retry) for 0.
 */
export const retryPolicy = (retries: number) =>
  retries === 0 ? undefined : Schedule.exponential("20 millis").pipe(
    Schedule.compose(Schedule.recurs(retries)),
    Schedule.whileInput((error: FeatureError) => error.reason === "Unavailable")
  )

const publicReason = (reason: ErrorFields["reason"]): PublicReason => {
  switch (reason) {
    case "Unavailable":
      return "unavailable"
    case "BadResponse":
      return "bad_response"
    case "Timeout":
      return "timeout"
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

/** The panel of a feature that answered. */
export const okPanel = (feature: Feature, usage: FeatureUsage, durationMillis: number, attempts: number): Panel => ({
  status: "ok",
  feature,
  durationMs: Math.round(durationMillis),
  attempts,
  usage: { count: usage.count, lastUsedAt: usage.lastUsedAt }
})

/** Logs what the response will not say: the downstream error message, or the defect's stack and full cause. */
const logOutcome = (feature: Feature, outcome: FeatureOutcome) => {
  const annotations = { feature, attempts: outcome.attempts }
  switch (outcome._tag) {
    case "Failure":
      return Effect.logWarning(`${feature} failed: ${outcome.error.message}`).pipe(Effect.annotateLogs(annotations))
    case "Defect":
      return Effect.logError(`${feature} crashed`, outcome.cause).pipe(
        Effect.annotateLogs({ ...annotations, stack: outcome.stack })
      )
    case "TimedOut":
      return Effect.logWarning(`${feature} timed out`).pipe(Effect.annotateLogs(annotations))
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
  failure: FanOutError.FanOutFailure<FeatureError>,
  deadline: Duration.Duration,
  needed: (feature: Feature) => boolean
): Effect.Effect<never, FeatureFailed | DeadlineExceeded> =>
  Effect.gen(function*() {
    const outcomes = failure.outcomes
    yield* Effect.forEach(outcomes, (outcome) => logOutcome(outcome.key as Feature, outcome), { discard: true })
    if (failure.reason === "Deadline" || failure.key === undefined) {
      const deadlineMs = Math.round(Duration.toMillis(deadline))
      const pending = outcomes.filter((outcome) => !Outcome.isSuccess(outcome) && needed(outcome.key as Feature))
        .map((outcome) => outcome.key as Feature)
      // The features cut off at the deadline are interrupted, which `logOutcome` leaves out: say which they were.
      yield* Effect.logWarning(`deadline of ${deadlineMs} ms passed; pending: ${pending.join(", ")}`).pipe(
        Effect.annotateLogs({ pending: pending.join(",") })
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

/**
 * A call that reports its own attempts and the time since its first attempt began. `FanOut.all` gives back
 * values, not outcomes, and a strict page still shows both on each panel; the retries run around this effect.
 */
const tracked = <A, E>(call: Effect.Effect<A, E>) =>
  Effect.suspend(() => {
    let attempts = 0
    let startedAt = 0
    const attempt = Effect.flatMap(Clock.currentTimeMillis, (now) => {
      if (attempts++ === 0) startedAt = now
      return call
    })
    return Effect.succeed(
      Effect.flatMap(attempt, (value) =>
        Effect.map(Clock.currentTimeMillis, (now) => ({ value, attempts, durationMillis: now - startedAt })))
    )
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
    Effect.map(([elapsed, panels]) =>
      new UsageResponse({
        customerId,
        mode: request.mode,
        complete: panels.every((panel) => panel.status === "ok"),
        durationMs: Math.round(Duration.toMillis(elapsed)),
        panels
      })
    ),
    Effect.annotateLogs({ customerId, mode: request.mode }),
    Effect.withSpan("Usage.forCustomer", { attributes: { customerId, mode: request.mode } })
  )

export class Usage extends Effect.Service<Usage>()("analytics/Usage", {
  effect: Effect.gen(function*() {
    const clients = yield* Effect.all(featureClients)
    const required = yield* requiredFeatures
    const partialRetry = retryPolicy(yield* featureRetries)
    const strictRetry = retryPolicy(yield* strictRetries)

    // One task per feature, keyed by feature name: the key becomes each outcome's key and label, and the name of
    // the task's span.
    const calls = (customerId: CustomerId): Record<Feature, Effect.Effect<FeatureUsage, FeatureError>> =>
      Record.map(clients, (client) => client.usage(customerId))

    const partial = (customerId: CustomerId, deadline: Duration.Duration) =>
      Effect.gen(function*() {
        const settled = yield* FanOut.settle(calls(customerId), {
          deadline,
          required,
          report: true,
          retry: partialRetry,
          name: "usage.partial"
        }).pipe(
          Effect.catchTag("FanOutFailure", (failure) => requestError(failure, deadline, (f) => required.includes(f)))
        )
        const outcomes = features.map((feature) => [feature, settled[feature]] as const)
        yield* Effect.forEach(outcomes, ([feature, outcome]) => logOutcome(feature, outcome), { discard: true })
        return outcomes.map(([feature, outcome]) =>
          Outcome.isSuccess(outcome) ?
            okPanel(feature, outcome.value, outcome.durationMillis, outcome.attempts) :
            panel(feature, outcome)
        )
      })

    const strict = (customerId: CustomerId, deadline: Duration.Duration) =>
      Effect.gen(function*() {
        const tasks = yield* Effect.all(Record.map(calls(customerId), tracked))
        const values = yield* FanOut.all(tasks, { deadline, report: true, retry: strictRetry, name: "usage.strict" })
          .pipe(
            Effect.catchTag("FanOutFailure", (failure) => requestError(failure, deadline, () => true))
          )
        return features.map((feature) => {
          const { attempts, durationMillis, value } = values[feature]
          return okPanel(feature, value, durationMillis, attempts)
        })
      })

    return {
      /** The usage page of one customer, in the given mode, answered by `deadline` at the latest. */
      forCustomer: (customerId: CustomerId, request: UsageRequest) =>
        respond(
          customerId,
          request,
          request.mode === "strict" ? strict(customerId, request.deadline) : partial(customerId, request.deadline)
        )
    } as const
  })
}) {}
