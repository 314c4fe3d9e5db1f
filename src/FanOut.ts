/**
 * Structured concurrent fan-out: run many effects at once and either **fail fast** (`all`, `forEach`: the first
 * failure interrupts the rest) or **settle** (`settle`, `settleForEach`: wait for all, one typed `Outcome` per task).
 *
 * Tasks come the way `Effect.all` takes them — a tuple, a struct or an iterable of effects — and results come back
 * in the same shape with the same static types. Every combinator has a data-first and a data-last form.
 *
 * Guarantees, each covered by a test: results are in input order and shape; no fiber started by a fan-out outlives
 * it; the finalizers of interrupted tasks run exactly once, before the fan-out returns (unless `detach` says
 * otherwise); in settle mode a crash in one task never loses another task's result; an empty input succeeds at once
 * with the empty shape; an invalid option is reported at once with an `InvalidOptionError` naming it.
 *
 * Context: tasks run on fibers of their own that start with the caller's context — services, references, log
 * annotations, the current span (spans opened inside a task are children of the span around the fan-out), the
 * clock and the scheduler. What a task changes there stays in that task.
 *
 * Cost: one fiber per task, started on Effect 4's runtime through its public API as `Effect.all` starts its own (a
 * task that is already an `Exit`, such as `Effect.succeed`, makes none), plus the record of each task's outcome,
 * which costs more than `Effect.all` spends on a task that ends at once (see `docs/BENCHMARKS.md`).
 *
 * Requests (`Effect.request`): concurrent tasks' requests are batched by their `RequestResolver`'s own window, as
 * with `Effect.all`; no option is needed.
 *
 * @since 1.0.0
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import type * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import type * as Budget from "./Budget.js"
import type { FanOutFailure, FanOutTimeoutError, QuorumError } from "./FanOutError.js"
import type * as Hedge from "./Hedge.js"
import * as failFast from "./internal/failFast.js"
import * as internalHedge from "./internal/hedge.js"
import * as observe from "./internal/observe.js"
import { settings } from "./internal/options.js"
import * as internalQuorum from "./internal/quorum.js"
import * as internalSettle from "./internal/settle.js"
import * as internal from "./internal/shape.js"
import * as internalStream from "./internal/stream.js"
import type * as Outcome from "./Outcome.js"

export {
  /**
   * @since 1.0.0
   * @category errors
   */
  FanOutFailure,
  /**
   * @since 1.0.0
   * @category errors
   */
  FanOutTimeoutError,
  /**
   * @since 1.0.0
   * @category errors
   */
  InvalidOptionError,
  /**
   * @since 1.0.0
   * @category errors
   */
  QuorumError
} from "./FanOutError.js"

// ---------------------------------------------------------------------------------------------------------------
// models

type AnyEffect = Effect.Effect<any, any, any>
type SuccessOf<X> = X extends Effect.Effect<infer A, infer _E, infer _R> ? A : never
type ErrorOfEffect<X> = X extends Effect.Effect<infer _A, infer E, infer _R> ? E : never
type ContextOfEffect<X> = X extends Effect.Effect<infer _A, infer _E, infer R> ? R : never

/**
 * What a fan-out takes: a tuple, an iterable or a struct of effects.
 *
 * @since 1.0.0
 * @category models
 */
export type Tasks = Iterable<AnyEffect> | { readonly [key: string]: AnyEffect }

/**
 * The success of `all` over `T`: a tuple stays a tuple, a struct keeps its keys, an iterable gives an array.
 *
 * @since 1.0.0
 * @category models
 */
export type Results<T extends Tasks> = [T] extends [ReadonlyArray<AnyEffect>] ?
  { -readonly [K in keyof T]: SuccessOf<T[K]> }
  : [T] extends [Iterable<infer X>] ? Array<SuccessOf<X>>
  : { -readonly [K in keyof T]: SuccessOf<T[K]> }

/**
 * The success of `settle` over `T`: one `Outcome` per task, in the shape of `T`.
 *
 * @since 1.0.0
 * @category models
 */
export type Outcomes<T extends Tasks> = [T] extends [ReadonlyArray<AnyEffect>] ?
  { -readonly [K in keyof T]: Outcome.Outcome<SuccessOf<T[K]>, ErrorOfEffect<T[K]>> }
  : [T] extends [Iterable<infer X>] ? Array<Outcome.Outcome<SuccessOf<X>, ErrorOfEffect<X>>>
  : { -readonly [K in keyof T]: Outcome.Outcome<SuccessOf<T[K]>, ErrorOfEffect<T[K]>> }

/**
 * The union of the tasks' error types.
 *
 * @since 1.0.0
 * @category models
 */
export type ErrorOf<T extends Tasks> = [T] extends [Iterable<infer X>] ? ErrorOfEffect<X>
  : ErrorOfEffect<T[keyof T]>

