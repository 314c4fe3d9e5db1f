/**
 * Tracing and metrics of fan-outs.
 *
 * One span per fan-out, always: it is one object per call. One child span per task only when a real tracer is
 * installed (anything but Effect's built-in one, which exports nothing): a span per task costs about as much as the
 * task's fiber, and without an exporter nobody would see it. `taskSpans: true` or `false` overrides that.
 *
 * Metrics are recorded once per fan-out, after it ends, straight into the metric hooks (no effect per task).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricLabel from "effect/MetricLabel"
import type * as Tracer from "effect/Tracer"
import type * as Outcome from "../Outcome.js"

/** @internal */
export const outcomesTotal = Metric.counter("fanout_task_outcomes_total", {
  description: "Tasks run by effect-fanout, by fan-out name and outcome",
  incremental: true
})

/** @internal */
export const taskDuration = Metric.histogram(
  "fanout_task_duration_millis",
  MetricBoundaries.exponential({ start: 1, factor: 2, count: 16 }),
  "Duration of tasks run by effect-fanout, in milliseconds, by fan-out name"
)

let builtInTracer: Tracer.Tracer | undefined = undefined
const isBuiltIn = (tracer: Tracer.Tracer): boolean => {
  if (builtInTracer === undefined) builtInTracer = Effect.runSync(Effect.tracer)
  return tracer === builtInTracer
}

/** @internal */
export const wantsTaskSpans = (setting: boolean | undefined): Effect.Effect<boolean> =>
  setting !== undefined ? Effect.succeed(setting) : Effect.tracerWith((tracer) => Effect.succeed(!isBuiltIn(tracer)))

/** Wraps one task in a child span named by its label (or key), marked with its outcome and attempts. */
export const taskSpan = <A, E, R>(
  task: Effect.Effect<A, E, R>,
  name: string,
  key: Outcome.Key,
  attempts: () => number,
  outcomeTag: (exit: Exit.Exit<A, E>) => string
): Effect.Effect<A, E, R> =>
  Effect.useSpan(
    name,
    { attributes: { "fanout.task.key": key }, captureStackTrace: false },
    (span) =>
      Effect.onExit(Effect.withParentSpan(task, span), (exit) =>
        Effect.sync(() => {
          span.attribute("fanout.task.outcome", outcomeTag(exit))
          span.attribute("fanout.task.attempts", attempts())
        }))
  )

/** The metric tags of one fan-out name under one set of caller tags, built once: metric hooks are cached by them. */
interface Tags {
  readonly callerTags: ReadonlyArray<MetricLabel.MetricLabel>
  readonly base: ReadonlyArray<MetricLabel.MetricLabel>
  readonly byOutcome: Record<Outcome.Outcome<unknown, unknown>["_tag"], ReadonlyArray<MetricLabel.MetricLabel>>
}
const tagsByName = new Map<string, Tags>()
const tagsFor = (name: string, callerTags: ReadonlyArray<MetricLabel.MetricLabel>): Tags => {
  const cached = tagsByName.get(name)
  if (cached !== undefined && cached.callerTags === callerTags) return cached
  const base = [...callerTags, MetricLabel.make("fanout", name)]
  const outcome = (tag: string) => [...base, MetricLabel.make("outcome", tag)]
  const tags: Tags = {
    callerTags,
    base,
    byOutcome: {
      Success: outcome("Success"),
      Failure: outcome("Failure"),
      Defect: outcome("Defect"),
      TimedOut: outcome("TimedOut"),
      Interrupted: outcome("Interrupted")
    }
  }
  // Bounded: fan-out names are few in practice; a caller making names up per call must not grow this forever.
  if (tagsByName.size >= 1000) tagsByName.clear()
  tagsByName.set(name, tags)
  return tags
}

/**
 * Counts by outcome on the fan-out's span, and the metrics, once the fan-out has ended: `tagAt(i)` is task `i`'s
 * outcome tag, `durationAt(i)` its duration (`NaN`: it never started, and has no duration to record).
 */
export const record = (
  name: string,
  span: Tracer.Span,
  n: number,
  tagAt: (index: number) => Outcome.Outcome<unknown, unknown>["_tag"],
  durationAt: (index: number) => number
): Effect.Effect<void> =>
  Effect.flatMap(FiberRef.get(FiberRef.currentMetricLabels), (callerTags) =>
    Effect.sync(() => {
      const counts = { Success: 0, Failure: 0, Defect: 0, TimedOut: 0, Interrupted: 0 }
      const tags = tagsFor(name, callerTags)
      for (let i = 0; i < n; i++) {
        counts[tagAt(i)]++
        const duration = durationAt(i)
        if (!Number.isNaN(duration)) taskDuration.unsafeUpdate(duration, tags.base)
      }
      for (const tag of ["Success", "Failure", "Defect", "TimedOut", "Interrupted"] as const) {
        span.attribute(`fanout.outcome.${tag}`, counts[tag])
        if (counts[tag] > 0) outcomesTotal.unsafeUpdate(counts[tag], tags.byOutcome[tag])
      }
    }))
