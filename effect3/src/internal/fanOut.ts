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
import * as FiberRef from "effect/FiberRef"
import * as Predicate from "effect/Predicate"
import * as Schedule from "effect/Schedule"
import { FanOutFailure, FanOutTimeoutError, InvalidOptionError } from "../FanOutError.js"
import type * as Outcome from "../Outcome.js"
import { Spawner } from "./attempts.js"
import * as batched from "./batching.js"
import * as engine from "./engine.js"
import * as hedge from "./hedge.js"
import * as observe from "./observe.js"
import * as options from "./options.js"
import * as stack from "./stack.js"
import * as timeLimit from "./timeLimit.js"

type AnyEffect = Effect.Effect<any, any, any>

// ---------------------------------------------------------------------------------------------------------------
// labels

/**
 * The label of each labeled task, or why `labeled` was misused (a non-Effect, a label that is not a string): a
 * fan-out reports that before anything runs, as it does a non-Effect task, rather than as that task's defect.
 */
const labels = new WeakMap<object, string | InvalidOptionError>()

/** @internal */
export const labeled = <A, E, R>(effect: Effect.Effect<A, E, R>, label: string): Effect.Effect<A, E, R> => {
  const invalid = typeof label !== "string"
    ? new InvalidOptionError({ option: "label", reason: `must be a string, got ${options.show(label)}` })
    : !Effect.isEffect(effect)
    ? notAnEffect("tasks", `labeled(${JSON.stringify(label)}) was given a non-Effect`, effect)
    : undefined
  if (invalid !== undefined) {
    const misused = Effect.die(invalid)
    labels.set(misused, invalid)
    return misused
  }
  // A fresh effect, so that one effect value used twice can carry two labels.
  const wrapped = Effect.suspend(() => effect)
  labels.set(wrapped, label)
  return wrapped
}

/** The label `labeled` gave `effect`, if any; throws what was wrong when `labeled` was misused. */
const labelOf = (effect: object): string | undefined => {
  const label = labels.get(effect)
  if (typeof label === "object") throw label
  return label
}

// ---------------------------------------------------------------------------------------------------------------
// shapes

/** @internal */
export interface Shape {
  readonly struct: boolean
  /** One per task: its struct key or index. */
  readonly keys: Array<Outcome.Key>
  /**
   * Task `index`: an Effect, or with `callbacks` one of the engine's callback tasks. Asked for once, when the task
   * starts (`forEach` makes its tasks then).
   */
  readonly task: (index: number) => engine.Task
  /** Known up front, except the labels `forEach`'s tasks carry (`labeled`), which are filled in as they start. */
  readonly labels: Array<string | undefined>
  /** The tasks are `engine.CallbackTask`s (the Promise facade): they run as they are, never wrapped by `prepare`. */
  readonly callbacks?: true
}

/** The options each combinator takes, by its name. */
const common = ["concurrency", "batching", "timeout", "deadline", "retry", "hedge", "name", "taskSpans"] as const
const optionsOf = {
  "FanOut.all": [...common, "report", "detach", "discard"],
  "FanOut.forEach": [...common, "report", "detach", "discard", "label"],
  "FanOut.settle": [...common, "required", "report"],
  "FanOut.settleForEach": [...common, "required", "report", "label"],
  "FanOut.quorum": common,
  "FanOut.firstSuccess": common,
  "FanOut.stream": common
} as const

/** @internal */
export type Combinator = keyof typeof optionsOf

/** For options of `Effect.all` that a fan-out has no use for: what to use instead. */
const hints: Readonly<Record<string, string>> = {
  mode: `: for Effect.all's mode "either" or "validate" (every result, failures included), use FanOut.settle`
}

const optionNames: ReadonlySet<string> = new Set(Object.values(optionsOf).flat())

/**
 * Whether the first argument of a dual combinator is its tasks (data-first) rather than its options (data-last).
 * Options never hold effects, and only hold option names: a record with an effect, with none at all (the empty
 * struct) or with a key that is not an option name is tasks, and so is anything that is neither a record nor
 * `undefined`, so that bad input is reported as bad tasks rather than taken for options.
 *
 * @internal
 */
export const isTasks = (u: unknown): boolean => {
  if (u === undefined) return false
  if (!Predicate.isRecord(u)) return true
  const keys = Object.keys(u)
  return keys.length === 0 || keys.some((key) => Effect.isEffect(u[key]) || !optionNames.has(key))
}

