/**
 * What one task of a settled fan-out did.
 *
 * `FanOut.settle` never fails: it gives back one `Outcome` per task, in the same shape as its input. An outcome
 * is exactly one of `Success` · `Failure` (the task's typed error) · `Defect` (a thrown exception or `Effect.die`,
 * with the full `Cause` and a stack trimmed to the user's frames) · `TimedOut` (its own timeout or the fan-out's
 * deadline passed) · `Interrupted`. Every outcome says which task it belongs to (`key`, `label`), how long the task
 * ran and how many attempts it made.
 *
 * @since 1.0.0
 */
import type * as Cause from "effect/Cause"
import { dual } from "effect/Function"
import type { CancelReason } from "./Cancellation.js"

/**
 * The key of a task: its struct key, or its index for tuples and iterables.
 *
 * @since 1.0.0
 * @category models
 */
export type Key = string | number

/**
 * What every outcome carries, whatever happened.
 *
 * @since 1.0.0
 * @category models
 */
export interface Common {
  /** The task's struct key, or its index in a tuple or iterable. */
  readonly key: Key
  /** The task's human name: its struct key, or the label given with `FanOut.labeled` or the `label` option. */
  readonly label: string | undefined
  /** Time from the task's start to its end, by the fan-out's `Clock` (so `TestClock` drives it); 0 if it never started. */
  readonly durationMillis: number
  /** How many times the task ran: 1 without retries, 0 if it never started. */
  readonly attempts: number
  /**
   * Set when the fan-out's retry and hedge budget refused the task an attempt it would otherwise have made (a retry
   * its schedule allowed, a hedge): `"budget"`. Absent otherwise.
   */
  readonly refused?: "budget" | undefined
}

/**
 * The task produced a value.
 *
 * @since 1.0.0
 * @category models
 */
export interface Success<A> extends Common {
  readonly _tag: "Success"
  readonly value: A
}

/**
 * The task failed with one of its typed errors. `error` is the first `Fail` reason's error, `cause` the whole `Cause`
 * (its `reasons` can hold more failures, and defects or interruptions beside them: a typed failure wins over both).
 * Effect 4 itself turns a task's typed failures into defects when a defect joins them as causes are combined (a
 * finalizer that dies after the task failed): such a task is a `Defect`, as `Effect.catch` would not recover it.
 *
 * @since 1.0.0
 * @category models
 */
export interface Failure<E> extends Common {
  readonly _tag: "Failure"
  readonly error: E
  readonly cause: Cause.Cause<E>
}

/**
 * The task crashed: it threw, or called `Effect.die`. `defect` is the thrown value (the first `Die` reason's), `cause`
 * the full `Cause` (it holds no `Fail` reason: a typed failure would have made the outcome a `Failure`), and `stack` a
 * readable stack trace with the frames of Effect's runtime and of this library removed.
 *
 * @since 1.0.0
 * @category models
 */
export interface Defect extends Common {
  readonly _tag: "Defect"
  readonly defect: unknown
  readonly cause: Cause.Cause<never>
  readonly stack: string
}

/**
 * The task ran out of time: its own `timeout`, or the fan-out's `deadline`. A task that had not started when the
 * deadline passed is `TimedOut` with `attempts: 0`.
 *
 * @since 1.0.0
 * @category models
 */
export interface TimedOut extends Common {
  readonly _tag: "TimedOut"
  /** Which limit ended the task. */
  readonly reason: "Timeout" | "Deadline"
}

/**
 * The task was interrupted: by itself, or by the fan-out (a required task failed, a quorum was reached, a stream
 * was ended early). A task that never started because of that is `Interrupted` with `attempts: 0`.
 *
 * @since 1.0.0
 * @category models
 */
