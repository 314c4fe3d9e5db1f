/**
 * The load benchmark's Effect peer: the analytics application's `Usage` written with `Effect.all` instead of
 * effect-fanout, as an Effect user would without the library. Same feature clients, same API, same `respond`
 * (timing, log annotations, the `Usage.forCustomer` span), same responses for the scenarios the benchmark runs
 * (healthy services, one service answering 503), so that the only difference between the two servers is how the
 * twelve calls are fanned out. Served through `Server.serveWith`'s `usage` argument.
 *
 * - partial: `Effect.all` over the calls, each cut at the deadline by its own `Effect.timeout` (`Effect.all` has no
 *   deadline of its own, nor partial results), turned into a `Result` and timed. A defect in one call would still
 *   fail the whole request (only typed failures are caught); the benchmark's scenarios have none.
 * - strict: `Effect.all`, the whole cut at the deadline by `Effect.timeoutOrElse`; the feature that failed is read
 *   from the client's error, which carries its name (`Effect.all` does not say which task failed).
 *
 * No retries on either side: the benchmark runs the application with `FEATURE_RETRIES=0`. Like the application, it
 * logs each failed call.
 *
 * @since 1.0.0
 */
import { Cause, Duration, Effect, Layer, Record, Result } from "effect"
import { DeadlineExceeded, FeatureFailed } from "../../../examples/analytics/Api.js"
import type { CustomerId, Panel, PublicReason } from "../../../examples/analytics/Domain.js"
import * as FeatureClient from "../../../examples/analytics/FeatureClient.js"
import type { FeatureUsage } from "../../../examples/analytics/Features.js"
import { features } from "../../../examples/analytics/Features.js"
import { respond, Usage } from "../../../examples/analytics/Usage.js"

const publicReason: Record<FeatureClient.Reason, PublicReason> = {
  Unavailable: "unavailable",
  BadResponse: "bad_response",
  Timeout: "timeout",
  TooLarge: "too_large"
}

type Feature = (typeof features)[number]

const okPanel = (feature: Feature, usage: FeatureUsage, millis: number): Panel => ({
  status: "ok",
  feature,
  durationMs: Math.round(millis),
  attempts: 1,
  usage: { count: usage.count, lastUsedAt: usage.lastUsedAt }
})

/**
 * The `Usage` service on `Effect.all`, over the twelve clients in context.
 *
 * @since 1.0.0
 */
export const layer = Layer.effect(
  Usage,
  Effect.gen(function*() {
    const clients = yield* FeatureClient.all
    const calls = (customerId: CustomerId) =>
      Record.map(
        clients as Record<Feature, FeatureClient.FeatureClient>,
        (client) => client.usage(customerId) as Effect.Effect<FeatureUsage, FeatureClient.ErrorFields>
      )

    const logFailure = (error: FeatureClient.ErrorFields) =>
      Effect.logWarning(`${error.feature} failed: ${error.message}`).pipe(
        Effect.annotateLogs({ feature: error.feature })
      )

    const partial = (customerId: CustomerId, deadline: Duration.Duration) =>
      Effect.all(
        Record.map(calls(customerId), (call) => Effect.timed(Effect.result(Effect.timeout(call, deadline)))),
        { concurrency: "unbounded" }
      ).pipe(
        Effect.flatMap((results) => {
          const failed: Array<FeatureClient.ErrorFields> = []
          const panels = features.map((feature): Panel => {
            const [elapsed, result] = results[feature]
            const millis = Duration.toMillis(elapsed)
            if (Result.isSuccess(result)) return okPanel(feature, result.success, millis)
            const error = result.failure
            if (Cause.isTimeoutError(error)) {
              return { status: "timed_out", feature, durationMs: Math.round(millis), attempts: 1, reason: "deadline" }
            }
            failed.push(error)
            return error.reason === "Timeout" ?
              { status: "timed_out", feature, durationMs: Math.round(millis), attempts: 1, reason: "timeout" } :
              {
                status: "failed",
                feature,
                durationMs: Math.round(millis),
                attempts: 1,
                reason: publicReason[error.reason]
              }
          })
          return Effect.as(Effect.forEach(failed, logFailure, { discard: true }), panels)
        })
      )

    const strict = (customerId: CustomerId, deadline: Duration.Duration) =>
      Effect.all(Record.map(calls(customerId), (call) => Effect.timed(call)), { concurrency: "unbounded" }).pipe(
        Effect.tapError(logFailure),
        Effect.mapError((error) =>
          new FeatureFailed({
            feature: error.feature,
            reason: publicReason[error.reason],
            attempts: 1,
            message: `${error.feature} failed (${publicReason[error.reason]})`
          })
        ),
        Effect.timeoutOrElse({
          duration: deadline,
          orElse: () => {
            const deadlineMs = Math.round(Duration.toMillis(deadline))
            return Effect.fail(
              new DeadlineExceeded({
                deadlineMs,
                pending: [],
                message: `not every needed feature answered within ${deadlineMs} ms`
              })
            )
          }
        }),
        Effect.map((results) =>
          features.map((feature) => okPanel(feature, results[feature][1], Duration.toMillis(results[feature][0])))
        )
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
)