const notAnEffect = (option: string, what: string, value: unknown) =>
  new InvalidOptionError({ option, reason: `${what}: ${options.show(value)}` })

/** @internal */
export const shapeOf = (input: unknown): Shape => {
  if (Predicate.isIterable(input) && typeof input !== "string") {
    const effects = Array.from(input as Iterable<unknown>)
    const keys: Array<number> = new Array(effects.length)
    const taskLabels: Array<string | undefined> = new Array(effects.length)
    for (let i = 0; i < effects.length; i++) {
      const effect = effects[i]
      if (!Effect.isEffect(effect)) throw notAnEffect("tasks", `entry ${i} is not an Effect`, effect)
      keys[i] = i
      taskLabels[i] = labelOf(effect)
    }
    return { struct: false, keys, task: (i) => effects[i] as AnyEffect, labels: taskLabels }
  }
  if (Predicate.isRecord(input)) {
    const keys = Object.keys(input)
    const effects: Array<AnyEffect> = new Array(keys.length)
    const taskLabels: Array<string> = new Array(keys.length)
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!
      const effect = input[key]
      if (!Effect.isEffect(effect)) throw notAnEffect("tasks", `entry ${JSON.stringify(key)} is not an Effect`, effect)
      effects[i] = effect
      taskLabels[i] = labelOf(effect) ?? key
    }
    return { struct: true, keys, task: (i) => effects[i]!, labels: taskLabels }
  }
  throw new InvalidOptionError({
    option: "tasks",
    reason: `must be a tuple, an iterable or a struct of Effects, got ${options.show(input)}`
  })
}

/**
 * An iterable-shaped fan-out of `n` callback tasks, keyed by index, all served by one `task` object (it is told which
 * one it starts).
 *
 * @internal
 */
export const shapeOfCallbacks = (n: number, task: engine.CallbackTask): Shape => {
  const keys: Array<number> = new Array(n)
  for (let i = 0; i < n; i++) keys[i] = i
  return { struct: false, keys, task: () => task, labels: new Array(n).fill(undefined), callbacks: true }
}

/**
 * The shape of `forEach(items, f)`. `f` is called when an item's task starts, as `Effect.forEach` and p-map do: an item
 * that never starts (a fail-fast fan-out stopped first) never calls it, and the tasks not started yet cost nothing. A
 * throw inside `f`, or a non-Effect returned by it, ends that item's task as a defect.
 *
 * @internal
 */
export const shapeOfForEach = <X>(
  items: Iterable<X>,
  f: (item: X, index: number) => AnyEffect,
  label: ((item: X, index: number) => string) | undefined
): Shape => {
  if (!Predicate.isIterable(items) && typeof items !== "string") {
    throw new InvalidOptionError({ option: "items", reason: `must be an iterable, got ${options.show(items)}` })
  }
  if (!Predicate.isFunction(f)) {
    throw new InvalidOptionError({ option: "f", reason: `must be a function, got ${options.show(f)}` })
  }
  if (label !== undefined && !Predicate.isFunction(label)) {
    throw new InvalidOptionError({ option: "label", reason: `must be a function, got ${options.show(label)}` })
  }
  const list = Array.from(items)
  const keys: Array<number> = new Array(list.length)
  const taskLabels: Array<string | undefined> = new Array(list.length)
  for (let i = 0; i < list.length; i++) {
    keys[i] = i
    if (label !== undefined) {
      const name: unknown = label(list[i]!, i)
      if (typeof name !== "string") {
        throw new InvalidOptionError({
          option: "label",
          reason: `must return a string, returned ${options.show(name)} for item ${i}`
        })
      }
      taskLabels[i] = name
    }
  }
  const task = (i: number): AnyEffect => {
    let effect: unknown
    try {
      effect = f(list[i]!, i)
    } catch (defect) {
      return Effect.die(defect)
    }
    if (!Effect.isEffect(effect)) return Effect.die(notAnEffect("f", `returned a non-Effect for item ${i}`, effect))
    // A misused `labeled` returned here dies as this item's task, as a non-Effect does; it has no label to show.
    const own = label === undefined ? labels.get(effect) : undefined
    if (typeof own === "string") taskLabels[i] = own
    return effect
  }
  return { struct: false, keys, task, labels: taskLabels }
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
  /** `Infinity` for unbounded; `"inherit"` is resolved when the fan-out runs. */
  readonly concurrency: number | "inherit"
  /** `"inherit"` is resolved when the fan-out runs. */
  readonly batching: boolean | "inherit"
  readonly timeout: Duration.Duration | undefined
  readonly deadline: Duration.Duration | undefined
  readonly retry: Schedule.Schedule<any, any, any> | undefined
  readonly detach: boolean
  readonly discard: boolean
  readonly report: boolean
  readonly name: string | undefined
  readonly taskSpans: boolean | undefined
  readonly hedge: hedge.Hedge | undefined
}

