/**
 * The load benchmark's Effect peer: the analytics application's `Usage` written with `Effect.all` instead of
 * effect-fanout, as an Effect user would without the library. Same feature clients, same API, same responses for
 * the scenarios the benchmark runs (healthy services, one service answering 503), so that the only difference
 * between the two servers is how the twelve calls are fanned out.
 *
 * - partial: `Effect.all` over the calls, each cut at the deadline by its own `Effect.timeout` (`Effect.all` has no
 *   deadline of its own, nor partial results), turned into an `Either` and timed. A defect in one call would still
 *   fail the whole request (as with `mode: "either"`, only typed failures are caught); the benchmark's scenarios have
 *   none.
 * - strict: `Effect.all`, the whole cut at the deadline by `Effect.timeoutFail`; the feature that failed is read from
 *   the client's error, which carries its name (`Effect.all` does not say which task failed: with errors that do not
 *   name their source, each call would need a `mapError`).
 *
 * No retries on either side: the benchmark runs the application with `FEATURE_RETRIES=0`. Like the application, it
 * logs each failed call, and its response is made by the same `respond` (timing, log annotations, the
 * `Usage.forCustomer` span).
 */
import { Cause, Duration, Effect, Either, Layer, Record } from "effect"
import { DeadlineExceeded, FeatureFailed } from "../../../examples/analytics/Api.js"
import type { CustomerId, Feature, FeatureUsage, Panel, PublicReason } from "../../../examples/analytics/Domain.js"
import { features } from "../../../examples/analytics/Domain.js"
import type { ErrorFields } from "../../../examples/analytics/features/FeatureClient.js"
import { featureClients, okPanel, respond, Usage, type UsageRequest } from "../../../examples/analytics/Usage.js"

const publicReason: Record<ErrorFields["reason"], PublicReason> = {
  Unavailable: "unavailable",
  BadResponse: "bad_response",
  Timeout: "timeout"
}

export const layer = Layer.effect(
  Usage,
  Effect.gen(function*() {
    const clients = yield* Effect.all(featureClients)
    const calls = (customerId: CustomerId): Record<Feature, Effect.Effect<FeatureUsage, ErrorFields>> =>
      Record.map(clients, (client) => client.usage(customerId))

    const logFailure = (error: ErrorFields) =>
      Effect.logWarning(`${error.feature} failed: ${error.message}`).pipe(
        Effect.annotateLogs({ feature: error.feature })
      )

    const partial = (customerId: CustomerId, deadline: Duration.Duration) => {
      const failed: Array<ErrorFields> = []
      return Effect.all(
        Record.map(calls(customerId), (call) => Effect.timed(Effect.either(Effect.timeout(call, deadline)))),
        { concurrency: "unbounded" }
      ).pipe(
        Effect.map((results) =>
          features.map((feature): Panel => {
            const [elapsed, result] = results[feature]
            const millis = Duration.toMillis(elapsed)
            if (Either.isRight(result)) return okPanel(feature, result.right, millis, 1)
            const error = result.left
            if (Cause.isTimeoutException(error)) {
              return { status: "timed_out", feature, durationMs: Math.round(millis), attempts: 1, reason: "deadline" }
            }
            failed.push(error)
            return {
              status: "failed",
              feature,
              durationMs: Math.round(millis),
              attempts: 1,
              reason: publicReason[error.reason]
            }
          })
        ),
        Effect.tap(() => Effect.forEach(failed, logFailure, { discard: true }))
      )
    }

    const strict = (customerId: CustomerId, deadline: Duration.Duration) =>
      Effect.all(
        Record.map(calls(customerId), (call) => Effect.timed(call)),
        { concurrency: "unbounded" }
      ).pipe(
        Effect.tapError(logFailure),
        Effect.mapError((error: ErrorFields) =>
          new FeatureFailed({
            feature: error.feature,
            reason: publicReason[error.reason],
            attempts: 1,
            message: `${error.feature} failed (${publicReason[error.reason]})`
          })
        ),
        Effect.timeoutFail({
          duration: deadline,
          onTimeout: () => {
            const deadlineMs = Math.round(Duration.toMillis(deadline))
            return new DeadlineExceeded({
              deadlineMs,
              pending: [],
              message: `not every needed feature answered within ${deadlineMs} ms`
            })
          }
        }),
        Effect.map((results) =>
          features.map((feature) => okPanel(feature, results[feature][1], Duration.toMillis(results[feature][0]), 1))
        )
      )

    return Usage.make({
      forCustomer: (customerId: CustomerId, request: UsageRequest) =>
        respond(
          customerId,
          request,
          request.mode === "strict" ? strict(customerId, request.deadline) : partial(customerId, request.deadline)
        )
    })
  })
)
