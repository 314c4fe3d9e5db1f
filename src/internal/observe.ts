/**
 * Tracing and metrics of fan-outs.
 *
 * One span per fan-out, always: it is one object per call. One child span per task only when a real tracer is
 * installed (anything but Effect's built-in one, which exports nothing): a span per task costs about as much as the
 * task's fiber, and without an exporter nobody would see it. `taskSpans: true` or `false` overrides that.
 *
 * The counts on the fan-out's span and the metrics are read from the ledger once the fan-out has ended, straight into
 * the metrics' series (no effect, no outcome object per task).
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as References from "effect/References"
import * as Tracer from "effect/Tracer"
import * as Attempt from "../Attempt.js"
import type * as Outcome from "../Outcome.js"
import type { Around, AttemptHook } from "./attempts.js"
import type { Ledger } from "./ledger.js"
import type { Settings } from "./options.js"
import type { Shape } from "./shape.js"

type Tag = Outcome.Outcome<unknown, unknown>["_tag"]

const tags: ReadonlyArray<Tag> = ["Success", "Failure", "Defect", "TimedOut", "Interrupted"]

const outcomesOptions = {
  description: "Tasks run by effect-fanout, by fan-out name and outcome",
  incremental: true
} as const

const durationsOptions = {
  description: "Duration of tasks run by effect-fanout, in milliseconds, by fan-out name",
  boundaries: Metric.exponentialBoundaries({ start: 1, factor: 2, count: 16 })
} as const

/** @internal */
export const outcomesTotal: Metric.Counter<number> = Metric.counter("fanout_task_outcomes_total", outcomesOptions)

/** @internal */
export const taskDuration: Metric.Histogram<number> = Metric.histogram("fanout_task_duration_millis", durationsOptions)

/**
 * The series of one fan-out name: the same metrics, with the `fanout` (and `outcome`) attributes built in, so that
 * each keeps its own series key cached across calls (`Metric.withAttributes` would add them to the context on every
 * update). They are the very series `Metric.withAttributes(outcomesTotal, { fanout, outcome })` reads; the caller's
 * `Metric.CurrentMetricAttributes` are added to them as to any metric (and, as for any metric, win over an attribute
 * of the same name).
 */
interface Series {
  readonly outcomes: Record<Tag, Metric.Counter<number>>
  readonly durations: Metric.Histogram<number>
}

const seriesByName = new Map<string, Series>()

const seriesOf = (name: string): Series => {
  const cached = seriesByName.get(name)
  if (cached !== undefined) return cached
  const outcome = (outcome: Tag) =>
    Metric.counter(outcomesTotal.id, { ...outcomesOptions, attributes: { fanout: name, outcome } })
  const series: Series = {
    outcomes: {
      Success: outcome("Success"),
      Failure: outcome("Failure"),
      Defect: outcome("Defect"),
      TimedOut: outcome("TimedOut"),
      Interrupted: outcome("Interrupted")
    },
    durations: Metric.histogram(taskDuration.id, { ...durationsOptions, attributes: { fanout: name } })
  }
  // Bounded: fan-out names are few in practice; a caller making names up per call must not grow this forever.
  if (seriesByName.size >= 1000) seriesByName.clear()
  seriesByName.set(name, series)
  return series
}

/** Parent spans as `Effect.withSpan` does, without capturing a stack trace on every call. */
const untraced = { captureStackTrace: false } as const

/** The fan-out's span attributes when it starts, set on the span itself (no options object to copy them from). */
const annotate = (span: Tracer.Span, kind: string, shape: Shape, s: Settings): void => {
  span.attribute("fanout.mode", kind)
  span.attribute("fanout.tasks", shape.keys.length)
  span.attribute("fanout.concurrency", s.concurrency === Infinity ? "unbounded" : s.concurrency)
}

/** Whether the fan-out makes a span per task: as `taskSpans` says, else when a tracer that exports is installed. */
const wantsTaskSpans = (setting: boolean | undefined, fiber: Fiber.Fiber<unknown, unknown>): boolean =>
  setting ?? (fiber.getRef(Tracer.Tracer) !== Tracer.nativeTracer && fiber.getRef(References.TracerEnabled))