/**
 * Reads and checks the options of `combinator` (an option it does not take, such as a misspelled one, is an
 * `InvalidOptionError` rather than ignored); without one, only the options' values are checked.
 *
 * @internal
 */
export const settings = (raw: unknown, combinator?: Combinator): Settings => {
  if (raw !== undefined && !Predicate.isRecord(raw)) {
    throw new InvalidOptionError({ option: "options", reason: `must be an object, got ${options.show(raw)}` })
  }
  const o = (raw ?? {}) as Record<string, unknown>
  if (combinator !== undefined) {
    const known: ReadonlyArray<string> = optionsOf[combinator]
    for (const key of Object.keys(o)) {
      if (o[key] !== undefined && !known.includes(key)) {
        throw new InvalidOptionError({
          option: key,
          reason: `is not an option of ${combinator} (its options: ${known.join(", ")})${hints[key] ?? ""}`
        })
      }
    }
  }
  const retry = o.retry
  if (retry !== undefined && !Schedule.isSchedule(retry)) {
    throw new InvalidOptionError({ option: "retry", reason: `must be a Schedule, got ${options.show(retry)}` })
  }
  return {
    concurrency: options.concurrency(o.concurrency),
    batching: options.batching(o.batching),
    timeout: options.duration(o.timeout, "timeout"),
    deadline: options.duration(o.deadline, "deadline"),
    retry: retry as Schedule.Schedule<any, any, any> | undefined,
    detach: options.boolean(o.detach, "detach"),
    discard: options.boolean(o.discard, "discard"),
    report: options.boolean(o.report, "report"),
    name: options.name(o.name),
    taskSpans: o.taskSpans === undefined ? undefined : options.boolean(o.taskSpans, "taskSpans"),
    hedge: o.hedge === undefined ? undefined : hedge.settings(o.hedge, "hedge")
  }
}

// ---------------------------------------------------------------------------------------------------------------
// preparing tasks

/** @internal */
export interface Prepared {
  /** Task `index` as the engine runs it; asked for once, when it starts. */
  readonly task: (index: number) => engine.Task
  /** Tries per task; only counted with retries or hedging (otherwise 1 for every task that started). */
  readonly attempts: Array<number> | undefined
  /**
   * The time-out errors this fan-out made for its tasks' `timeout`: a task's own time-out is told by identity from
   * an equal-looking one of a fan-out nested inside the task, which stays that task's `Failure`.
   */
  readonly timeouts: WeakSet<object> | undefined
  /** The tasks' time limit, when the engine applies it (see `engine.Plan`). */
  readonly timeLimit: engine.TimeLimit | undefined
  /** Stops the timers of the time limits and of hedging, once the fan-out has ended. */
  readonly close: Effect.Effect<void> | undefined
}

/**
 * How a task's failure reads as an outcome, by one rule for outcomes, task spans and counts alike: a typed failure
 * wins over a defect, a defect over an interruption; a failure that is this task's own time-out is `TimedOut` (a
 * time-out error of a fan-out nested inside the task stays a `Failure`). Inside a span Effect wraps failure and
 * defect objects; `error` and `defect` are the objects the task failed with (`Cause.originalError`).
 */
type Classified =
  | { readonly _tag: "Failure"; readonly error: unknown; readonly cause: Cause.Cause<unknown> }
  | { readonly _tag: "Defect"; readonly defect: unknown; readonly cause: Cause.Cause<unknown> }
  | { readonly _tag: "TimedOut" }
  | { readonly _tag: "Interrupted" }

const timedOut = { _tag: "TimedOut" } as const
const interrupted = { _tag: "Interrupted" } as const