/**
 * The union of the tasks' requirements.
 *
 * @since 1.0.0
 * @category models
 */
export type ContextOf<T extends Tasks> = [T] extends [Iterable<infer X>] ? ContextOfEffect<X>
  : ContextOfEffect<T[keyof T]>

/**
 * A task's key in `T`: a struct's keys, a tuple's indices, `number` for arrays and iterables. A struct's keys are
 * strings, as `Object.keys` gives them: a numeric key (`{ 0: task }`) is `"0"`.
 *
 * @since 1.0.0
 * @category models
 */
export type KeyOf<T extends Tasks> = [T] extends [ReadonlyArray<AnyEffect>] ?
  number extends T["length"] ? number : TupleIndex<T>
  : [T] extends [Iterable<any>] ? number
  : StructKey<keyof T>

type StructKey<K> = K extends string ? K : K extends number ? `${K}` : never

type TupleIndex<T extends ReadonlyArray<unknown>> = {
  [K in keyof T]: K extends `${infer N extends number}` ? N : never
}[number]

/**
 * The union of the success types of the tasks.
 *
 * @since 1.0.0
 * @category models
 */
export type SuccessUnion<T extends Tasks> = [T] extends [Iterable<infer X>] ? SuccessOf<X> : SuccessOf<T[keyof T]>

/**
 * One success of `quorum` over `T`: a task's `Success` with its key, so that narrowing on `key` gives that task's value
 * type (a struct's keys, a tuple's indices; `number` for arrays and iterables).
 *
 * @since 1.0.0
 * @category models
 */
export type QuorumSuccess<T extends Tasks> = [T] extends [ReadonlyArray<AnyEffect>] ?
  number extends T["length"] ? KeyedSuccess<SuccessUnion<T>, number>
  : { [K in TupleIndex<T>]: KeyedSuccess<SuccessOf<T[K]>, K> }[TupleIndex<T>]
  : [T] extends [Iterable<infer X>] ? KeyedSuccess<SuccessOf<X>, number>
  : ValueOf<{ [K in keyof T as StructKey<K>]: KeyedSuccess<SuccessOf<T[K]>, StructKey<K>> }>

type ValueOf<M> = M[keyof M]

type KeyedSuccess<A, K> = Outcome.Success<A> & { readonly key: K }

/**
 * The union of the outcome types of the tasks (what `stream` emits).
 *
 * @since 1.0.0
 * @category models
 */
export type OutcomeUnion<T extends Tasks> = [T] extends [Iterable<infer X>] ? OutcomeOfEffect<X>
  : OutcomeOfEffect<T[keyof T]>

type OutcomeOfEffect<X> = X extends Effect.Effect<infer A, infer E, infer _R> ? Outcome.Outcome<A, E> : never

/**
 * Option `K` of `O` when it may be set: its type without `undefined`, `never` when `O` cannot set it. An options type
 * held in a variable (`AllOptions`, `{ timeout?: number }`) may set what it declares, so it counts as set.
 */
type Setting<O, K extends PropertyKey> = K extends keyof O ? Exclude<O[K], undefined> : never

/** `FanOutTimeoutError` when `O` may set a `timeout`: what a timed-out attempt fails with, and `retry` is given. */
type AttemptTimeoutOf<O> = [Setting<O, "timeout">] extends [never] ? never : FanOutTimeoutError

/** `FanOutTimeoutError` when `O` may set a `timeout` or a `deadline`. */
type TimeoutErrorOf<O> = [Setting<O, "timeout"> | Setting<O, "deadline">] extends [never] ? never : FanOutTimeoutError

/**
 * A fan-out that fails with `E` (and its time-outs) fails with `FanOutFailure<EReport>` instead when `report` is `true`;
 * when `report` is a `boolean` not known statically, with either.
 */
type Reported<O, E, EReport> =
  | (true extends ReportSetting<O> ? FanOutFailure<EReport> : never)
  | ([Exclude<ReportSetting<O>, true>] extends [never] ? never : E | TimeoutErrorOf<O>)

type ReportSetting<O> = "report" extends keyof O ? O["report"] : undefined

/**
 * What a fail-fast fan-out with options `O` succeeds with when its results are `X`: `void` with `discard: true`;
 * either, when `discard` is a `boolean` not known statically.
 *
 * @since 1.0.0
 * @category models
 */
export type Discarded<O, X> = [DiscardSetting<O>] extends [true] ? void
  : true extends DiscardSetting<O> ? X | void
  : X

/**
 * What a fail-fast fan-out over `T` with options `O` succeeds with: the results (`Results<T>`), `void` with
 * `discard: true`, or each task's `Outcome.Success` in `T`'s shape with `outcomes: true`.
 *
 * @since 1.0.0
 * @category models
 */