export interface Interrupted extends Common {
  readonly _tag: "Interrupted"
  /**
   * Why the fan-out interrupted the task (see `Cancellation`); `undefined` when no fan-out gave a reason (the task
   * interrupted itself, or something else interrupted it).
   *
   * @since 1.1.0
   */
  readonly cancelReason?: CancelReason | undefined
}

/**
 * One task's outcome.
 *
 * @since 1.0.0
 * @category models
 */
export type Outcome<A, E = never> = Success<A> | Failure<E> | Defect | TimedOut | Interrupted

/**
 * An outcome that is not a `Success`.
 *
 * @since 1.0.0
 * @category models
 */
export type NotSuccess<E> = Failure<E> | Defect | TimedOut | Interrupted

/**
 * @since 1.0.0
 * @category guards
 */
export const isSuccess = <A, E>(self: Outcome<A, E>): self is Success<A> => self._tag === "Success"

/**
 * @since 1.0.0
 * @category guards
 */
export const isFailure = <A, E>(self: Outcome<A, E>): self is Failure<E> => self._tag === "Failure"

/**
 * @since 1.0.0
 * @category guards
 */
export const isDefect = <A, E>(self: Outcome<A, E>): self is Defect => self._tag === "Defect"

/**
 * @since 1.0.0
 * @category guards
 */
export const isTimedOut = <A, E>(self: Outcome<A, E>): self is TimedOut => self._tag === "TimedOut"

/**
 * @since 1.0.0
 * @category guards
 */
export const isInterrupted = <A, E>(self: Outcome<A, E>): self is Interrupted => self._tag === "Interrupted"

/**
 * Folds an outcome into one value, one handler per case.
 *
 * **Example**
 *
 * ```ts
 * import { Outcome } from "effect-fanout"
 *
 * const describe = Outcome.match({
 *   onSuccess: (value: number) => `ok ${value}`,
 *   onFailure: (error: string) => `failed: ${error}`,
 *   onDefect: (defect) => `crashed: ${String(defect)}`,
 *   onTimedOut: () => "timed out",
 *   onInterrupted: () => "interrupted"
 * })
 * ```
 *
 * @since 1.0.0
 * @category pattern matching
 */
export const match: {
  <A, E, B>(cases: Cases<A, E, B>): (self: Outcome<A, E>) => B
  <A, E, B>(self: Outcome<A, E>, cases: Cases<A, E, B>): B
} = dual(2, <A, E, B>(self: Outcome<A, E>, cases: Cases<A, E, B>): B => matchImpl(self, cases))

/**
 * @since 1.0.0
 * @category pattern matching
 */
export interface Cases<A, E, B> {
  readonly onSuccess: (value: A, outcome: Success<A>) => B
  readonly onFailure: (error: E, outcome: Failure<E>) => B
  readonly onDefect: (defect: unknown, outcome: Defect) => B
  readonly onTimedOut: (outcome: TimedOut) => B
  readonly onInterrupted: (outcome: Interrupted) => B
}

const matchImpl = <A, E, B>(self: Outcome<A, E>, cases: Cases<A, E, B>): B => {
  switch (self._tag) {
    case "Success":
      return cases.onSuccess(self.value, self)
    case "Failure":
      return cases.onFailure(self.error, self)
    case "Defect":
      return cases.onDefect(self.defect, self)
    case "TimedOut":
      return cases.onTimedOut(self)
    case "Interrupted":
      return cases.onInterrupted(self)
  }
}

/**
 * Anything `FanOut.settle` can return: outcomes in a tuple, an array or a struct.
 *
 * @since 1.0.0
 * @category models
 */
export type Settled = ReadonlyArray<Outcome<any, any>> | { readonly [key: string]: Outcome<any, any> }

type OutcomeOf<S> = S extends ReadonlyArray<infer O> ? O : S[keyof S]
type ValueOf<S> = OutcomeOf<S> extends infer O ? O extends Success<infer A> ? A : never : never
type ErrorOf<S> = OutcomeOf<S> extends infer O ? O extends Failure<infer E> ? E : never : never