/**
 * Whether a cause holds interruptions only: the common case of a sibling the fan-out stopped, checked by a plain walk
 * (`Cause.isInterruptedOnly` costs ~1 µs a cause here, a thousand siblings a millisecond).
 */
const interruptedOnly = (cause: Cause.Cause<unknown>): boolean => {
  switch (cause._tag) {
    case "Empty":
    case "Interrupt":
      return true
    case "Sequential":
    case "Parallel":
      return interruptedOnly(cause.left) && interruptedOnly(cause.right)
    default:
      return false
  }
}

const classifyFailure = (
  cause: Cause.Cause<unknown>,
  prepared: Prepared
): Classified => {
  if (interruptedOnly(cause)) return interrupted
  const failure = Cause.failureOption(cause)
  if (failure._tag === "Some") {
    const error = Cause.originalError(failure.value)
    if (prepared.timeouts !== undefined && Predicate.isObject(error) && prepared.timeouts.has(error)) return timedOut
    return { _tag: "Failure", error, cause }
  }
  const defects = Cause.defects(cause)
  if (Chunk.isNonEmpty(defects)) {
    return { _tag: "Defect", defect: Cause.originalError(Chunk.headNonEmpty(defects)), cause }
  }
  return interrupted
}

/**
 * Each task as the engine runs it: wrapped, when it starts, in its time limit, hedging, retries and span.
 *
 * @internal
 */
export const prepare = (
  shape: Shape,
  s: Settings,
  taskSpans: boolean,
  batching: boolean,
  report: engine.Report
): Prepared => {
  // Callback tasks keep their own time limits and have no Effect to wrap: they run as they are.
  if (shape.callbacks || (s.timeout === undefined && s.retry === undefined && s.hedge === undefined && !taskSpans)) {
    return { task: shape.task, attempts: undefined, timeouts: undefined, timeLimit: undefined, close: undefined }
  }
  const counted = s.retry !== undefined || s.hedge !== undefined
  const attempts: Array<number> | undefined = counted ? new Array(shape.keys.length).fill(0) : undefined
  const timeouts = s.timeout !== undefined ? new WeakSet<object>() : undefined
  const spawner = s.timeout !== undefined || s.hedge !== undefined ? new Spawner() : undefined
  const limits = s.timeout !== undefined ? timeLimit.make(s.timeout, spawner!) : undefined
  const hedging = s.hedge !== undefined ? hedge.hedger(s.hedge, spawner!) : undefined
  const timeoutError = (i: number): FanOutTimeoutError => {
    const error = new FanOutTimeoutError({
      reason: "Timeout",
      key: shape.keys[i],
      label: shape.labels[i],
      duration: s.timeout!
    })
    timeouts!.add(error)
    return error
  }
  // A task that is its one attempt (no retry, no hedging, no span around it) is limited by the engine itself, on its
  // worker, with no fiber of its own; a batching fan-out steps its tasks with an engine of its own, and keeps the
  // attempt's fiber.
  const onWorker = limits?.alarms !== undefined && !counted && !taskSpans && !batching
  const task = (i: number): AnyEffect => {
    let task = shape.task(i) as AnyEffect
    if (attempts !== undefined) {
      const body = task
      task = Effect.suspend(() => {
        attempts[i]!++
        return body
      })
    }
    if (limits !== undefined && !onWorker) task = limits.limit(task, () => timeoutError(i))
    if (hedging !== undefined) task = hedging.run(task)
    if (s.retry !== undefined) task = Effect.retry(task, s.retry)
    if (taskSpans) {
      const name = shape.labels[i] ?? String(shape.keys[i])
      const tries = attempts !== undefined ? () => attempts[i]! : () => 1
      const key = shape.keys[i]!
      // Read as the task ends, before the engine records it: a task the fan-out cut off is marked as its outcome will
      // be (`TimedOut` at the deadline), not by the interruption that ended it.
      const tag = (exit: Exit.Exit<unknown, unknown>) =>
        exit._tag === "Success" ? "Success" : failureTag(exit.cause, prepared, report, i)
      task = observe.taskSpan(task, name, key, tries, tag)
    }
    return task
  }
  const closes = [limits?.close, hedging?.close].filter((close) => close !== undefined)
  const close = closes.length === 0 ? undefined : Effect.all(closes, { discard: true })
  const prepared: Prepared = {
    task,
    attempts,
    timeouts,
    timeLimit: onWorker ? { alarms: limits!.alarms!, error: timeoutError } : undefined,
    close
  }
  return prepared
}

