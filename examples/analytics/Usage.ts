/**
 * The fan-out at the heart of the application: one customer's usage of twelve features, from twelve services.
 *
 * - `partial` settles every call with `FanOut.settle` under a deadline and answers with what arrived: one panel
 *   per feature, `complete: false` when any is missing. One broken service costs one panel, not the page.
 * - `strict` runs the same calls with `FanOut.all`: the first failure cancels every call still in flight (their
 *   HTTP requests are aborted) and the request fails naming the feature.
 *
 * Internal details — error messages of the downstream calls, stack traces of defects — are logged here and never
 * reach the response: the public side only sees a `PublicReason`.
 */
import { Cause, Config, Duration, Effect, Exit, Record } from "effect"
import { FanOut, FanOutError, Outcome } from "../../src/index.js"
import { DeadlineExceeded, FeatureFailed } from "./Api.js"
import type { CustomerId, Feature, FeatureUsage, Mode, Panel, PublicReason } from "./Domain.js"
import { features, UsageResponse } from "./Domain.js"
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
 */
export const requiredFeatures: Config.Config<ReadonlyArray<Feature>> = Config.array(
  Config.literal(...features)(),
  "REQUIRED_FEATURES"
).pipe(Config.withDefault([]))

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

/** What every feature client's error has in common (each client has its own tagged class). */
type FeatureError = ErrorFields

type FeatureOutcome = Outcome.Outcome<FeatureUsage, FeatureError>

const panel = (feature: Feature, outcome: FeatureOutcome): Panel => {
  const durationMs = Math.round(outcome.durationMillis)
  switch (outcome._tag) {
    case "Success":
      return {
        status: "ok",
        feature,
        durationMs,
        usage: { count: outcome.value.count, lastUsedAt: outcome.value.lastUsedAt }
      }
    case "Failure":
      return { status: "failed", feature, durationMs, reason: publicReason(outcome.error.reason) }
    case "Defect":
      return { status: "failed", feature, durationMs, reason: "internal_error" }
    case "TimedOut":
      return {
        status: "timed_out",
        feature,
        durationMs,
        reason: outcome.reason === "Deadline" ? "deadline" : "timeout"
      }
    case "Interrupted":
      return { status: "failed", feature, durationMs, reason: "cancelled" }
  }
}

/** Logs what the response will not say: the downstream error message, or the defect's stack and full cause. */
const logOutcome = (feature: Feature, outcome: FeatureOutcome) => {
  switch (outcome._tag) {
    case "Failure":
      return Effect.logWarning(`${feature} failed: ${outcome.error.message}`).pipe(Effect.annotateLogs({ feature }))
    case "Defect":
      return Effect.logError(`${feature} crashed`, outcome.cause).pipe(
        Effect.annotateLogs({ feature, stack: outcome.stack })
      )
    case "TimedOut":
      return Effect.logWarning(`${feature} timed out`).pipe(Effect.annotateLogs({ feature }))
    default:
      return Effect.void
  }
}

export interface UsageRequest {
  readonly mode: Mode
  readonly deadline: Duration.Duration
}