const toList = <S extends Settled>(settled: S): ReadonlyArray<OutcomeOf<S>> =>
  (Array.isArray(settled) ? settled : Object.values(settled)) as any

/**
 * The successful outcomes of a settled result, in input order.
 *
 * @since 1.0.0
 * @category settled results
 */
export const successes = <S extends Settled>(settled: S): Array<Success<ValueOf<S>>> =>
  toList(settled).filter(isSuccess) as any

/**
 * The typed failures of a settled result, in input order (defects, time-outs and interruptions are not here).
 *
 * @since 1.0.0
 * @category settled results
 */
export const failures = <S extends Settled>(settled: S): Array<Failure<ErrorOf<S>>> =>
  toList(settled).filter(isFailure) as any

/**
 * The defects (crashes) of a settled result, in input order.
 *
 * @since 1.0.0
 * @category settled results
 */
export const defects = <S extends Settled>(settled: S): Array<Defect> => toList(settled).filter(isDefect) as any

/**
 * Splits a settled result into the outcomes that succeeded and those that did not, both in input order.
 *
 * @since 1.0.0
 * @category settled results
 */
export const partition = <S extends Settled>(
  settled: S
): [succeeded: Array<Success<ValueOf<S>>>, notSucceeded: Array<NotSuccess<ErrorOf<S>>>] => {
  const ok: Array<any> = []
  const notOk: Array<any> = []
  for (const outcome of toList(settled)) {
    ;(outcome._tag === "Success" ? ok : notOk).push(outcome)
  }
  return [ok, notOk]
}

/**
 * `true` when every task succeeded (and so for an empty fan-out). Narrows a struct or tuple of outcomes to successes.
 *
 * @since 1.0.0
 * @category settled results
 */
export const allSucceeded = <S extends Settled>(
  settled: S
): settled is S & { readonly [K in keyof S]: Extract<S[K], Success<any>> } =>
  toList(settled).every((outcome) => outcome._tag === "Success")

/**
 * The Go-style index-aligned list of errors: one entry per task in input order, `undefined` where the task
 * succeeded. A typed failure gives its error (an `Error` saying so when that error is `undefined`); a defect gives
 * the thrown value when it is an `Error` (otherwise an `Error` carrying the value as `cause`); a time-out or an
 * interruption gives an `Error` saying so.
 *
 * **Example**
 *
 * ```ts
 * import { Effect } from "effect"
 * import { FanOut, Outcome } from "effect-fanout"
 *
 * const errors = FanOut.settle([Effect.succeed(1), Effect.fail("boom")]).pipe(Effect.map(Outcome.errors))
 * // Effect<Array<string | Error | undefined>>: [undefined, "boom"]
 * ```
 *
 * @since 1.0.0
 * @category settled results
 */
export const errors = <S extends Settled>(settled: S): Array<ErrorOf<S> | Error | undefined> =>
  toList(settled).map((outcome) => {
    switch (outcome._tag) {
      case "Success":
        return undefined
      case "Failure":
        // `undefined` marks a success in this list: a task that failed with `undefined` must not read as one.
        return outcome.error === undefined
          ? new Error(`task ${describeTask(outcome)} failed with undefined`, { cause: outcome.error })
          : outcome.error
      case "Defect":
        return outcome.defect instanceof Error ?
          outcome.defect :
          new Error(`task ${describeTask(outcome)} crashed: ${String(outcome.defect)}`, { cause: outcome.defect })
      case "TimedOut":
        return new Error(`task ${describeTask(outcome)} timed out (${outcome.reason})`)
      case "Interrupted":
        return new Error(`task ${describeTask(outcome)} was interrupted`)
    }
  })

const describeTask = (outcome: Common): string =>
  outcome.label !== undefined && outcome.label !== String(outcome.key)
    ? `${outcome.label} (${String(outcome.key)})`
    : String(outcome.key)