export type AllSuccess<T extends Tasks, O> = [OutcomesSetting<O>] extends [true] ? SuccessOutcomes<T>
  : true extends OutcomesSetting<O> ? SuccessOutcomes<T> | Discarded<O, Results<T>>
  : Discarded<O, Results<T>>

/**
 * `forEach`'s success with options `O` over tasks succeeding with `A`.
 *
 * @since 1.0.0
 * @category models
 */
export type ForEachSuccess<A, O> = [OutcomesSetting<O>] extends [true] ? Array<Outcome.Success<A>>
  : true extends OutcomesSetting<O> ? Array<Outcome.Success<A>> | Discarded<O, Array<A>>
  : Discarded<O, Array<A>>

type OutcomesSetting<O> = "outcomes" extends keyof O ? O["outcomes"] : undefined

/**
 * Each task's `Outcome.Success`, in the shape of `T` (what `all` with `outcomes: true` succeeds with).
 *
 * @since 1.0.0
 * @category models
 */
export type SuccessOutcomes<T extends Tasks> = [T] extends [ReadonlyArray<AnyEffect>] ?
  { -readonly [K in keyof T]: Outcome.Success<SuccessOf<T[K]>> }
  : [T] extends [Iterable<infer X>] ? Array<Outcome.Success<SuccessOf<X>>>
  : { -readonly [K in keyof T]: Outcome.Success<SuccessOf<T[K]>> }

type DiscardSetting<O> = "discard" extends keyof O ? O["discard"] : undefined

/** The keys `O` may name in `required`. */
type RequiredKeys<O> = Setting<O, "required"> extends infer R ? R extends ReadonlyArray<infer K> ? K : never : never

/**
 * The error channel of `settle` with options `O`: `never`, unless `required` names tasks, whose errors (and a
 * `FanOutTimeoutError` when a `timeout` or `deadline` is set) then fail the whole fan-out; with `report: true`, a
 * `FanOutFailure` listing every task instead, so typed with every task's error.
 *
 * @since 1.0.0
 * @category models
 */
export type SettleError<T extends Tasks, O> = [RequiredKeys<O>] extends [never] ? never
  : Reported<O, RequiredErrorOf<T, RequiredKeys<O>>, ErrorOf<T>>

type RequiredErrorOf<T extends Tasks, K> = [T] extends [ReadonlyArray<AnyEffect>] ?
  number extends T["length"] ? ErrorOf<T> : ErrorOfEffect<T[K & keyof T]>
  : [T] extends [Iterable<any>] ? ErrorOf<T>
  : ErrorOfEffect<{ [P in keyof T]: StructKey<P> extends K ? T[P] : never }[keyof T]>

/**
 * The error channel of `settleForEach` whose tasks fail with `E`, given its options `O`: `never`, unless `required`
 * names items (by index), as in `settle`.
 *
 * @since 1.0.0
 * @category models
 */
export type SettleForEachError<E, O> = [RequiredKeys<O>] extends [never] ? never : Reported<O, E, E>

/**
 * `retry` checked against what its `Schedule` is given: the tasks' typed errors `E`, and a `FanOutTimeoutError` for an
 * attempt that ran out of its `timeout`, when `O` may set one. (The data-first forms check it as the options are
 * written; the data-last forms when the tasks are given, `CheckedTasks`.)
 *
 * @since 1.0.0
 * @category options
 */
export interface RetryFor<E, O> {
  readonly retry?:
    | Schedule.Schedule<any, E | AttemptTimeoutOf<O>, never>
    | undefined
  /**
   * `hedge.nonFatal` is given the tasks' typed errors, and `FanOutTimeoutError` (an attempt's own time-out, with a
   * `timeout`): unlike `retry`'s, its type cannot depend on `O`, which it is part of.
   */
  readonly hedge?:
    | (Omit<FanOutHedgeOptions, "nonFatal"> & {
      readonly nonFatal?: ((error: E | FanOutTimeoutError) => boolean) | undefined
    })
    | undefined
  readonly budget?: Options["budget"]
}

/**
 * The tasks a data-last form accepts: its options `O` were given before the tasks `T` were known, so they are checked
 * here. `required` must name keys of `T`, and `retry`'s `Schedule` must take `T`'s errors (and a
 * `FanOutTimeoutError` when a `timeout` may be set); otherwise `T` is refused, with the reason as a property name in
 * the compiler's message.
 *
 * @since 1.0.0
 * @category options
 */
export type CheckedTasks<T extends Tasks, O> =
  & T
  & ([RequiredKeys<O>] extends [KeyOf<T>] ? unknown
    : { readonly "option `required` names a key that is not a task's": RequiredKeys<O> })
  & ([ErrorOf<T> | AttemptTimeoutOf<O>] extends [RetryInput<O>] ? unknown
    : { readonly "option `retry`: its Schedule does not take the tasks' errors": ErrorOf<T> })

