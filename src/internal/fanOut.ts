/**
 * Fail-fast and settle on top of the engine: reading the input's shape, preparing each task (timeout, retry),
 * choosing when to stop, and turning the engine's exits into results, outcomes and errors.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Predicate from "effect/Predicate"
import * as Schedule from "effect/Schedule"
import { FanOutFailure, FanOutTimeoutError, InvalidOptionError } from "../FanOutError.js"
import type * as Outcome from "../Outcome.js"
import * as engine from "./engine.js"
import * as options from "./options.js"
import * as stack from "./stack.js"

type AnyEffect = Effect.Effect<any, any, any>

// ---------------------------------------------------------------------------------------------------------------
// labels

const labels = new WeakMap<object, string>()

/** @internal */
export const labeled = <A, E, R>(effect: Effect.Effect<A, E, R>, label: string): Effect.Effect<A, E, R> => {
  if (typeof label !== "string") {
    return Effect.die(
      new InvalidOptionError({ option: "label", reason: `must be a string, got ${options.show(label)}` })
    )
  }
  // A fresh effect, so that one effect value used twice can carry two labels.
  const wrapped = Effect.suspend(() => effect)
  labels.set(wrapped, label)
  return wrapped
}

// ---------------------------------------------------------------------------------------------------------------
// shapes

/** @internal */
export interface Shape {
  readonly struct: boolean
  readonly keys: Array<Outcome.Key>
  readonly effects: Array<AnyEffect>
  readonly labels: Array<string | undefined>
}

/** @internal */
export const isTasks = (u: unknown): boolean =>
  (Predicate.isIterable(u) && typeof u !== "string") ||
  (Predicate.isRecord(u) && Object.values(u).every(Effect.isEffect))

/** @internal */
export const shapeOf = (input: unknown): Shape => {
  if (Predicate.isIterable(input) && typeof input !== "string") {
    const effects = Array.from(input as Iterable<unknown>)
    const keys: Array<number> = new Array(effects.length)
    const taskLabels: Array<string | undefined> = new Array(effects.length)
    for (let i = 0; i < effects.length; i++) {
      const effect = effects[i]
      if (!Effect.isEffect(effect)) {
        throw new InvalidOptionError({
          option: "tasks",
          reason: `entry ${i} is not an Effect: ${options.show(effect)}`
        })
      }
      keys[i] = i
      taskLabels[i] = labels.get(effect)
    }
    return { struct: false, keys, effects: effects as Array<AnyEffect>, labels: taskLabels }
  }
  if (Predicate.isRecord(input)) {
    const keys = Object.keys(input)
    const effects: Array<AnyEffect> = new Array(keys.length)
    const taskLabels: Array<string> = new Array(keys.length)
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!
      const effect = input[key]
      if (!Effect.isEffect(effect)) {
        throw new InvalidOptionError({
          option: "tasks",
          reason: `entry ${JSON.stringify(key)} is not an Effect: ${options.show(effect)}`
        })
      }
      effects[i] = effect
      taskLabels[i] = labels.get(effect) ?? key
    }
    return { struct: true, keys, effects, labels: taskLabels }
  }
  throw new InvalidOptionError({
    option: "tasks",
    reason: `must be a tuple, an iterable or a struct of Effects, got ${options.show(input)}`
  })
}

/** @internal */
export const shapeOfForEach = <X>(
  items: Iterable<X>,
  f: (item: X, index: number) => AnyEffect,
  label: ((item: X, index: number) => string) | undefined
): Shape => {
  if (!Predicate.isIterable(items) || typeof items === "string") {
    throw new InvalidOptionError({ option: "items", reason: `must be an iterable, got ${options.show(items)}` })
  }
  if (!Predicate.isFunction(f)) {
    throw new InvalidOptionError({ option: "f", reason: `must be a function, got ${options.show(f)}` })
  }
  if (label !== undefined && !Predicate.isFunction(label)) {
    throw new InvalidOptionError({ option: "label", reason: `must be a function, got ${options.show(label)}` })
  }
  const list = Array.from(items)
  const effects: Array<AnyEffect> = new Array(list.length)
  const keys: Array<number> = new Array(list.length)
  const taskLabels: Array<string | undefined> = new Array(list.length)
  for (let i = 0; i < list.length; i++) {
    const effect = f(list[i]!, i)
    if (!Effect.isEffect(effect)) {
      throw new InvalidOptionError({
        option: "f",
        reason: `returned a non-Effect for item ${i}: ${options.show(effect)}`
      })
    }
    effects[i] = effect
    keys[i] = i
    taskLabels[i] = label !== undefined ? label(list[i]!, i) : labels.get(effect)
  }
  return { struct: false, keys, effects, labels: taskLabels }
}

/** @internal */
export const rebuild = (shape: Shape, values: ReadonlyArray<unknown>): any => {
  if (!shape.struct) return values
  const out: Record<string, unknown> = {}
  for (let i = 0; i < shape.keys.length; i++) out[shape.keys[i] as string] = values[i]
  return out
}

