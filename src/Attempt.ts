/**
 * Attempt telemetry: what each task's attempts were (its first, a retry, a hedge) and why a task got no further one.
 *
 * Task spans (when the fan-out makes them) always say it: each attempt is an event `fanout.attempt` on its task's
 * span with `fanout.attempt.type` (`original`, `retry`, `hedge`) and `fanout.attempt.number`, and the span ends with
 * `fanout.task.retries` and `fanout.task.hedges` beside `fanout.task.attempts`. The metrics below are recorded only
 * where {@link Metrics} is `true` (provide {@link layerMetrics}), so a fan-out that does not ask pays nothing for
 * them; and only by fan-outs with `retry` or `hedge` — without them every task is its one original
 * attempt, which the outcome metrics already count.
 *
 * The metrics follow gRPC's OpenTelemetry metrics where they fit: `grpc.client.attempt.started` (gRFC A66) is
 * {@link metrics}`.started`, with the attempt's type as an attribute; `grpc.client.call.retries` and
 * `grpc.client.call.hedges` (gRFC A96: per call, only calls that made one) are {@link metrics}`.retries` and
 * `.hedges`, per task that made one; `grpc.client.call.retry_delay` (A96, the delay a call spent between its
 * attempts) is {@link metrics}`.retryDelay`, recorded once per retry, in milliseconds like the library's other
 * metrics. gRPC has no count of attempts refused: `refused` counts them by
 * the reason the task stopped there (`budget`, `limit`, `deadline`). Every series has the `fanout` attribute (the
 * fan-out's name), as the outcome metrics do.
 *
 * @since 1.1.0
 */
import * as Context from "effect/Context"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"

/**
 * What an attempt is: the task's first (`original`), a retry its schedule decided on (`retry`), or a backup started
 * beside a running attempt or at once after a failed one (`hedge`).
 *
 * @since 1.1.0
 * @category models
 */
export type Type = "original" | "retry" | "hedge"

/**
 * Why a task got no further attempt, as `fanout_attempts_refused_total` counts it: its `budget` was too low; the
 * `limit` (its retry schedule, or `hedge.max`, gave none after a failure or a time-out of its own); the `deadline`
 * (it passed while a retry waited for its delay).
 *
 * @since 1.1.0
 * @category models
 */
export type Refusal = "budget" | "limit" | "deadline"

/**
 * Whether fan-outs record the attempt metrics: `false` unless set (`Effect.provideService(Attempt.Metrics, true)`, or
 * {@link layerMetrics}). Read once per fan-out that has `retry` or `hedge`.
 *
 * @since 1.1.0
 * @category references
 */
export const Metrics: Context.Reference<boolean> = Context.Reference<boolean>("effect-fanout/Attempt/Metrics", {
  defaultValue: () => false
})

/**
 * Turns the attempt metrics on for everything it is provided to.
 *
 * **Example**
 *
 * ```ts
 * import { Effect, Schedule } from "effect"
 * import { Attempt, FanOut } from "effect-fanout"
 *
 * const program = FanOut.settle([Effect.fail("down")], { retry: Schedule.recurs(2), name: "page" }).pipe(
 *   Effect.provide(Attempt.layerMetrics)
 * )
 * // fanout_attempts_started_total { fanout: "page", type: "original" } 1, { type: "retry" } 2
 * // fanout_attempts_refused_total { fanout: "page", reason: "limit" } 1
 * ```
 *
 * @since 1.1.0
 * @category layers
 */
export const layerMetrics: Layer.Layer<never> = Layer.succeed(Metrics, true)

const startedOptions = {
  description: "Attempts started by effect-fanout tasks, by fan-out name and type (original, retry, hedge)",
  incremental: true
} as const

const delayOptions = {
  description: "Delay before each retry of an effect-fanout task, in milliseconds, by fan-out name",
  boundaries: Metric.exponentialBoundaries({ start: 1, factor: 2, count: 16 })
} as const

const retriesOptions = {
  description: "Retries an effect-fanout task made, per task that made one, by fan-out name",
  boundaries: Metric.linearBoundaries({ start: 1, width: 1, count: 11 })
} as const

const hedgesOptions = {
  description: "Hedges (backup attempts) an effect-fanout task started, per task that started one, by fan-out name",
  boundaries: Metric.linearBoundaries({ start: 1, width: 1, count: 11 })
} as const

const refusedOptions = {
  description: "Attempts effect-fanout tasks did not make, by fan-out name and reason (budget, limit, deadline)",
  incremental: true
} as const

/**
 * The attempt metrics: `started` (`fanout_attempts_started_total`, attributes `fanout` and `type`), `retries`
 * (`fanout_task_retries`) and `hedges` (`fanout_task_hedges`), one sample per task that made a retry or started a
 * hedge (attribute `fanout`), `retryDelay` (`fanout_retry_delay_millis`, attribute `fanout`) and `refused`
 * (`fanout_attempts_refused_total`, attributes `fanout` and `reason`). Read one series with `Metric.withAttributes`, as for `FanOut.metrics`.
 *
 * @since 1.1.0
 * @category metrics
 */
export const metrics: {
  readonly started: Metric.Counter<number>
  readonly retries: Metric.Histogram<number>
  readonly hedges: Metric.Histogram<number>
  readonly retryDelay: Metric.Histogram<number>
  readonly refused: Metric.Counter<number>
} = {
  started: Metric.counter("fanout_attempts_started_total", startedOptions),
  retries: Metric.histogram("fanout_task_retries", retriesOptions),
  hedges: Metric.histogram("fanout_task_hedges", hedgesOptions),
  retryDelay: Metric.histogram("fanout_retry_delay_millis", delayOptions),
  refused: Metric.counter("fanout_attempts_refused_total", refusedOptions)
}

/**
 * The series of one fan-out name, made once and cached, as the outcome metrics' are.
 *
 * @internal
 */
export interface Series {
  readonly started: Record<Type, Metric.Counter<number>>
  readonly retries: Metric.Histogram<number>
  readonly hedges: Metric.Histogram<number>
  readonly retryDelay: Metric.Histogram<number>
  readonly refused: Record<Refusal, Metric.Counter<number>>
}

const seriesByName = new Map<string, Series>()

/** @internal */
export const seriesOf = (name: string): Series => {
  const cached = seriesByName.get(name)
  if (cached !== undefined) return cached
  const started = (type: Type) =>
    Metric.counter(metrics.started.id, { ...startedOptions, attributes: { fanout: name, type } })
  const refused = (reason: Refusal) =>
    Metric.counter(metrics.refused.id, { ...refusedOptions, attributes: { fanout: name, reason } })
  const series: Series = {
    started: { original: started("original"), retry: started("retry"), hedge: started("hedge") },
    retries: Metric.histogram(metrics.retries.id, { ...retriesOptions, attributes: { fanout: name } }),
    hedges: Metric.histogram(metrics.hedges.id, { ...hedgesOptions, attributes: { fanout: name } }),
    retryDelay: Metric.histogram(metrics.retryDelay.id, { ...delayOptions, attributes: { fanout: name } }),
    refused: { budget: refused("budget"), limit: refused("limit"), deadline: refused("deadline") }
  }
  if (seriesByName.size >= 1000) seriesByName.clear()
  seriesByName.set(name, series)
  return series
}