/** The input of `O`'s `retry` schedule; `unknown` when there is none. */
type RetryInput<O> = [Setting<O, "retry">] extends [never] ? unknown
  : Setting<O, "retry"> extends Schedule.Schedule<any, infer In, any> ? In
  : unknown

/**
 * The error channel of a fail-fast fan-out whose tasks fail with `E`, given its options `O`: the tasks' own errors
 * (plus `FanOutTimeoutError` when a `timeout` or `deadline` may be set), or a `FanOutFailure<E>` with `report: true`
 * (either, when `report` is a `boolean` not known statically).
 *
 * @since 1.0.0
 * @category models
 */
export type FailFastError<E, O> = Reported<O, E, E>

// ---------------------------------------------------------------------------------------------------------------
// options

/**
 * Options shared by every fan-out.
 *
 * @since 1.0.0
 * @category options
 */
export interface Options {
  /**
   * How many tasks run at once: a positive integer or `"unbounded"` (the default; `Infinity` says the same). With a
   * bound, no task starts after the fan-out has begun to stop.
   */
  readonly concurrency?: number | "unbounded" | undefined
  /**
   * A time limit for each attempt of each task. Settle: the task is `TimedOut`. Fail fast: the fan-out fails with a
   * `FanOutTimeoutError` naming the task. Default: none.
   */
  readonly timeout?: Duration.Input | undefined
  /**
   * A time limit for the whole fan-out. Settle: tasks still running (or not started) are interrupted and
   * `TimedOut`, finished results are kept — partial results at a deadline. Fail fast: the fan-out fails with a
   * `FanOutTimeoutError` (`reason: "Deadline"`). Default: none.
   */
  readonly deadline?: Duration.Input | undefined
  /**
   * Retries each task's typed failures (and its attempts that ran out of their `timeout`, given to the schedule as a
   * `FanOutTimeoutError` naming the task) by this `Schedule`; never a defect or an interruption. Retries stop at the
   * deadline. The outcome's `attempts` counts the tries. The schedule's input is type-checked against the tasks'
   * errors (`RetryFor`, and `CheckedTasks` in the data-last forms). Default: no retry.
   */
  readonly retry?: Schedule.Schedule<any, any, never> | undefined
  /**
   * Hedged requests for every task: when the latest attempt has not finished after `delay`, start another (and one
   * at once when an attempt fails), at most `max` attempts in all (default 2, at most 100); the first success wins and
   * the others are interrupted. Only for idempotent tasks. `delay` may be a function of each task's key and index,
   * for a delay per downstream (one `Hedge.adaptive` each). Default: none.
   */
  readonly hedge?: FanOutHedgeOptions | undefined
  /**
   * A retry and hedge budget (`Budget.make`), shared with the other fan-outs calling the same downstream, or a
   * function giving each task's by its key and index (one per downstream, `undefined` for none): every attempt's
   * failure takes a token and every success gives some back, and a retry or a hedge starts only while the budget
   * holds more than half its tokens (gRPC's retry throttling). A task the budget refused an attempt has
   * `refused: "budget"` in its outcome. Default: none.
   */
  readonly budget?: Budget.Budget | ((key: PropertyKey, index: number) => Budget.Budget | undefined) | undefined
  /** The fan-out's name: its span's name and the `fanout` tag of its metrics. Default: `"fanout.<kind>"`. */
  readonly name?: string | undefined
  /**
   * One child span per task, named by its label or key and marked with its outcome and attempts. Default: on when
   * a tracer other than Effect's built-in one is installed (an exporter is listening), off otherwise.
   */
  readonly taskSpans?: boolean | undefined
}

/**
 * Hedging settings: `delay` before a backup attempt starts, `max` attempts in all (default 2).
 *
 * @since 1.0.0
 * @category options
 */
export interface HedgeOptions<E = any> {
  /** A fixed delay, or one read from observed latency (`Hedge.adaptive`). */
  readonly delay: HedgeDelay
  readonly max?: number | undefined
  /**
   * Which typed failures of an attempt start the next one (`true`); any other failure, and any defect, ends every
   * attempt at once with that failure (gRPC's hedging `nonFatalStatusCodes`). Default: every failure starts the next.
   */
  readonly nonFatal?: ((error: E) => boolean) | undefined
}

/**
 * The delay before a backup: fixed, or read from observed latency (`Hedge.adaptive`).
 *
 * @since 1.1.0
 * @category options
 */
export type HedgeDelay = Duration.Input | Hedge.Adaptive

/**
 * A fan-out's `hedge` option: `HedgeOptions`, whose `delay` may also be a function of each task's key and index —
 * a delay per downstream, such as one `Hedge.adaptive` per service the tasks call, shared across requests as their
 * budgets are. The function is called once per task, before any task starts; a value that is no delay fails the
 * fan-out with an `InvalidOptionError`.
 *
 * @since 1.1.0
 * @category options
 */