// ---------------------------------------------------------------------------------------------------------------
// options

/** @internal */
export interface Settings {
  readonly concurrency: number
  readonly timeout: Duration.Duration | undefined
  readonly deadline: Duration.Duration | undefined
  readonly retry: Schedule.Schedule<any, any, any> | undefined
  readonly detach: boolean
  readonly report: boolean
}

/** @internal */
export const settings = (raw: unknown): Settings => {
  if (raw !== undefined && !Predicate.isRecord(raw)) {
    throw new InvalidOptionError({ option: "options", reason: `must be an object, got ${options.show(raw)}` })
  }
  const o = (raw ?? {}) as Record<string, unknown>
  const retry = o.retry
  if (retry !== undefined && !Schedule.isSchedule(retry)) {
    throw new InvalidOptionError({ option: "retry", reason: `must be a Schedule, got ${options.show(retry)}` })
  }
  return {
    concurrency: options.concurrency(o.concurrency),
    timeout: options.duration(o.timeout, "timeout"),
    deadline: options.duration(o.deadline, "deadline"),
    retry: retry as Schedule.Schedule<any, any, any> | undefined,
    detach: options.boolean(o.detach, "detach"),
    report: options.boolean(o.report, "report")
  }
}

// ---------------------------------------------------------------------------------------------------------------
// preparing tasks

/** Marks a settle task's own timeout; private, so a task's own errors can never be mistaken for it. */
class TaskTimedOut {
  readonly _tag = "TaskTimedOut"
}
const taskTimedOut = new TaskTimedOut()

/** @internal */
export interface Prepared {
  readonly tasks: Array<AnyEffect>
  /** Tries per task; only counted when retries are on (otherwise 1 for every task that started). */
  readonly attempts: Array<number> | undefined
}

/** @internal */
export const prepare = (shape: Shape, s: Settings, failFast: boolean): Prepared => {
  if (s.timeout === undefined && s.retry === undefined) return { tasks: shape.effects, attempts: undefined }
  const n = shape.effects.length
  const attempts: Array<number> | undefined = s.retry === undefined ? undefined : new Array(n).fill(0)
  const tasks: Array<AnyEffect> = new Array(n)
  for (let i = 0; i < n; i++) {
    let task = shape.effects[i]!
    if (s.timeout !== undefined) {
      const duration = s.timeout
      const onTimeout: () => unknown = failFast
        ? () => new FanOutTimeoutError({ reason: "Timeout", key: shape.keys[i], label: shape.labels[i], duration })
        : () => taskTimedOut
      task = Effect.timeoutFail(task, { duration, onTimeout })
    }
    if (attempts !== undefined) {
      const attempt = task
      task = Effect.retry(
        Effect.suspend(() => {
          attempts[i]!++
          return attempt
        }),
        s.retry!
      )
    }
    tasks[i] = task
  }
  return { tasks, attempts }
}

// ---------------------------------------------------------------------------------------------------------------
// outcomes

/** @internal */
export const outcomeOf = (
  shape: Shape,
  prepared: Prepared,
  report: engine.Report,
  index: number,
  now: number
): Outcome.Outcome<unknown, unknown> => {
  const exit = report.exits[index]
  const started = !Number.isNaN(report.startedAt[index]!)
  const ended = exit !== undefined ? report.endedAt[index]! : started && report.cut[index] ? now : 0
  const common = {
    key: shape.keys[index]!,
    label: shape.labels[index],
    durationMillis: started ? Math.max(0, ended - report.startedAt[index]!) : 0,
    attempts: prepared.attempts !== undefined ? prepared.attempts[index]! : started ? 1 : 0
  }
  const cutOff = (): Outcome.Outcome<unknown, unknown> =>
    report.stop === "Deadline" && report.cut[index]
      ? { _tag: "TimedOut", reason: "Deadline", ...common }
      : { _tag: "Interrupted", ...common }
  if (exit === undefined) return cutOff()
  if (exit._tag === "Success") return { _tag: "Success", value: exit.value, ...common }
  const cause = exit.cause
  const failure = Cause.failureOption(cause)
  if (failure._tag === "Some") {
    const error = failure.value
    if (error === taskTimedOut) return { _tag: "TimedOut", reason: "Timeout", ...common }
    if (error instanceof FanOutTimeoutError && error.reason === "Timeout" && error.key === common.key) {
      return { _tag: "TimedOut", reason: "Timeout", ...common }
    }
    return { _tag: "Failure", error, cause, ...common }
  }
  const defects = Cause.defects(cause)
  if (Chunk.isNonEmpty(defects)) {
    const defect = Chunk.headNonEmpty(defects)
    return { _tag: "Defect", defect, cause: cause as Cause.Cause<never>, stack: stack.ofDefect(defect), ...common }
  }
  return report.cut[index] ? cutOff() : { _tag: "Interrupted", ...common }
}