// ---------------------------------------------------------------------------------------------------------------
// running, observed

/** @internal */
export interface Run {
  /** The fan-out's kind: `all`, `settle`, `quorum`, `stream`. */
  readonly mode: string
  readonly shape: Shape
  readonly settings: Settings
  /** Fail fast: time-outs are `FanOutTimeoutError`s naming the task, and `detach` applies. */
  readonly failFast: boolean
  /** The stopping policy; it may also read the report so far (start and end times of the tasks that ended). */
  readonly onExit: (
    index: number,
    cause: Cause.Cause<unknown> | undefined,
    report: engine.Report,
    prepared: Prepared
  ) => boolean
}

/** @internal */
export interface Finished {
  readonly report: engine.Report
  readonly prepared: Prepared
  /** The fan-out's clock reading when it ended. */
  readonly now: number
}

/**
 * Runs a fan-out inside its span, then lets `finish` read the report. The span's counts by outcome and the metrics
 * come from the outcomes `finish` built, when it built them all, else from the report by the same rules
 * (`tagOf`), without making outcome objects. A fan-out interrupted from outside (the caller, or a stream ended early)
 * is counted too, once its tasks have stopped: those it cut off as `Interrupted`.
 *
 * @internal
 */
export const runObserved = <X, E, R>(
  run: Run,
  finish: (finished: Finished) => readonly [Effect.Effect<X, E, R>, ReadonlyArray<Outcome.Outcome<unknown, unknown>>?]
): Effect.Effect<X, E, R> => {
  const name = run.settings.name ?? `fanout.${run.mode}`
  const { shape, settings } = run
  const n = shape.keys.length
  return Effect.flatMap(
    observe.wantsTaskSpans(settings.taskSpans),
    (taskSpans) =>
      inherited(settings, (concurrency, batching) =>
        Effect.useSpan(name, {
          attributes: spanAttributes(run.mode, n, concurrency, batching),
          captureStackTrace: false
        }, (span) => {
          const report = engine.makeReport(n)
          // Callback tasks (the Promise facade) make no requests.
          const batchingOn = batching && !shape.callbacks
          const prepared = prepare(shape, settings, taskSpans, batchingOn, report)
          let recorded = false
          const record = (now: number, tagAt: (index: number) => Outcome.Outcome<unknown, unknown>["_tag"]) => {
            recorded = true
            return observe.record(name, span, n, tagAt, (i) => durationOf(report, i, now))
          }
          const running = (batchingOn ? batched.run : engine.run)({
            size: n,
            task: prepared.task,
            callbacks: shape.callbacks,
            concurrency,
            deadline: settings.deadline,
            timeLimit: prepared.timeLimit,
            detach: run.failFast && settings.detach,
            discard: settings.discard,
            onExit: (index, cause, report) => run.onExit(index, cause, report, prepared)
          }, report)
          return Effect.onInterrupt(
            Effect.flatMap(
              Effect.withParentSpan(
                prepared.close === undefined ? running : Effect.ensuring(running, prepared.close),
                span
              ),
              () =>
                Effect.clockWith((clock) => {
                  const now = clock.unsafeCurrentTimeMillis()
                  const [result, outcomes] = finish({ report, prepared, now })
                  const tagAt = outcomes !== undefined
                    ? (i: number) => outcomes[i]!._tag
                    : (i: number) => tagOf(report, prepared, i)
                  return Effect.zipRight(record(now, tagAt), result)
                })
            ),
            () =>
              recorded
                ? Effect.void
                : Effect.clockWith((clock) =>
                  record(clock.unsafeCurrentTimeMillis(), (i) => tagOf(report, prepared, i))
                )
          )
        }))
  )
}

/** The fan-out span's attributes when it starts; `fanout.batching` only when batching is on. */
const spanAttributes = (mode: string, n: number, concurrency: number, batching: boolean): Record<string, unknown> => {
  const attributes: Record<string, unknown> = {
    "fanout.mode": mode,
    "fanout.tasks": n,
    "fanout.concurrency": concurrency === Infinity ? "unbounded" : concurrency
  }
  if (batching) attributes["fanout.batching"] = true
  return attributes
}