export interface FanOutHedgeOptions<E = any> extends Omit<HedgeOptions<E>, "delay"> {
  readonly delay: HedgeDelay | ((key: PropertyKey, index: number) => HedgeDelay)
}

/**
 * Options of `all` and `forEach`.
 *
 * @since 1.0.0
 * @category options
 */
export interface AllOptions extends Options {
  /**
   * Fail with a `FanOutFailure` that names the task that failed first and lists every other failure seen while
   * the rest were being interrupted, instead of the task's own error. Default: `false`.
   */
  readonly report?: boolean | undefined
  /**
   * Return as soon as the fan-out has failed, while the other tasks' interruption (and their finalizers) finish
   * in the background. Faster to answer, but no longer structured: a finalizer may still be running when the
   * caller sees the failure. Interrupting the caller always waits. Default: `false`.
   */
  readonly detach?: boolean | undefined
  /**
   * Succeed with `void` and keep no task's value while the fan-out runs, as with `Effect.all`'s `discard`: for
   * fan-outs run for their effects (notifications, writes), where results would only hold memory. Default: `false`.
   */
  readonly discard?: boolean | undefined
  /**
   * Succeed with each task's `Outcome.Success` (its value, key, label, duration and attempts) in the tasks' shape,
   * instead of the bare values: fail fast, with the bookkeeping `settle` gives. Not with `discard`. Default: `false`.
   */
  readonly outcomes?: boolean | undefined
}

/**
 * Options of `settle` and `settleForEach`.
 *
 * @since 1.0.0
 * @category options
 */
export interface SettleOptions<K = Outcome.Key> extends Options {
  /**
   * Keys (struct keys, or tuple indices) of the tasks that must succeed: the first of them to fail, crash or time out
   * fails the whole fan-out at once with its own error (or a `FanOutTimeoutError`), interrupting the others. The
   * other tasks settle to outcomes. Type-checked against the tasks' keys, in the data-last form once the tasks are
   * given (in `settleForEach`: item indices). A struct's keys are strings, as `Object.keys` gives them: the task
   * `{ 0: task }` is required as `"0"`. A required task that interrupts itself interrupts the fan-out's caller,
   * as it would inside `Effect.all`. Default: none.
   */
  readonly required?: ReadonlyArray<K> | undefined
  /**
   * With `required`: fail with a `FanOutFailure` naming the required task that failed (key, label, reason — also for
   * a crash or the deadline) and listing every outcome, instead of the task's own error. Without `required` settle
   * cannot fail, so `report: true` there is an `InvalidOptionError`. Default: `false`.
   */
  readonly report?: boolean | undefined
}

/**
 * Extra option of the `forEach` forms: a human name for each task (shown in outcomes and errors).
 *
 * @since 1.0.0
 * @category options
 */
export interface ForEachOptions<X> {
  readonly label?: ((item: X, index: number) => string) | undefined
}

// ---------------------------------------------------------------------------------------------------------------
// labels

/**
 * Names a task. The label shows in its outcome, in `FanOutFailure` and `FanOutTimeoutError`. A struct's keys are
 * its tasks' labels unless a task is labeled.
 *
 * **Example**
 *
 * ```ts
 * import { Effect } from "effect"
 * import { FanOut } from "effect-fanout"
 *
 * const pricing = FanOut.settle([
 *   FanOut.labeled(Effect.succeed(10), "pricing-eu"),
 *   Effect.succeed(12).pipe(FanOut.labeled("pricing-us"))
 * ])
 * ```
 *
 * @since 1.0.0
 * @category labels
 */
export const labeled: {
  <A, E, R>(self: Effect.Effect<A, E, R>, label: string): Effect.Effect<A, E, R>
  (label: string): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
} = dual(2, internal.labeled)

// ---------------------------------------------------------------------------------------------------------------
// fail fast

/**
 * Runs every task concurrently and succeeds with all their results in the input's shape; the first failure — a
 * typed error or a defect — interrupts every task still running, starts no new one, waits for their finalizers and
 * fails the fan-out.
 *
 * **Details**
 *
 * The error channel is the tasks' own error union, so `Effect.catchTag` works as after `Effect.all`. The failure's
 * `Cause` holds the first failure first, then every other genuine failure seen while the rest were being interrupted
 * (never the interruptions the fan-out caused), as Effect 4's `Effect.all` combines them; a sibling's defect there (a
 * finalizer that throws) makes the whole failure a defect to Effect 4's `catch*` combinators, as a cause with a
 * defect always is. To learn which task failed, pass `report: true`:
 * the error becomes a `FanOutFailure` with the task's key and label. Interrupting the caller interrupts every task
 * and waits for them. An empty input succeeds at once with the empty shape. Data-last: `FanOut.all(options)(tasks)`
 * (`FanOut.all()` with no options), since `FanOut.all({})` is an empty struct of tasks.
 *
 * **Example**
 *
 * ```ts
 * import { Effect } from "effect"
 * import { FanOut } from "effect-fanout"
 *
 * const page = FanOut.all({
 *   profile: Effect.succeed({ name: "Ada" }),
 *   orders: Effect.succeed([1, 2, 3])
 * }, { concurrency: 8, deadline: "2 seconds" })
 * // Effect<{ profile: { name: string }; orders: number[] }, FanOutTimeoutError>
 * ```
 *
 * @since 1.0.0
 * @category fail fast
 */