/**
 * The task spans of one fan-out: `around` opens task `index`'s span as the task starts, as the parent of what the task
 * does; `watch` ends it when the ledger records the task's end, marked with the outcome the ledger gives it — a task
 * its own timeout or the deadline cut off is `TimedOut`, which the task's fiber, seeing only an interruption, could
 * not tell.
 */
const taskSpans = (shape: Shape, fiber: Fiber.Fiber<unknown, unknown>) => {
  const n = shape.keys.length
  const spans: Array<Tracer.Span | undefined> = new Array(n)
  const attempts: Array<() => number> = new Array(n)
  const clock = fiber.getRef(Clock.Clock)
  const timing = fiber.getRef(References.TracerTimingEnabled)
  const around: Around = (index, task, attemptsOf) => {
    const key = shape.keys[index]!
    attempts[index] = attemptsOf
    return Effect.flatMap(
      Effect.makeSpan(shape.labels[index] ?? String(key), { attributes: { "fanout.task.key": key } }),
      (span) => {
        spans[index] = span
        return Effect.withParentSpan(task, span, untraced)
      }
    )
  }
  const end = (ledger: Ledger, index: number, exit: Exit.Exit<unknown, unknown>) => {
    const span = spans[index]
    if (span === undefined) return
    spans[index] = undefined
    span.attribute("fanout.task.outcome", ledger.tag(index))
    span.attribute("fanout.task.attempts", attempts[index]!())
    const kinds = ledger.prepared.kinds?.(index)
    if (kinds !== undefined) {
      span.attribute("fanout.task.retries", kinds.retries)
      span.attribute("fanout.task.hedges", kinds.hedges)
    }
    span.end(timing ? clock.currentTimeNanosUnsafe() : BigInt(0), exit)
  }
  // Each attempt an event on its task's span (the span is open: the task started).
  const attempt = (index: number, type: Attempt.Type, number: number) =>
    spans[index]?.event("fanout.attempt", timing ? clock.currentTimeNanosUnsafe() : BigInt(0), {
      "fanout.attempt.type": type,
      "fanout.attempt.number": number
    })
  const watch = (ledger: Ledger): Ledger => {
    const record = ledger.record.bind(ledger)
    ledger.record = (...args: Parameters<Ledger["record"]>) => {
      record(...args)
      end(ledger, args[0], args[1])
    }
    return ledger
  }
  return { around, watch, attempt }
}

const outcomeAttribute: Record<Tag, string> = {
  Success: "fanout.outcome.Success",
  Failure: "fanout.outcome.Failure",
  Defect: "fanout.outcome.Defect",
  TimedOut: "fanout.outcome.TimedOut",
  Interrupted: "fanout.outcome.Interrupted"
}

/**
 * The fan-out's counts by outcome on its span, and its metrics in the caller's `context` (its registry and metric
 * attributes): one count per outcome tag, one duration per task that ended (a task never started has none).
 */
const summarize = (span: Tracer.Span, name: string, ledger: Ledger, context: Context.Context<never>) => {
  const series = seriesOf(name)
  const counts: Record<Tag, number> = { Success: 0, Failure: 0, Defect: 0, TimedOut: 0, Interrupted: 0 }
  for (let i = 0; i < ledger.exits.length; i++) {
    counts[ledger.tag(i)]++
    // Only tasks that waited have a duration to record: one that ended as it started took no time on the clock.
    if (ledger.waited[i] === true) {
      series.durations.updateUnsafe(Math.max(0, ledger.ended[i]! - ledger.started[i]!), context)
    }
  }
  for (const tag of tags) {
    span.attribute(outcomeAttribute[tag], counts[tag])
    if (counts[tag] > 0) series.outcomes[tag].updateUnsafe(counts[tag], context)
  }
}