/**
 * The caller's `Effect.withConcurrency` as a bound. Effect takes any number there; a bound of 0, a negative or a
 * fractional one would start no task, or a number of tasks nobody asked for, so it fails as the option would.
 */
const inheritedBound = (bound: number | "unbounded"): number => {
  if (bound === "unbounded" || bound === Infinity) return Infinity
  if (!Number.isInteger(bound) || bound < 1) {
    throw new InvalidOptionError({
      option: "concurrency",
      reason: `is "inherit", and the caller's Effect.withConcurrency is ${options.show(bound)}, not a positive integer`
    })
  }
  return bound
}

/**
 * Runs `f` with the bound and whether to batch requests: as given, or with `"inherit"` the caller's
 * `Effect.withConcurrency` and `Effect.withRequestBatching` settings.
 */
const inherited = <X, E, R>(
  s: Settings,
  f: (concurrency: number, batching: boolean) => Effect.Effect<X, E, R>
): Effect.Effect<X, E, R> =>
  s.concurrency !== "inherit" && s.batching !== "inherit"
    ? f(s.concurrency, s.batching)
    : Effect.withFiberRuntime((fiber) => {
      const bound = fiber.getFiberRef(FiberRef.currentConcurrency)
      return f(
        s.concurrency !== "inherit" ? s.concurrency : inheritedBound(bound),
        s.batching !== "inherit" ? s.batching : fiber.getFiberRef(FiberRef.currentRequestBatchingEnabled)
      )
    })

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
  const status = report.status[index]
  const started = !Number.isNaN(report.startedAt[index]!)
  // The common fields are written out in each literal (no spread of a shared object): this runs once per task.
  const key = shape.keys[index]!
  const label = shape.labels[index]
  const durationMillis = started ? durationOf(report, index, now) : 0
  const attempts = prepared.attempts !== undefined ? prepared.attempts[index]! : started ? 1 : 0
  if (status === engine.Pending) return cutOff(report, key, label, durationMillis, attempts)
  if (status === engine.Succeeded) {
    return { _tag: "Success", value: report.results[index], key, label, durationMillis, attempts }
  }
  const classified = classifyFailure(report.results[index] as Cause.Cause<unknown>, prepared)
  switch (classified._tag) {
    case "Failure":
      return { _tag: "Failure", error: classified.error, cause: classified.cause, key, label, durationMillis, attempts }
    case "Defect":
      return {
        _tag: "Defect",
        defect: classified.defect,
        cause: classified.cause as Cause.Cause<never>,
        stack: stack.ofDefect(classified.defect),
        key,
        label,
        durationMillis,
        attempts
      }
    case "TimedOut":
      return { _tag: "TimedOut", reason: "Timeout", key, label, durationMillis, attempts }
    case "Interrupted":
      return report.cut[index]
        ? cutOff(report, key, label, durationMillis, attempts)
        : { _tag: "Interrupted", key, label, durationMillis, attempts }
  }
}

/**
 * How long task `index` ran: until it ended, or until `now` when the fan-out cut it off while it ran; `NaN` when it
 * never started.
 *
 * @internal
 */
export const durationOf = (report: engine.Report, index: number, now: number): number => {
  const startedAt = report.startedAt[index]!
  const ended = report.status[index] !== engine.Pending ? report.endedAt[index]! : report.cut[index] ? now : startedAt
  return Math.max(0, ended - startedAt)
}

/**
 * The tag of task `index`'s outcome, by the rules of `outcomeOf`, without making the outcome.
 *
 * @internal
 */
export const tagOf = (
  report: engine.Report,
  prepared: Prepared,
  index: number
): Outcome.Outcome<unknown, unknown>["_tag"] => {
  const status = report.status[index]
  if (status === engine.Succeeded) return "Success"
  if (status === engine.Pending) return cutOffTag(report)
  return failureTag(report.results[index] as Cause.Cause<unknown>, prepared, report, index)
}

/** The outcome tag of task `index` that failed with `cause`: a task the fan-out cut off reads as cut off. */
const failureTag = (
  cause: Cause.Cause<unknown>,
  prepared: Prepared,
  report: engine.Report,
  index: number
): Outcome.Outcome<unknown, unknown>["_tag"] => {
  const tag = classifyFailure(cause, prepared)._tag
  return tag === "Interrupted" && report.cut[index] ? cutOffTag(report) : tag
}