export const all: {
  <const T extends Tasks, const O extends AllOptions = {}>(
    tasks: T,
    options?: O & RetryFor<ErrorOf<T>, O>
  ): Effect.Effect<AllSuccess<T, O>, FailFastError<ErrorOf<T>, O>, ContextOf<T>>
  <const O extends AllOptions = {}>(
    options?: O & RetryFor<any, O>
  ): <const T extends Tasks>(
    tasks: CheckedTasks<T, O>
  ) => Effect.Effect<AllSuccess<T, O>, FailFastError<ErrorOf<T>, O>, ContextOf<T>>
} = dual(
  (args) => internal.isTasks(args[0]),
  (tasks: Tasks, options?: AllOptions) =>
    Effect.suspend(() => failFast.all(internal.shapeOf(tasks), settings(options, "FanOut.all")))
)

/**
 * `all` over `items.map(f)`: fail fast, results in the items' order.
 *
 * **Details**
 *
 * `f` is called as each item's task starts, as with `Effect.forEach`: with a bound, an item not started when the
 * fan-out stops never calls it, and tasks waiting for a slot cost nothing. A throw inside `f`, or a non-Effect returned
 * by it, ends that item's task as a defect (`InvalidOptionError` naming `f` for a non-Effect).
 *
 * **Example**
 *
 * ```ts
 * import { Effect } from "effect"
 * import { FanOut } from "effect-fanout"
 *
 * const prices = FanOut.forEach(["eu", "us"], (region) => Effect.succeed(region.length), { concurrency: 2 })
 * // Effect<Array<number>>
 * ```
 *
 * @since 1.0.0
 * @category fail fast
 */
export const forEach: {
  <X, A, E, R, const O extends AllOptions & ForEachOptions<X> = {}>(
    items: Iterable<X>,
    f: (item: X, index: number) => Effect.Effect<A, E, R>,
    options?: O & ForEachOptions<X> & RetryFor<E, O>
  ): Effect.Effect<ForEachSuccess<A, O>, FailFastError<E, O>, R>
  <X, A, E, R, const O extends AllOptions & ForEachOptions<X> = {}>(
    f: (item: X, index: number) => Effect.Effect<A, E, R>,
    options?: O & ForEachOptions<X> & RetryFor<E, O>
  ): (items: Iterable<X>) => Effect.Effect<ForEachSuccess<A, O>, FailFastError<E, O>, R>
} = dual(
  (args) => typeof args[0] !== "function",
  (items: Iterable<any>, f: (item: any, index: number) => AnyEffect, options?: AllOptions & ForEachOptions<any>) =>
    Effect.suspend(() => {
      const s = settings(options, "FanOut.forEach")
      return failFast.all(internal.shapeOfForEach(items, f, s.label), s)
    })
)

// ---------------------------------------------------------------------------------------------------------------
// settle

/**
 * Runs every task concurrently, always waits for all of them, and succeeds with one `Outcome` per task in the
 * input's shape. It cannot fail: only the caller's own interruption stops it.
 *
 * **Details**
 *
 * A typed failure is `Failure`, a crash (a `throw`, `Effect.die`) is `Defect` with its `Cause` and a trimmed stack,
 * a task that ran out of time is `TimedOut`, an interrupted one `Interrupted`. With a `deadline`, the tasks still
 * running are interrupted at the deadline and `TimedOut`, and the finished results are kept. Data-last:
 * `FanOut.settle(options)(tasks)` (`FanOut.settle()` with no options).
 *
 * **Example**
 *
 * ```ts
 * import { Effect } from "effect"
 * import { FanOut, Outcome } from "effect-fanout"
 *
 * const panels = FanOut.settle({
 *   usage: Effect.succeed(42),
 *   billing: Effect.fail("unavailable" as const),
 *   flaky: Effect.die(new Error("bug"))
 * }, { deadline: "800 millis" })
 * // Effect<{ usage: Outcome<number>; billing: Outcome<never, "unavailable">; flaky: Outcome<never> }>
 * const shown = panels.pipe(Effect.map((p) => Outcome.successes(p).length)) // 1
 * ```
 *
 * @since 1.0.0
 * @category settle
 */