/**
 * Once the fan-out has ended (the attempts started were counted as they started): each task's retries and hedges,
 * when it made any, and the attempts refused, by reason.
 */
const summarizeAttempts = (attempts: Attempt.Series, ledger: Ledger, context: Context.Context<never>) => {
  const { kinds, refusal } = ledger.prepared
  for (let i = 0; i < ledger.exits.length; i++) {
    const made = kinds?.(i)
    if (made !== undefined) {
      if (made.retries > 0) attempts.retries.updateUnsafe(made.retries, context)
      if (made.hedges > 0) attempts.hedges.updateUnsafe(made.hedges, context)
    }
    const reason = refusal?.(i, ledger.tag(i), ledger.limits[i])
    if (reason !== undefined) attempts.refused[reason].updateUnsafe(1, context)
  }
}

/**
 * What hears of every attempt: the task spans' events, the attempt metrics when they are on. Undefined when neither
 * listens, or when the fan-out makes no attempt other than each task's one (no `retry` or `hedge`).
 */
const attemptHook = (
  spans: { readonly attempt: (index: number, type: Attempt.Type, number: number) => void } | undefined,
  attempts: Attempt.Series | undefined,
  context: Context.Context<never>
): AttemptHook | undefined => {
  if (spans === undefined && attempts === undefined) return undefined
  const numbers = new Map<number, number>()
  return {
    started(index, type) {
      if (attempts !== undefined) attempts.started[type].updateUnsafe(1, context)
      if (spans !== undefined) {
        const number = (numbers.get(index) ?? 0) + 1
        numbers.set(index, number)
        spans.attempt(index, type, number)
      }
    },
    delayed(_index, millis) {
      if (attempts !== undefined) attempts.retryDelay.updateUnsafe(millis, context)
    }
  }
}

/**
 * Runs the fan-out `make` builds inside its span (named `settings.name`, else `fanout.<kind>`). `make` is given the
 * task-span hook (undefined: no task spans) and `observe`, with which it hands over the ledger the summary is read
 * from when the fan-out ends — however it ends: answered, failed, or interrupted from outside once its tasks stopped.
 */
export const observed = <A, E>(
  kind: string,
  s: Settings,
  shape: Shape,
  make: (
    around: Around | undefined,
    observe: (ledger: Ledger) => Ledger,
    hook: AttemptHook | undefined
  ) => Effect.Effect<A, E>
): Effect.Effect<A, E> =>
  Effect.withFiber((fiber) => {
    const name = s.name ?? `fanout.${kind}`
    // The span is made and ended here and given to the tasks as their parent span, with no stack frame of the
    // fan-out's own: Effect's span combinators push one, which annotates every failure and interruption in the
    // fan-out's fibers (a cost per task), and at the very end of the stack (a deep nest of fan-outs) makes the
    // runtime re-annotate a stack overflow forever.
    return Effect.flatMap(Effect.makeSpan(name), (span) => {
      annotate(span, kind, shape, s)
      const tasks = wantsTaskSpans(s.taskSpans, fiber) ? taskSpans(shape, fiber) : undefined
      let ledger: Ledger | undefined = undefined
      // Attempts other than each task's one happen only with these options: only then is there anything to hear.
      const retrying = s.retry !== undefined || s.hedge !== undefined
      const attempts = retrying && fiber.getRef(Attempt.Metrics) ? Attempt.seriesOf(name) : undefined
      const hook = retrying ? attemptHook(tasks, attempts, fiber.context) : undefined
      const run = make(tasks?.around, (l) => ledger = tasks === undefined ? l : tasks.watch(l), hook)
      return Effect.onExit(Effect.provideService(run, Tracer.ParentSpan, span), (exit) =>
        Effect.sync(() => {
          if (ledger !== undefined) {
            summarize(span, name, ledger, fiber.context)
            if (attempts !== undefined) summarizeAttempts(attempts, ledger, fiber.context)
          }
          span.end(fiber.getRef(Clock.Clock).currentTimeNanosUnsafe(), exit)
        }))
    })
  })