const cutOffTag = (report: engine.Report): "TimedOut" | "Interrupted" =>
  report.stop === "Deadline" ? "TimedOut" : "Interrupted"

/** A task the fan-out cut off (running or not started when it stopped): timed out at a deadline, else interrupted. */
const cutOff = (
  report: engine.Report,
  key: Outcome.Key,
  label: string | undefined,
  durationMillis: number,
  attempts: number
): Outcome.Outcome<unknown, unknown> =>
  report.stop === "Deadline"
    ? { _tag: "TimedOut", reason: "Deadline", key, label, durationMillis, attempts }
    : { _tag: "Interrupted", key, label, durationMillis, attempts }

/** @internal */
export const outcomesOf = (
  shape: Shape,
  prepared: Prepared,
  report: engine.Report,
  now: number
): Array<Outcome.Outcome<unknown, unknown>> => {
  const out = new Array(shape.keys.length)
  for (let i = 0; i < out.length; i++) out[i] = outcomeOf(shape, prepared, report, i, now)
  return out
}

// ---------------------------------------------------------------------------------------------------------------
// settle

const never = () => false

/** @internal */
export const requiredIndices = (shape: Shape, required: unknown): ReadonlySet<number> | undefined => {
  if (required === undefined) return undefined
  if (!Array.isArray(required)) {
    throw new InvalidOptionError({
      option: "required",
      reason: `must be an array of task keys, got ${options.show(required)}`
    })
  }
  const indices = new Set<number>()
  for (const key of required) {
    const index = shape.keys.indexOf(shape.struct ? String(key) : (key as number))
    if (index < 0 || (shape.struct && typeof key !== "string") || (!shape.struct && typeof key !== "number")) {
      throw new InvalidOptionError({
        option: "required",
        reason: `names ${options.show(key)}, which is not a key of the tasks (${
          shape.keys.map(options.show).join(", ")
        })`
      })
    }
    indices.add(index)
  }
  return indices
}

/** @internal */
export const settle = (shape: Shape, s: Settings, rawRequired?: unknown): Effect.Effect<any, any> => {
  if (s.report && rawRequired === undefined) {
    throw new InvalidOptionError({
      option: "report",
      reason:
        "applies to settle only with `required`: without required tasks settle cannot fail, so it has nothing to report"
    })
  }
  const required = requiredIndices(shape, rawRequired)
  const onExit = required === undefined || required.size === 0
    ? never
    : (index: number, cause: Cause.Cause<unknown> | undefined) => cause !== undefined && required.has(index)
  return runObserved({ mode: "settle", shape, settings: s, failFast: false, onExit }, (finished) => {
    const outcomes = outcomesOf(shape, finished.prepared, finished.report, finished.now)
    const report = finished.report
    if (required !== undefined) {
      const failedRequired = report.stop === "Policy"
        ? report.stoppedBy
        : report.stop === "Deadline"
        ? [...required].find((i) => outcomes[i]!._tag !== "Success") ?? -1
        : -1
      if (failedRequired >= 0) return [requiredFailure(s, report, failedRequired, outcomes), outcomes]
    }
    return [Effect.succeed(rebuild(shape, outcomes)), outcomes]
  })
}

/**
 * The whole fan-out fails with what the required task did: its own error, its defect, or a time-out naming it
 * (even at the deadline, so the caller knows which required task was missing). With `report: true`, a
 * `FanOutFailure` naming the task instead.
 */
const requiredFailure = (
  s: Settings,
  report: engine.Report,
  index: number,
  outcomes: Array<Outcome.Outcome<unknown, unknown>>
): Effect.Effect<never, unknown> => {
  const outcome = outcomes[index]!
  if (s.report) return Effect.fail(failureReport(report, outcomes, index, false))
  switch (outcome._tag) {
    case "Failure":
      return Effect.failCause(outcome.cause)
    case "Defect":
      return Effect.failCause(outcome.cause)
    case "TimedOut":
      return Effect.fail(
        new FanOutTimeoutError({
          reason: outcome.reason,
          key: outcome.key,
          label: outcome.label,
          duration: outcome.reason === "Deadline" ? s.deadline! : s.timeout!
        })
      )
    case "Interrupted":
    case "Success":
      return Effect.interrupt
  }
}