export const settle: {
  <const T extends Tasks, const O extends SettleOptions<KeyOf<T>> = {}>(
    tasks: T,
    options?: O & RetryFor<ErrorOf<T>, O>
  ): Effect.Effect<Outcomes<T>, SettleError<T, O>, ContextOf<T>>
  <const O extends SettleOptions = {}>(
    options?: O & RetryFor<any, O>
  ): <const T extends Tasks>(tasks: CheckedTasks<T, O>) => Effect.Effect<Outcomes<T>, SettleError<T, O>, ContextOf<T>>
} = dual(
  (args) => internal.isTasks(args[0]),
  (tasks: Tasks, options?: SettleOptions) =>
    Effect.suspend(() => internalSettle.settle(internal.shapeOf(tasks), settings(options, "FanOut.settle"), "settle"))
)

/**
 * `settle` over `items.map(f)`: one outcome per item, in the items' order.
 *
 * **Details**
 *
 * `f` is called as each item's task starts (see `forEach`); a throw inside it, or a non-Effect returned by it, is that
 * item's `Defect` outcome, and the other items' results are kept.
 *
 * @since 1.0.0
 * @category settle
 */
export const settleForEach: {
  <X, A, E, R, const O extends SettleOptions<number> & ForEachOptions<X> = {}>(
    items: Iterable<X>,
    f: (item: X, index: number) => Effect.Effect<A, E, R>,
    options?: O & ForEachOptions<X> & RetryFor<E, O>
  ): Effect.Effect<Array<Outcome.Outcome<A, E>>, SettleForEachError<E, O>, R>
  <X, A, E, R, const O extends SettleOptions<number> & ForEachOptions<X> = {}>(
    f: (item: X, index: number) => Effect.Effect<A, E, R>,
    options?: O & ForEachOptions<X> & RetryFor<E, O>
  ): (items: Iterable<X>) => Effect.Effect<Array<Outcome.Outcome<A, E>>, SettleForEachError<E, O>, R>
} = dual(
  (args) => typeof args[0] !== "function",
  (items: Iterable<any>, f: (item: any, index: number) => AnyEffect, options?: SettleOptions & ForEachOptions<any>) =>
    Effect.suspend(() => {
      const s = settings(options, "FanOut.settleForEach")
      return internalSettle.settle(internal.shapeOfForEach(items, f, s.label), s, "settleForEach")
    })
)

// ---------------------------------------------------------------------------------------------------------------
// quorum

/**
 * Runs every task concurrently and succeeds as soon as `n` of them have succeeded, with those successes in the
 * order they finished (each with its key, label and value; checking `key` narrows `value` to that task's type); the
 * tasks still running are interrupted and waited for. Fails as soon as `n` can no longer be reached — or at the deadline — with a `QuorumError` holding every
 * task's outcome. `n` must be between 1 and the number of tasks (otherwise an `InvalidOptionError`).
 *
 * **Example**
 *
 * ```ts
 * import { Effect } from "effect"
 * import { FanOut } from "effect-fanout"
 *
 * // "2 of 3 pricing services agree"
 * const quotes = FanOut.quorum({ eu: Effect.succeed(10), us: Effect.succeed(10), asia: Effect.never }, 2)
 * // Effect<Array<QuorumSuccess<...>>, QuorumError<never>>: Outcome.Success<number> & { key: "eu" | "us" | "asia" }
 * ```
 *
 * @since 1.0.0
 * @category quorum
 */
export const quorum: {
  <const T extends Tasks, const O extends Options = {}>(
    tasks: T,
    n: number,
    options?: O & RetryFor<ErrorOf<T>, O>
  ): Effect.Effect<Array<QuorumSuccess<T>>, QuorumError<ErrorOf<T>>, ContextOf<T>>
  <const O extends Options = {}>(
    n: number,
    options?: O & RetryFor<any, O>
  ): <const T extends Tasks>(
    tasks: CheckedTasks<T, O>
  ) => Effect.Effect<Array<QuorumSuccess<T>>, QuorumError<ErrorOf<T>>, ContextOf<T>>
} = dual(
  // Data-last, the first argument is `n`.
  (args) => typeof args[0] !== "number",
  (tasks: Tasks, n: number, options?: Options) =>
    Effect.suspend(() => internalQuorum.quorum(internal.shapeOf(tasks), n, settings(options, "FanOut.quorum")))
)

/**
 * The first task to succeed wins: its value is the result and the others are interrupted. Fails only when every
 * task has failed (or the deadline passed), with a `QuorumError` holding every outcome. An empty input is an
 * `InvalidOptionError`: nothing could ever succeed.
 *
 * @since 1.0.0
 * @category quorum
 */