/** @internal */
export const outcomesOf = (
  shape: Shape,
  prepared: Prepared,
  report: engine.Report,
  now: number
): Array<Outcome.Outcome<unknown, unknown>> => {
  const out = new Array(shape.effects.length)
  for (let i = 0; i < out.length; i++) out[i] = outcomeOf(shape, prepared, report, i, now)
  return out
}

// ---------------------------------------------------------------------------------------------------------------
// settle

const never = () => false

/** @internal */
export const settle = (shape: Shape, s: Settings): Effect.Effect<any> => {
  const prepared = prepare(shape, s, false)
  return Effect.flatMap(
    engine.run({
      tasks: prepared.tasks,
      concurrency: s.concurrency,
      deadline: s.deadline,
      detach: false,
      onExit: never
    }),
    (report) =>
      Effect.clockWith((clock) =>
        Effect.succeed(rebuild(shape, outcomesOf(shape, prepared, report, clock.unsafeCurrentTimeMillis())))
      )
  )
}

// ---------------------------------------------------------------------------------------------------------------
// fail fast

const failed = (_: number, exit: Exit.Exit<any, any>) => exit._tag === "Failure"

/** What is left of a cause once the fan-out's own interruption of the task is taken out. */
const genuine = (cause: Cause.Cause<unknown>): Cause.Cause<unknown> => {
  let out: Cause.Cause<unknown> = Cause.empty
  for (const error of Cause.failures(cause)) out = Cause.parallel(out, Cause.fail(error))
  for (const defect of Cause.defects(cause)) out = Cause.parallel(out, Cause.die(defect))
  return out
}

/** @internal */
export const all = (shape: Shape, s: Settings): Effect.Effect<any, any> => {
  const prepared = prepare(shape, s, true)
  return Effect.flatMap(
    engine.run({
      tasks: prepared.tasks,
      concurrency: s.concurrency,
      deadline: s.deadline,
      detach: s.detach,
      onExit: failed
    }),
    (report): Effect.Effect<any, any> => {
      if (report.stop === undefined) {
        const values = new Array(shape.effects.length)
        for (let i = 0; i < values.length; i++) values[i] = (report.exits[i] as Exit.Success<unknown, never>).value
        return Effect.succeed(rebuild(shape, values))
      }
      if (s.report) return Effect.clockWith((clock) => Effect.fail(failureReport(shape, prepared, report, clock)))
      const first: Cause.Cause<unknown> = report.stop === "Deadline"
        ? Cause.fail(
          new FanOutTimeoutError({ reason: "Deadline", key: undefined, label: undefined, duration: s.deadline! })
        )
        : (report.exits[report.stoppedBy] as Exit.Failure<unknown, unknown>).cause
      let cause = first
      for (let i = 0; i < report.exits.length; i++) {
        const exit = report.exits[i]
        if (i !== report.stoppedBy && exit !== undefined && exit._tag === "Failure" && report.cut[i]) {
          const rest = genuine(exit.cause)
          if (!Cause.isEmpty(rest)) cause = Cause.parallel(cause, rest)
        }
      }
      return Effect.failCause(cause)
    }
  )
}

const failureReport = (
  shape: Shape,
  prepared: Prepared,
  report: engine.Report,
  clock: { readonly unsafeCurrentTimeMillis: () => number }
): FanOutFailure<unknown> => {
  const outcomes = outcomesOf(shape, prepared, report, clock.unsafeCurrentTimeMillis())
  // Tasks the fan-out interrupted are Interrupted, not TimedOut, in fail-fast: the deadline is the fan-out's failure.
  if (report.stop === "Deadline") {
    for (let i = 0; i < outcomes.length; i++) {
      const o = outcomes[i]!
      if (o._tag === "TimedOut" && o.reason === "Deadline") outcomes[i] = { ...o, _tag: "Interrupted" } as any
    }
  }
  const order = outcomes
    .map((o, i) => ({ o, i }))
    .filter(({ i, o }) => o._tag !== "Success" && (o._tag !== "Interrupted" || i === report.stoppedBy))
    .sort((a, b) =>
      a.i === report.stoppedBy ? -1 : b.i === report.stoppedBy ? 1 : report.endedAt[a.i]! - report.endedAt[b.i]!
    )
  const failures = order.map(({ o }) => o as Outcome.NotSuccess<unknown>)
  if (report.stop === "Deadline") {
    return new FanOutFailure({
      reason: "Deadline",
      key: undefined,
      label: undefined,
      error: undefined,
      failures,
      outcomes
    })
  }
  const first = outcomes[report.stoppedBy]!
  const reason = first._tag === "Failure" ? "Failure" : first._tag === "Defect" ? "Defect" : first._tag === "TimedOut"
    ? "Timeout" :
    "Interrupted"
  return new FanOutFailure({
    reason,
    key: first.key,
    label: first.label,
    error: first._tag === "Failure" ? first.error : undefined,
    failures,
    outcomes
  })
}