// ---------------------------------------------------------------------------------------------------------------
// fail fast

const failed = (_: number, cause: Cause.Cause<unknown> | undefined) => cause !== undefined

/** What is left of a cause once the fan-out's own interruption of the task is taken out. */
const genuine = (cause: Cause.Cause<unknown>): Cause.Cause<unknown> => {
  if (interruptedOnly(cause)) return Cause.empty
  let out: Cause.Cause<unknown> = Cause.empty
  for (const error of Cause.failures(cause)) out = Cause.parallel(out, Cause.fail(error))
  for (const defect of Cause.defects(cause)) out = Cause.parallel(out, Cause.die(defect))
  return out
}

/** @internal */
export const all = (shape: Shape, s: Settings): Effect.Effect<any, any> =>
  runObserved({ mode: "all", shape, settings: s, failFast: true, onExit: failed }, (finished) => {
    const { prepared, report } = finished
    // Every task succeeded: the results are the values, in order (the report is this run's own).
    if (report.stop === undefined) return [s.discard ? Effect.void : Effect.succeed(rebuild(shape, report.results))]
    if (s.report) {
      const outcomes = outcomesOf(shape, prepared, report, finished.now)
      return [Effect.fail(failureReport(report, outcomes, report.stoppedBy, true)), outcomes]
    }
    // No outcome objects on this path (the span and the metrics read the report): the caller waits for it.
    const first: Cause.Cause<unknown> = report.stop === "Deadline"
      ? Cause.fail(
        new FanOutTimeoutError({ reason: "Deadline", key: undefined, label: undefined, duration: s.deadline! })
      )
      : report.results[report.stoppedBy] as Cause.Cause<unknown>
    let cause = first
    for (let i = 0; i < report.status.length; i++) {
      if (i !== report.stoppedBy && report.status[i] === engine.Failed && report.cut[i]) {
        const rest = genuine(report.results[i] as Cause.Cause<unknown>)
        if (!Cause.isEmpty(rest)) cause = Cause.parallel(cause, rest)
      }
    }
    return [Effect.failCause(cause)]
  })

/**
 * The `FanOutFailure` of a stopped fan-out: the task at `culprit` first (-1: the deadline itself), then every other
 * genuine failure in the order the tasks ended.
 */
const failureReport = (
  report: engine.Report,
  outcomes: Array<Outcome.Outcome<unknown, unknown>>,
  culprit: number,
  failFast: boolean
): FanOutFailure<unknown> => {
  // Fail fast: tasks the fan-out interrupted at its deadline are Interrupted in the report, since the deadline is the
  // fan-out's one failure. (The span and the metrics, read from the engine's report, say TimedOut for them.) Settle
  // with `required` keeps them TimedOut, as its outcomes are everywhere else: each one is a panel that did not come.
  if (failFast && report.stop === "Deadline") {
    outcomes = outcomes.map((o, i) =>
      i !== culprit && o._tag === "TimedOut" && o.reason === "Deadline"
        ? { _tag: "Interrupted", key: o.key, label: o.label, durationMillis: o.durationMillis, attempts: o.attempts }
        : o
    )
  }
  const failures = outcomes
    .map((o, i) => ({ o, i }))
    .filter(({ i, o }) => o._tag !== "Success" && (o._tag !== "Interrupted" || i === culprit))
    .sort((a, b) => a.i === culprit ? -1 : b.i === culprit ? 1 : report.endedAt[a.i]! - report.endedAt[b.i]!)
    .map(({ o }) => o as Outcome.NotSuccess<unknown>)
  if (culprit < 0) {
    return new FanOutFailure({
      reason: "Deadline",
      key: undefined,
      label: undefined,
      error: undefined,
      failures,
      outcomes
    })
  }
  const first = outcomes[culprit]!
  const reason = first._tag === "Failure"
    ? "Failure"
    : first._tag === "Defect"
    ? "Defect"
    : first._tag === "TimedOut"
    ? (first.reason === "Deadline" ? "Deadline" : "Timeout")
    : "Interrupted"
  return new FanOutFailure({
    reason,
    key: first.key,
    label: first.label,
    error: first._tag === "Failure" ? first.error : undefined,
    failures,
    outcomes
  })
}