export class Usage extends Effect.Service<Usage>()("analytics/Usage", {
  effect: Effect.gen(function*() {
    const listings = yield* Listings
    const savedSearches = yield* SavedSearches
    const tours = yield* Tours
    const offers = yield* Offers
    const messages = yield* Messages
    const documents = yield* Documents
    const collections = yield* Collections
    const alerts = yield* Alerts
    const reports = yield* Reports
    const calendar = yield* Calendar
    const payments = yield* Payments
    const referrals = yield* Referrals
    const required = yield* requiredFeatures

    // One task per feature, keyed by feature name: the key becomes each outcome's key and label.
    const calls = (customerId: CustomerId) => ({
      listings: listings.usage(customerId),
      savedSearches: savedSearches.usage(customerId),
      tours: tours.usage(customerId),
      offers: offers.usage(customerId),
      messages: messages.usage(customerId),
      documents: documents.usage(customerId),
      collections: collections.usage(customerId),
      alerts: alerts.usage(customerId),
      reports: reports.usage(customerId),
      calendar: calendar.usage(customerId),
      payments: payments.usage(customerId),
      referrals: referrals.usage(customerId)
    })

    const partial = (customerId: CustomerId, deadline: Duration.Duration) =>
      Effect.gen(function*() {
        // How each required call ended: when one crashes or the deadline passes, the fan-out's failure does not say
        // which feature it was, and the response should.
        const ended = new Map<Feature, Exit.Exit<unknown, unknown>>()
        const tasks = Record.map(calls(customerId), (call: Effect.Effect<FeatureUsage, FeatureError>, feature) =>
          required.includes(feature) ?
            Effect.onExit(call, (exit) =>
              Effect.sync(() => ended.set(feature, exit))) :
            call)
        const deadlineMs = Math.round(Duration.toMillis(deadline))
        const settled = yield* FanOut.settle(tasks, { deadline, required }).pipe(
          Effect.catchAll((error): Effect.Effect<never, FeatureFailed | DeadlineExceeded> =>
            error instanceof FanOutError.FanOutTimeoutError ?
              Effect.fail(
                new DeadlineExceeded({
                  deadlineMs,
                  pending: required.filter((feature) =>
                    !ended.has(feature) || Exit.isInterrupted(ended.get(feature)!)
                  ),
                  message: `a required feature did not answer within ${deadlineMs} ms`
                })
              ) :
              Effect.zipRight(
                Effect.logWarning(`required feature ${error.feature} failed: ${error.message}`),
                Effect.fail(failed(error.feature, publicReason(error.reason)))
              )
          ),
          Effect.catchAllDefect((defect) => {
            const feature = required.find((feature) => {
              const exit = ended.get(feature)
              return exit !== undefined && Exit.isFailure(exit) && Cause.isDie(exit.cause)
            })
            return Effect.zipRight(
              Effect.logError(`required feature ${feature ?? "(unknown)"} crashed`, Cause.die(defect)),
              Effect.fail(failed(feature ?? required[0]!, "internal_error"))
            )
          })
        )
        const outcomes = features.map((feature) => [feature, settled[feature] as FeatureOutcome] as const)
        yield* Effect.forEach(outcomes, ([feature, outcome]) => logOutcome(feature, outcome), { discard: true })
        return outcomes.map(([feature, outcome]) => panel(feature, outcome))
      })

    const strict = (customerId: CustomerId, deadline: Duration.Duration) =>
      // `Effect.timed` on each call: fail fast gives back values, not outcomes, and a panel shows its duration.
      FanOut.all(Record.map(calls(customerId), (call) => Effect.timed<FeatureUsage, FeatureError, never>(call)), {
        deadline,
        report: true
      }).pipe(
        Effect.map((values) =>
          features.map((feature): Panel => {
            const [duration, usage] = values[feature]
            return {
              status: "ok",
              feature,
              durationMs: Math.round(Duration.toMillis(duration)),
              usage: { count: usage.count, lastUsedAt: usage.lastUsedAt }
            }
          })
        ),
        Effect.catchTag("FanOutFailure", (failure) =>
          Effect.gen(function*() {
            const outcomes = failure.outcomes as ReadonlyArray<FeatureOutcome>
            yield* Effect.forEach(
              outcomes,
              (outcome) => logOutcome(outcome.key as Feature, outcome),
              { discard: true }
            )
            if (failure.reason === "Deadline" || failure.key === undefined) {
              return yield* new DeadlineExceeded({
                deadlineMs: Math.round(Duration.toMillis(deadline)),
                pending: outcomes.filter((outcome) => !Outcome.isSuccess(outcome)).map((outcome) =>
                  outcome.key as Feature
                ),
                message: `not every feature answered within ${Math.round(Duration.toMillis(deadline))} ms`
              })
            }
            const feature = failure.key as Feature
            const outcome = outcomes.find((outcome) => outcome.key === feature)
            return yield* failed(feature, reasonOf(outcome === undefined ? undefined : panel(feature, outcome)))
          }))
      )

    return {
      /** The usage page of one customer, in the given mode, answered by `deadline` at the latest. */
      forCustomer: (customerId: CustomerId, request: UsageRequest) =>
        (request.mode === "strict" ? strict(customerId, request.deadline) : partial(customerId, request.deadline)).pipe(
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
    } as const
  })
}) {}

const failed = (feature: Feature, reason: PublicReason): FeatureFailed =>
  new FeatureFailed({ feature, reason, message: `${feature} failed (${reason})` })

/** The public reason of a panel that is not `ok`. */
const reasonOf = (panel: Panel | undefined): PublicReason =>
  panel === undefined || panel.status === "ok" ? "internal_error" : panel.reason