export const firstSuccess: {
  <const T extends Tasks, const O extends Options = {}>(
    tasks: T,
    options?: O & RetryFor<ErrorOf<T>, O>
  ): Effect.Effect<SuccessUnion<T>, QuorumError<ErrorOf<T>>, ContextOf<T>>
  <const O extends Options = {}>(options?: O): <const T extends Tasks>(
    tasks: CheckedTasks<T, O>
  ) => Effect.Effect<SuccessUnion<T>, QuorumError<ErrorOf<T>>, ContextOf<T>>
} = dual(
  (args) => internal.isTasks(args[0]),
  (tasks: Tasks, options?: Options) =>
    Effect.suspend(() =>
      Effect.map(
        internalQuorum.quorum(
          internal.shapeOf(tasks),
          1,
          settings(options, "FanOut.firstSuccess"),
          "firstSuccess"
        ),
        (winners) => winners[0]!.value
      )
    )
)

// ---------------------------------------------------------------------------------------------------------------
// hedging

/**
 * Hedges one task: if the latest attempt has not finished after `delay`, start another, and start one at once when
 * an attempt fails, at most `max` attempts in all (default 2). The first success wins and the attempts still running
 * are interrupted; it fails only when every attempt has failed, with all their causes (when some attempts failed
 * with typed errors, the attempts that only died are left out, so that it stays recoverable, as an outcome prefers a
 * typed failure). For idempotent work only.
 *
 * **Example**
 *
 * ```ts
 * import { Effect } from "effect"
 * import { FanOut } from "effect-fanout"
 *
 * const lookup = Effect.succeed("replica answer").pipe(FanOut.hedge({ delay: "50 millis", max: 3 }))
 * ```
 *
 * @since 1.0.0
 * @category hedging
 */
export const hedge: {
  <A, E, R>(self: Effect.Effect<A, E, R>, options: HedgeOptions<E>): Effect.Effect<A, E, R>
  (options: HedgeOptions): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
} = dual(
  2,
  internalHedge.hedged
)

// ---------------------------------------------------------------------------------------------------------------
// streaming

/**
 * The tasks' outcomes as a `Stream`, in the order the tasks finish, for progressive responses. The stream ends
 * after one outcome per task; ending it early (`Stream.take`, an interrupted consumer) interrupts the tasks still
 * running and waits for them. With a `deadline`, the tasks cut off come last, `TimedOut`.
 *
 * **Example**
 *
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { FanOut } from "effect-fanout"
 *
 * const firstTwo = FanOut.stream({ a: Effect.succeed(1), b: Effect.succeed(2), c: Effect.never }).pipe(
 *   Stream.take(2),
 *   Stream.runCollect
 * ) // c is interrupted once two outcomes have arrived
 * ```
 *
 * @since 1.0.0
 * @category streaming
 */
export const stream: {
  <const T extends Tasks, const O extends Options = {}>(
    tasks: T,
    options?: O & RetryFor<ErrorOf<T>, O>
  ): Stream.Stream<OutcomeUnion<T>, never, ContextOf<T>>
  <const O extends Options = {}>(
    options?: O & RetryFor<any, O>
  ): <const T extends Tasks>(tasks: CheckedTasks<T, O>) => Stream.Stream<OutcomeUnion<T>, never, ContextOf<T>>
} = dual(
  (args) => internal.isTasks(args[0]),
  (tasks: Tasks, options?: Options) =>
    // Bad input is a defect of the stream when it runs, as with the other combinators, not a throw here.
    Stream.unwrap(
      Effect.sync(() => internalStream.stream(internal.shapeOf(tasks), settings(options, "FanOut.stream")))
    )
)

// ---------------------------------------------------------------------------------------------------------------
// observability

/**
 * The metrics every fan-out records when it ends, tagged `fanout` with its name (`"fanout.<kind>"` by default):
 * `outcomes` counts tasks by `outcome` tag (`Success`, `Failure`, `Defect`, `TimedOut`, `Interrupted`), and
 * `durations` is a histogram of the durations, in milliseconds, of the tasks that waited (exponential buckets from 1 ms,
 * doubling; a task that ended as it started took no time on the clock and is counted by outcome only, which spares a
 * fan-out of in-memory tasks one metric update per task). The caller's
 * `Metric.CurrentMetricAttributes` are added. Read a series with `Metric.withAttributes`, e.g.
 * `Metric.value(Metric.withAttributes(FanOut.metrics.outcomes, { fanout: "page", outcome: "Failure" }))`.
 *
 * @since 1.0.0
 * @category observability
 */
export const metrics: {
  readonly outcomes: typeof observe.outcomesTotal
  readonly durations: typeof observe.taskDuration
} = { outcomes: observe.outcomesTotal, durations: observe.taskDuration }
