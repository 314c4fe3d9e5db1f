/**
 * The load benchmark's Effect peer: the analytics application's `Usage` written with `Effect.all` instead of
 * effect-fanout, as an Effect user would without the library. Same feature clients, same API, same responses for
 * the scenarios the benchmark runs (healthy services, one service answering 503), so that the only difference
 * between the two servers is how the twelve calls are fanned out.
 *
 * - partial: `Effect.all` with `mode: "either"`, each call timed and cut at the deadline by its own
 *   `Effect.timeout` (`Effect.all` has no deadline of its own, nor partial results). A defect in one call would
 *   still fail the whole request (`mode: "either"` only catches typed failures); the benchmark's scenarios have none.
 * - strict: `Effect.all`, each call's error tagged with its feature by a `mapError` (`Effect.all` does not say which
 *   task failed), the whole cut at the deadline by `Effect.timeoutFail`.
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
        Record.map(calls(customerId), (call) => Effect.timed(Effect.timeout(call, deadline))),
        { concurrency: "unbounded", mode: "either" }
      ).pipe(
        Effect.map((results) =>
          features.map((feature): Panel => {
            const result = results[feature]
            if (Either.isRight(result)) return okPanel(feature, result.right[1], Duration.toMillis(result.right[0]), 1)
            const error = result.left
            if (!Cause.isTimeoutException(error)) failed.push(error)
            const durationMs = Math.round(Duration.toMillis(deadline))
            return Cause.isTimeoutException(error) ?
              { status: "timed_out", feature, durationMs, attempts: 1, reason: "deadline" } :
              { status: "failed", feature, durationMs: 0, attempts: 1, reason: publicReason[error.reason] }
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
