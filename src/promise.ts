/**
 * The Promise facade (`effect-fanout/promise`): fan-out for code that is not written in Effect yet, with the
 * semantics of `FanOut.forEach` and `FanOut.settleForEach` underneath (each function is one task of the core).
 *
 * - `runAsync(fns)` / `all(fns)` — **fail fast**: run every function concurrently; the first error aborts every other
 *   function's `AbortSignal` and the promise rejects with that error.
 * - `runAsyncAllowErrors(fns)` / `settle(fns)` — **settle**: run every function, wait for all of them, and report one
 *   result per function in input order. They never reject because a function failed.
 *
 * Every function is called as `fn(signal)`, in input order. It may return a value or a promise (any thenable); a
 * synchronous `throw` is caught like a rejection; a thrown value that is not an `Error` (`throw "x"`) becomes an
 * `Error` with the value as its `cause`; an `Error`'s stack is kept (the same object is reported) with the frames of
 * this library and of Effect's runtime removed. The functions are called one after the other in one synchronous pass
 * (up to `concurrency` of them), so in the fail-fast forms a synchronous `throw` stops the run before the next
 * function is called: the functions after it are never called, whatever the `concurrency` (those before it are
 * aborted). A rejection (asynchronous) only comes after the pass: by then every function of it has been called.
 *
 * **The signal.** A function's signal is aborted when its work is cancelled: by the first error (fail fast), its own
 * `timeout`, the run's `deadline`, or the caller's `signal`. The signal's `reason` is a `CancelledError` that says
 * why, as typed data (`cancelReason`: a `Cancellation.CancelReason`, as the Effect API's `Interrupted` outcomes hold),
 * with what stopped it as its `cause`: the first error, a `FanOutTimeoutError`, or the caller's `signal.reason`. The
 * time left before the run's deadline is `remaining(signal)`, and a run given a function's signal as its own `signal`
 * runs under that deadline too (a nested run never outlives the one around it). A function must not rely on its
 * signal once it has returned: for speed, the functions of one run share one signal (except under `timeout` in the settle forms, where
 * each function has its own so that only the late one is aborted), and that signal is aborted when the run stops
 * early, even for the functions that had already finished.
 *
 * **Waiting.** Like the core, the facade is structured by default: when a run settles, every function it called has
 * settled (nothing it started is still running). This trusts the functions to stop when their signal aborts: one that
 * ignores it keeps the run waiting, past its `timeout` and `deadline`. With `detach: true` the run gives up on such
 * functions instead: `runAsync`/`all` reject as soon as the run fails, the settle forms resolve at the deadline and
 * report a function `timedOut` at its own timeout (`aborted` at the caller's abort), and the functions given up on
 * settle in the background, their results ignored. See `Options.detach` for why waiting is the default.
 *
 * **Bad input** (not an array, an entry that is not a function, an invalid or unknown option) never throws
 * synchronously: the returned promise rejects with a `TypeError` (wrong type, unknown option) or a `RangeError` (a
 * number out of range) naming the problem, and no function is called.
 *
 * Cost: a function that returns a value or throws is a task that ends as it starts (no fiber); one that returns a
 * promise waits on a fiber of the core's engine (`Effect.callback`) plus one promise callback.
 * `scripts/bench/promise.ts` compares it with `Promise.all`, `Promise.allSettled` and p-map.
 *
 * @since 1.0.0
 */
import type * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { setMaxListeners } from "node:events"
import type * as Cancellation from "./Cancellation.js"
import { FanOutTimeoutError, InvalidOptionError } from "./FanOutError.js"
import { runCallbacks } from "./internal/callbacks.js"
import { inheritedLead } from "./internal/deadline.js"
import { formatDuration } from "./internal/duration.js"
import { CallbackTaskId } from "./internal/engine/run.js"
import type { CallbackTask } from "./internal/engine/run.js"
import { show } from "./internal/show.js"
import * as stack from "./internal/stack.js"
import type * as Outcome from "./Outcome.js"

export {
  /**
   * The error of a function that ran past its `timeout` (`reason: "Timeout"`, `key`: the function's index, message
   * "function 2 timed out after 100ms") or of a run that passed its `deadline` (`reason: "Deadline"`, message
   * "fan-out deadline of 200ms passed"). It is also the `reason` of the aborted signals.
   *
   * @since 1.0.0
   * @category errors
   */
  FanOutTimeoutError
} from "./FanOutError.js"

/**
 * The `reason` of every signal the facade aborts: why the function's work was cancelled, as typed data, and what
 * stopped it as the `cause`.
 *
 * | `cancelReason._tag` | when | `cause` |
 * |:--|:--|:--|
 * | `SiblingFailed` (`key`: the function's index) | fail fast: a function threw, rejected or ran past its `timeout` | its `Error` (the run's rejection) |
 * | `Timeout` | settle: this function ran past its `timeout` | the `FanOutTimeoutError` it is reported `timedOut` with |
 * | `Deadline` | the run's `deadline` (or the one it inherited) passed | the `FanOutTimeoutError` of reason `"Deadline"` |
 * | `Caller` | the caller's `signal` was aborted (or the run was stopped from outside) | the caller's `signal.reason` |
 *
 * A function that passes its signal on (`fetch(url, { signal })`) rejects with this error once it is aborted; the run
 * reports it as cancelled, not as that rejection. Under fail fast the functions share one signal, so the function
 * whose own error (or time-out) stopped the run sees `SiblingFailed` naming itself.
 *
 * **Example**
 *
 * ```ts
 * import { all, CancelledError } from "effect-fanout/promise"
 *
 * const slow = (signal: AbortSignal) =>
 *   new Promise<never>((_, reject) => {
 *     signal.addEventListener("abort", () => {
 *       if (signal.reason instanceof CancelledError) {
 *         console.log(signal.reason.cancelReason) // { _tag: "SiblingFailed", key: 1, label: undefined }
 *       }
 *       reject(signal.reason)
 *     })
 *   })
 * await all([slow, () => Promise.reject(new Error("billing is down"))]).catch((e: Error) => e.message)
 * ```
 *
 * @since 1.1.0
 * @category errors
 */
export class CancelledError extends Error {
  /** Why the function's work was cancelled. */
  readonly cancelReason: Cancellation.CancelReason

  constructor(cancelReason: Cancellation.CancelReason, cause: unknown) {
    super(`${prefix} cancelled: ${describe(cancelReason, cause)}`, { cause })
    this.cancelReason = cancelReason
  }
}

Object.defineProperty(CancelledError.prototype, "name", { value: "CancelledError", writable: true, configurable: true })

const describe = (reason: Cancellation.CancelReason, cause: unknown): string => {
  switch (reason._tag) {
    case "SiblingFailed":
      return `function ${String(reason.key)} failed${isError(cause) ? `: ${cause.message}` : ""}`
    case "Timeout":
    case "Deadline":
      return isError(cause) ? cause.message : reason._tag
    case "Caller":
      return "the caller aborted"
    default:
      return reason._tag
  }
}

/**
 * When each signal's run passes its deadline, in `Date.now()` milliseconds (as the core's `Clock` reads time, so that
 * fake timers drive both): only the signals of runs with a deadline.
 */
const dues = new WeakMap<AbortSignal, number>()

/**
 * The milliseconds left before the deadline of the run that gave a function `signal` (its own `deadline`, or the one
 * it inherited from the run whose signal it was given): `undefined` for a run without a deadline or a signal the
 * facade did not make, `0` once the deadline has passed. Pass it on to the service the function calls, in the style of
 * gRPC's `grpc-timeout`. A function's own `timeout` is not counted (as in the Effect API's `Deadline.remaining`).
 *
 * A run given such a signal as its `signal` option runs under the smaller of its own `deadline` and the time left, so
 * a nested run never outlives the run around it.
 *
 * **Example**
 *
 * ```ts
 * import { remaining, settle } from "effect-fanout/promise"
 *
 * const call = (url: string) => (signal: AbortSignal) => {
 *   const left = remaining(signal)
 *   const headers: Record<string, string> = left === undefined ? {} : { "x-fanout-timeout": `${Math.floor(left)}m` }
 *   return fetch(url, { signal, headers })
 * }
 * const results = await settle([call("http://127.0.0.1:8080/a"), call("http://127.0.0.1:8080/b")], { deadline: 800 })
 * ```
 *
 * @since 1.1.0
 * @category deadline
 */
export const remaining = (signal: AbortSignal): number | undefined => {
  const due = dues.get(signal)
  return due === undefined ? undefined : Math.max(0, due - Date.now())
}

// ---------------------------------------------------------------------------------------------------------------
// models

/**
 * A function the facade runs: it gets an `AbortSignal` and returns a value or a promise of one.
 *
 * @since 1.0.0
 * @category models
 */
export type Fn<A = unknown> = (signal: AbortSignal) => PromiseLike<A> | A

type ValueOf<F> = F extends (...args: any) => infer R ? Awaited<R> : never

/**
 * The results of `all` over `T`: a tuple of functions gives a tuple of their awaited results, an array an array.
 *
 * @since 1.0.0
 * @category models
 */
export type Results<T extends ReadonlyArray<Fn>> = { -readonly [K in keyof T]: ValueOf<T[K]> }

/**
 * What every settled result carries.
 *
 * @since 1.0.0
 * @category models
 */
export interface Common {
  /** The function's index in `fns`. */
  readonly index: number
  /** Time from the function's call to its end, in milliseconds; 0 if it was never called. */
  readonly durationMillis: number
}

/**
 * The function returned (or resolved to) `value`.
 *
 * @since 1.0.0
 * @category models
 */
export interface Fulfilled<A> extends Common {
  readonly status: "fulfilled"
  readonly value: A
}

/**
 * The function threw or rejected. `reason` is the thrown `Error` (with its stack trimmed), or an `Error` whose `cause`
 * is the thrown value when that was not an `Error`.
 *
 * @since 1.0.0
 * @category models
 */
export interface Rejected extends Common {
  readonly status: "rejected"
  readonly reason: Error
}

/**
 * The function ran out of time: its own `timeout` (`limit: "timeout"`) or the run's `deadline` (`limit: "deadline"`,
 * also for a function that had not been called yet). `reason` is the `FanOutTimeoutError` its signal was aborted with.
 *
 * @since 1.0.0
 * @category models
 */
export interface TimedOut extends Common {
  readonly status: "timedOut"
  readonly limit: "timeout" | "deadline"
  readonly reason: FanOutTimeoutError
}

/**
 * The caller's `signal` was aborted before the function finished (or before it was called: then `durationMillis` is
 * 0). `reason` is the signal's `reason` (an `Error` with it as `cause` if it is not one).
 *
 * @since 1.0.0
 * @category models
 */
export interface Aborted extends Common {
  readonly status: "aborted"
  readonly reason: Error
}

/**
 * What one function of a settled run did: the Promise-world mirror of `Outcome` (`Success` → `fulfilled`,
 * `Failure`/`Defect` → `rejected`, `TimedOut` → `timedOut`, `Interrupted` → `aborted`).
 *
 * @since 1.0.0
 * @category models
 */
export type Settled<A> = Fulfilled<A> | Rejected | TimedOut | Aborted

/**
 * The results of `settle` over `T`: one `Settled` per function, a tuple for a tuple.
 *
 * @since 1.0.0
 * @category models
 */
export type SettledResults<T extends ReadonlyArray<Fn>> = { -readonly [K in keyof T]: Settled<ValueOf<T[K]>> }

// ---------------------------------------------------------------------------------------------------------------
// options

/**
 * Options of every function of the facade.
 *
 * **Functions that ignore their signal.** Every limit (`timeout`, `deadline`, the caller's `signal`) works by aborting
 * signals; a function that honours its signal (as `fetch(url, { signal })` does) settles right after, so the run ends
 * at once either way. For a function that ignores it, `detach` decides: wait for it (the default), or give up on it.
 *
 * @since 1.0.0
 * @category options
 */
export interface Options {
  /**
   * How many functions run at once: a positive integer or `Infinity`. Default: `Infinity`. A function holds its slot
   * until its promise settles; under `detach`, a function the run gave up on frees its slot at once.
   */
  readonly concurrency?: number | undefined
  /**
   * A time limit for each function, in milliseconds. `Infinity` is none, and so is anything above 2147483647 (2^31 - 1,
   * about 24.8 days, the longest a Node timer can wait), as with Effect's `Clock`. When it passes, the function's
   * signal is aborted with a `FanOutTimeoutError` naming it. Fail fast: the run rejects with that error. Settle: the
   * function is `timedOut`. A function that ignores its signal is waited for unless `detach`. Default: none.
   */
  readonly timeout?: number | undefined
  /**
   * A time limit for the whole run, in milliseconds (`Infinity`, or above 2147483647: none). When it passes, the
   * signals of the functions still running are aborted with a `FanOutTimeoutError` (`reason: "Deadline"`). Fail fast:
   * the run rejects with it. Settle: those functions are `timedOut`, the finished results are kept (partial results),
   * and the functions not called yet are `timedOut` without being called. A function that ignores its signal is
   * waited for unless `detach`. Default: none.
   */
  readonly deadline?: number | undefined
  /**
   * The caller's own signal: aborting it aborts every function still running and calls no other. Fail fast: the run
   * rejects with `signal.reason`. Settle: the run resolves, the unfinished functions `aborted`. A function that
   * ignores its signal is waited for unless `detach`. A run listens to this signal until it settles (one listener;
   * none is left behind); Node warns past 10 listeners on one signal, so a signal shared by many runs at once (a
   * server's shutdown signal) may want `events.setMaxListeners(n, signal)` from its owner.
   */
  readonly signal?: AbortSignal | undefined
  /**
   * Whether to stop waiting for the functions the run has given up on. Default: `false`.
   *
   * - `false`: the promise settles only once every function called has settled, so nothing the run started is still
   *   running. A function that ignores its signal holds the run, however late it settles (forever if it never does):
   *   `timeout` and `deadline` then bound the run only as far as the functions honour their signals.
   * - `true`: fail fast rejects as soon as the run fails (the first error, a timeout, the deadline, the caller's
   *   abort). Settle resolves at the deadline, and ends a function as `timedOut` when its `timeout` passes and as
   *   `aborted` when the caller aborts, without waiting for it. Either way `timeout` and `deadline` bound the run
   *   whatever the functions do. The signals are still aborted; the promises of the functions given up on settle in
   *   the background, their results and errors ignored (no unhandled rejection).
   *
   * Why waiting is the default in both modes: it is the core's rule (`FanOut.settle` always waits for the tasks it
   * interrupts, `FanOut.all` unless `detach`) and Go's (`RunAsync`, errgroup and a `WaitGroup` all wait), and it keeps
   * `concurrency` a bound on the work actually running. A detached run's stragglers go on using connections and
   * memory after the caller has moved on; under load, when deadlines pass most, each request leaves more of them
   * behind, and a caller that retries stacks new work on the old. With functions that honour their signal, waiting
   * costs nothing; `detach: true` is for functions that cannot be stopped (a library that takes no signal) when the
   * caller needs the answer by the deadline.
   */
  readonly detach?: boolean | undefined
}

// ---------------------------------------------------------------------------------------------------------------
// fail fast

/**
 * Runs every function concurrently and resolves once all have succeeded. On the first error, aborts every other
 * function's signal (the error is the `reason`), waits for them to settle (unless `detach: true`) and rejects with
 * that error. A function that throws synchronously stops the run before the functions after it are called: they never
 * are. An empty `fns` resolves at once. The TypeScript form of Go's `RunAsync(funcs...) error`.
 *
 * **Example**
 *
 * ```ts
 * import { runAsync } from "effect-fanout/promise"
 *
 * await runAsync([
 *   (signal) => fetch("https://example.com/a", { signal }),
 *   (signal) => fetch("https://example.com/b", { signal })
 * ], { timeout: 2_000 })
 * ```
 *
 * @since 1.0.0
 * @category fail fast
 */
export const runAsync = (fns: ReadonlyArray<Fn>, options?: Options): Promise<void> => failFast(fns, options, false)

/**
 * `runAsync` that resolves with the functions' results, in input order, with their types (a tuple stays a tuple).
 *
 * **Example**
 *
 * ```ts
 * import { all } from "effect-fanout/promise"
 *
 * const [user, orders] = await all([
 *   async () => ({ name: "Ada" }),
 *   async (signal: AbortSignal) => [1, 2, 3]
 * ])
 * // user: { name: string }, orders: number[]
 * ```
 *
 * @since 1.0.0
 * @category fail fast
 */
export const all = <const T extends ReadonlyArray<Fn>>(fns: T, options?: Options): Promise<Results<T>> =>
  failFast(fns, options, true) as Promise<Results<T>>

// ---------------------------------------------------------------------------------------------------------------
// settle

/**
 * Runs every function concurrently, waits for all of them, and resolves with one `Settled` per function in input
 * order. It rejects only on bad input. At the `deadline` the functions still running are aborted and `timedOut`: the
 * run resolves once they have settled, or at once with `detach: true` (see `Options.detach`).
 *
 * **Example**
 *
 * ```ts
 * import { settle } from "effect-fanout/promise"
 *
 * const [usage, billing] = await settle([async () => 42, async () => { throw new Error("billing down") }], {
 *   deadline: 800
 * })
 * // usage: { status: "fulfilled", value: 42, index: 0, durationMillis }
 * // billing: { status: "rejected", reason: Error("billing down"), index: 1, durationMillis }
 * ```
 *
 * @since 1.0.0
 * @category settle
 */
export const settle = <const T extends ReadonlyArray<Fn>>(
  fns: T,
  options?: Options
): Promise<SettledResults<T>> => settleWith(fns, options, asSettled) as Promise<SettledResults<T>>

/**
 * Runs every function concurrently, waits for all of them (as `settle` does, `detach` included), and resolves with the
 * Go-style index-aligned list of errors: `undefined` where the function succeeded, otherwise its `reason` (see
 * `settle`). It rejects only on bad input. The TypeScript form of Go's `RunAsyncAllowErrors(funcs...) []error`.
 *
 * **Example**
 *
 * ```ts
 * import { runAsyncAllowErrors } from "effect-fanout/promise"
 *
 * const errors = await runAsyncAllowErrors([async () => {}, () => { throw "boom" }])
 * // [undefined, Error("function 1 threw a non-Error value: \"boom\"", { cause: "boom" })]
 * ```
 *
 * @since 1.0.0
 * @category settle
 */
export const runAsyncAllowErrors = (
  fns: ReadonlyArray<Fn>,
  options?: Options
): Promise<Array<Error | undefined>> => settleWith(fns, options, asError)

// ---------------------------------------------------------------------------------------------------------------
// input

interface Settings {
  /** A positive integer or `Infinity`. */
  readonly concurrency: number
  /** Milliseconds, `undefined` for none. */
  readonly timeout: number | undefined
  /** Milliseconds: the smaller of the `deadline` option and the time left before the deadline `signal` carries. */
  readonly deadline: number | undefined
  /** When that deadline passes, in `Date.now()` milliseconds; `undefined` for none. */
  readonly due: number | undefined
  readonly signal: AbortSignal | undefined
  readonly detach: boolean
}

const prefix = "effect-fanout/promise:"

/**
 * The functions, checked and copied (each entry read once): what the run calls later is what was checked, even if the
 * caller's array changes meanwhile.
 */
const checkFns = (fns: unknown): Array<Fn> => {
  if (!Array.isArray(fns)) throw new TypeError(`${prefix} \`fns\` must be an array of functions, got ${show(fns)}`)
  const copy = new Array<Fn>(fns.length)
  for (let i = 0; i < fns.length; i++) {
    const fn: unknown = fns[i]
    if (typeof fn !== "function") throw new TypeError(`${prefix} \`fns[${i}]\` must be a function, got ${show(fn)}`)
    copy[i] = fn as Fn
  }
  return copy
}

/** The longest a Node timer waits: a longer `setTimeout` fires after 1 ms instead (with a `TimeoutOverflowWarning`). */
const maxTimerMillis = 2 ** 31 - 1

const millis = (value: unknown, option: string): number | undefined => {
  if (value === undefined || value === Infinity) return undefined
  if (typeof value !== "number") {
    throw new TypeError(`${prefix} option \`${option}\` must be a number of milliseconds, got ${show(value)}`)
  }
  if (Number.isNaN(value) || value < 0) {
    throw new RangeError(`${prefix} option \`${option}\` must be a non-negative number of milliseconds, got ${value}`)
  }
  // A limit no timer can wait for is no limit, as with Effect's `Clock` (whose timers never fire past it).
  return value > maxTimerMillis ? undefined : value
}

const optionNames: ReadonlyArray<string> = ["concurrency", "timeout", "deadline", "signal", "detach"]

const isAbortSignal = (u: unknown): u is AbortSignal =>
  typeof u === "object" && u !== null && typeof (u as AbortSignal).aborted === "boolean" &&
  typeof (u as AbortSignal).addEventListener === "function" &&
  typeof (u as AbortSignal).removeEventListener === "function"

const settings = (raw: unknown): Settings => {
  if (raw !== undefined && (typeof raw !== "object" || raw === null || Array.isArray(raw))) {
    throw new TypeError(`${prefix} \`options\` must be an object, got ${show(raw)}`)
  }
  const o = (raw ?? {}) as Record<string, unknown>
  // A misspelt option (`timeOut`, or one of the Effect API's such as `retry`) is an error, not silently ignored.
  for (const key of Object.keys(o)) {
    if (o[key] !== undefined && !optionNames.includes(key)) {
      throw new TypeError(`${prefix} \`${key}\` is not an option (the options: ${optionNames.join(", ")})`)
    }
  }
  let concurrency = Infinity
  if (o.concurrency !== undefined && o.concurrency !== Infinity) {
    const wrong = `${prefix} option \`concurrency\` must be a positive integer or Infinity, got`
    if (typeof o.concurrency !== "number") throw new TypeError(`${wrong} ${show(o.concurrency)}`)
    if (!Number.isInteger(o.concurrency) || o.concurrency < 1) throw new RangeError(`${wrong} ${o.concurrency}`)
    concurrency = o.concurrency
  }
  if (o.signal !== undefined && !isAbortSignal(o.signal)) {
    throw new TypeError(`${prefix} option \`signal\` must be an AbortSignal, got ${show(o.signal)}`)
  }
  if (o.detach !== undefined && typeof o.detach !== "boolean") {
    throw new TypeError(`${prefix} option \`detach\` must be true or false, got ${show(o.detach)}`)
  }
  // A run given the signal of a function of a run with a deadline runs under it too, when it is the nearer: it ends a
  // millisecond before it, so that its own results (partial ones, in the settle forms) reach the function that runs it
  // before the enclosing run's deadline stops that function.
  let deadline = millis(o.deadline, "deadline")
  let due: number | undefined = undefined
  const enclosing = o.signal === undefined ? undefined : dues.get(o.signal)
  if (deadline !== undefined || enclosing !== undefined) {
    const now = Date.now()
    due = deadline === undefined ? Infinity : now + deadline
    if (enclosing !== undefined && enclosing - inheritedLead < due) {
      deadline = Math.max(0, Math.ceil(enclosing - now) - inheritedLead)
      due = now + deadline
    }
  }
  return {
    concurrency,
    timeout: millis(o.timeout, "timeout"),
    deadline,
    due,
    signal: o.signal,
    detach: o.detach === true
  }
}

// ---------------------------------------------------------------------------------------------------------------
// errors

/** Errors whose stack is trimmed already: many functions often reject with one error (their signal's reason). */
const trimmedErrors = new WeakSet<Error>()

const trimmed = (error: Error): Error => {
  if (trimmedErrors.has(error)) return error
  trimmedErrors.add(error)
  try {
    if (typeof error.stack === "string") error.stack = stack.trim(error.stack)
  } catch {
    // A frozen error keeps its stack as it is.
  }
  return error
}

/**
 * A function's own time-out error. Its message names the function as the facade's other messages do ("function 2 timed
 * out after 100ms", where `FanOutTimeoutError` says "task 2", the core's word): an own `message`, not a subclass, so
 * that it prints as the `FanOutTimeoutError` it is. V8 writes a stack's first line from the message when the stack is
 * first read, so it is set before anything can read it.
 */
const functionTimeout = (index: number, duration: Duration.Duration): FanOutTimeoutError => {
  const error = new FanOutTimeoutError({ reason: "Timeout", key: index, label: undefined, duration })
  Object.defineProperty(error, "message", {
    value: `function ${index} timed out after ${formatDuration(duration)}`,
    writable: true,
    configurable: true
  })
  return error
}

/** `instanceof Error`, false for a value that cannot even be asked (a revoked `Proxy`). */
const isError = (u: unknown): u is Error => {
  try {
    return u instanceof Error
  } catch {
    return false
  }
}

/** What a function threw or rejected with, as an `Error`: the same object when it is one. */
const toError = (thrown: unknown, index: number): Error =>
  isError(thrown)
    ? trimmed(thrown)
    : trimmed(new Error(`function ${index} threw a non-Error value: ${show(thrown)}`, { cause: thrown }))

const abortError = (reason: unknown): Error =>
  isError(reason) ? reason : new Error(`aborted: ${show(reason)}`, { cause: reason })

/** An option the core refused is a `RangeError`; anything else that escaped is the facade's bug, reported as is. */
const internalError = (defect: unknown): unknown =>
  defect instanceof InvalidOptionError ? new RangeError(defect.message) : defect

const interruptedError = () => new Error(`${prefix} the run was interrupted`)

const callerCancel = (reason: unknown): CancelledError => new CancelledError({ _tag: "Caller" }, reason)

const siblingCancel = (index: number) => (error: unknown): CancelledError =>
  new CancelledError({ _tag: "SiblingFailed", key: index, label: undefined }, error)

// ---------------------------------------------------------------------------------------------------------------
// running

const interrupted: Exit.Exit<never> = Exit.interrupt()

const isThenable = (u: unknown): u is PromiseLike<unknown> =>
  (typeof u === "object" || typeof u === "function") && u !== null && typeof (u as any).then === "function"

/**
 * The state of one run, shared by its functions.
 *
 * How a run maps onto the core: the functions are the items of one `FanOut.forEach` (fail fast) or
 * `FanOut.settleForEach` (settle), and `task` is its `f`, called as each function's task starts. A function that
 * returns a value or throws is a task that has ended as it starts (an `Exit`, no fiber); one that returns a promise
 * is a `Call`, an `Effect.callback` waiting for it. The core decides what starts, stops at the first failure and at
 * the deadline, waits for the functions it interrupts, and builds the outcomes. The facade adds what the core cannot
 * know:
 *
 * - an abort **reason**: the core interrupts a task without saying why (and the signal `Effect.callback` offers is
 *   aborted without a reason), so the facade aborts its own signals, at the moment it learns why: a function's error or
 *   own timeout (it sees them first), the caller's abort (it listens), and otherwise the deadline, the only stop the
 *   core decides alone;
 * - a function's own **timeout**, on a timer of its own: the core's `timeout` would interrupt the function without
 *   saying so, and fail fast would end it before its promise has settled;
 * - fail fast, a stop the core has not seen (a timeout, the caller's abort): from then on every function ends as
 *   interrupted and none is called, so the core stops at the first function to end or to start; under `detach` that
 *   is at once (the timed-out function ends now, or the caller's abort gives up on the running ones). The facade does
 *   not interrupt the core's fiber for it: a stop from inside a function's call would then reach the engine while it
 *   is starting that very task (see the last test of test/promise.test.ts);
 * - settle, the caller's abort: the core is not stopped (the finished results are kept), so the facade aborts the
 *   running functions, calls no other, and, under `detach`, gives up on the running ones itself.
 */
class Run {
  /** Fail fast: set once the run has begun to fail; `reason` is then its rejection (the cause of every signal's reason). */
  stopped = false
  reason: unknown = undefined
  /** What stopped a settle run early, first come first served. */
  stoppedBy: "caller" | "deadline" | undefined = undefined
  private deadlineError: FanOutTimeoutError | undefined = undefined
  private deadlineCancel: CancelledError | undefined = undefined
  /** One signal for the run; `undefined` when each function has its own (settle with `timeout`). */
  readonly shared: AbortController | undefined
  /** Settle with `timeout`: the controller of each function whose promise is pending. */
  readonly own: Array<AbortController | undefined> | undefined
  /** Settle with `timeout`: the time-out error of each function that ran out of its `timeout`. */
  readonly timedOut: Array<FanOutTimeoutError | undefined> | undefined
  readonly timeoutDuration: Duration.Duration | undefined
  /** With `detach` and a caller's signal: each function whose promise is pending, to give up on at the abort. */
  readonly pending: Array<Call | undefined> | undefined
  /** Settle: the functions never called because the caller had aborted (made on the first). */
  private skipped: Uint8Array | undefined = undefined
  private readonly onCallerAbort: (() => void) | undefined = undefined

  constructor(readonly fns: ReadonlyArray<Fn>, readonly s: Settings, readonly failFast: boolean) {
    const perFunction = !failFast && s.timeout !== undefined
    this.shared = perFunction ? undefined : new AbortController()
    // Every function may listen to the shared signal: dozens of listeners are expected, not a leak.
    if (this.shared !== undefined && fns.length > 1) setMaxListeners(0, this.shared.signal)
    if (this.shared !== undefined && s.due !== undefined) dues.set(this.shared.signal, s.due)
    this.own = perFunction ? new Array(fns.length) : undefined
    this.timedOut = perFunction ? new Array(fns.length) : undefined
    this.timeoutDuration = s.timeout === undefined ? undefined : Duration.millis(s.timeout)
    this.pending = s.detach && s.signal !== undefined ? new Array(fns.length) : undefined
    if (s.signal !== undefined) {
      if (s.signal.aborted) {
        if (!failFast) this.stoppedBy = "caller"
      } else {
        const signal = s.signal
        this.onCallerAbort = () => this.callerAborts(signal.reason)
        signal.addEventListener("abort", this.onCallerAbort, { once: true })
      }
    }
  }

  /**
   * Whether a function that ends now ends as interrupted, whatever it did, and none is called any more: fail fast,
   * once the run has stopped; settle, once the caller has aborted.
   */
  get halted(): boolean {
    return this.failFast ? this.stopped : this.stoppedBy === "caller"
  }

  /**
   * Fail fast: the first cause of failure wins; it aborts every function's signal with `why` (made only when the run
   * stops, so a run that succeeds makes none).
   */
  stop(reason: unknown, why: (reason: unknown) => CancelledError): void {
    if (this.stopped) return
    this.stopped = true
    this.reason = reason
    this.shared!.abort(why(reason))
  }

  private callerAborts(reason: unknown): void {
    if (this.failFast) {
      this.stop(reason, callerCancel)
    } else {
      // Settle: the finished results are kept, so the core is not stopped: every running function is aborted and ends
      // as `aborted` once it has settled (under `detach`, at once); the functions not called yet end so uncalled.
      if (this.stoppedBy === undefined) this.stoppedBy = "caller"
      const why = callerCancel(reason)
      if (this.shared !== undefined) this.shared.abort(why)
      else for (const controller of this.own!) controller?.abort(why)
    }
    if (this.pending !== undefined) { for (const call of this.pending) call?.giveUp() }
  }

  /** Function `index`'s own error: fail fast, it stops the run. */
  failure(error: Error, index: number): Exit.Exit<never, unknown> {
    if (this.failFast) {
      if (this.stopped) return interrupted
      this.stop(error, siblingCancel(index))
      return Exit.fail(error)
    }
    return this.halted ? interrupted : Exit.fail(error)
  }

  /**
   * The core interrupted a running function. Fail fast, every stop but the deadline came from the facade, which has
   * aborted the signals with its reason already (the core stops at a function's failure, and the facade stopped
   * first); settle, the core stops only at the deadline.
   */
  cancelled(controller: AbortController): void {
    if (this.failFast) {
      if (this.stopped) return
      if (this.s.deadline !== undefined) this.stop(this.deadline(), () => this.deadlineCancelled())
      else this.stop(interruptedError(), callerCancel)
      return
    }
    if (this.stoppedBy === undefined) this.stoppedBy = "deadline"
    if (this.stoppedBy === "deadline") controller.abort(this.deadlineCancelled())
  }

  /** The core's task for function `index` (the `f` of its `forEach`), made as the task starts. */
  readonly task = (fn: Fn, index: number): Exit.Exit<unknown, unknown> | CallbackTask => {
    // Never call a function whose signal is already aborted (the core may start a task before it learns of the stop).
    if (this.halted) {
      if (!this.failFast) (this.skipped ??= new Uint8Array(this.fns.length))[index] = 1
      return interrupted
    }
    let controller = this.shared
    if (controller === undefined) {
      controller = new AbortController()
      this.own![index] = controller
      if (this.s.due !== undefined) dues.set(controller.signal, this.s.due)
    }
    let result: unknown
    let promise: PromiseLike<unknown>
    try {
      result = fn(controller.signal)
      // Inside the `try`: a `then` getter that throws is the function's failure, as `await` would make it; so is a
      // value that `instanceof` itself throws for (a `Proxy` whose `getPrototypeOf` throws).
      if (!isThenable(result)) {
        if (this.own !== undefined) this.own[index] = undefined
        // A function that ends after the caller's abort is interrupted, whether it returned a value or a promise.
        return this.halted ? interrupted : Exit.succeed(result)
      }
      // A native promise never fulfils with a thenable; any other thenable is adopted as `await` would (its value may
      // itself be a promise), at the cost of one more promise for that function only.
      promise = result instanceof Promise ? result : Promise.resolve(result)
    } catch (thrown) {
      if (this.own !== undefined) this.own[index] = undefined
      return this.failure(toError(thrown, index), index)
    }
    return new Call(this, index, promise, controller)
  }

  done(): void {
    if (this.onCallerAbort !== undefined) this.s.signal!.removeEventListener("abort", this.onCallerAbort)
  }

  /** Fail fast: what the run rejects with, the core having failed with `cause`. */
  rejection(cause: Cause.Cause<unknown>): unknown {
    if (this.stopped) return this.reason
    for (const reason of cause.reasons) {
      // The deadline passed while no function was running to learn of it.
      if (reason._tag === "Fail" && reason.error instanceof FanOutTimeoutError && reason.error.reason === "Deadline") {
        this.stop(this.deadline(), () => this.deadlineCancelled())
        return this.reason
      }
      if (reason._tag === "Die") return internalError(reason.defect)
    }
    return interruptedError()
  }

  /** Every signal the deadline aborts gets this one reason. */
  deadlineCancelled(): CancelledError {
    return this.deadlineCancel ??= new CancelledError({ _tag: "Deadline" }, this.deadline())
  }

  deadline(): FanOutTimeoutError {
    return this.deadlineError ??= new FanOutTimeoutError({
      reason: "Deadline",
      key: undefined,
      label: undefined,
      duration: Duration.millis(this.s.deadline ?? 0)
    })
  }

  /** The `Settled` of function `index` from its core outcome (object literals of one shape per status). */
  settled(outcome: Outcome.Outcome<unknown, unknown>, index: number): Settled<unknown> {
    const durationMillis = outcome.durationMillis
    const timedOut = this.timedOut?.[index]
    if (timedOut !== undefined) return { status: "timedOut", limit: "timeout", reason: timedOut, index, durationMillis }
    switch (outcome._tag) {
      case "Success":
        return { status: "fulfilled", value: outcome.value, index, durationMillis }
      case "Failure":
        return { status: "rejected", reason: outcome.error as Error, index, durationMillis }
      case "Defect":
        return { status: "rejected", reason: toError(outcome.defect, index), index, durationMillis }
      case "TimedOut":
        return this.stoppedBy === "caller"
          ? { status: "aborted", reason: abortError(this.s.signal!.reason), index, durationMillis }
          : { status: "timedOut", limit: "deadline", reason: this.deadline(), index, durationMillis }
      case "Interrupted":
        return {
          status: "aborted",
          reason: abortError(this.s.signal?.reason),
          index,
          durationMillis: this.skipped?.[index] === 1 ? 0 : durationMillis
        }
    }
  }
}

/**
 * One function whose promise is pending: an `Effect.callback` that resumes once the promise has settled. Interrupted
 * by the core, it ends once the promise has settled too (under `detach`, at once), as an interrupted fiber waits for
 * its finalizers.
 */
class Call implements CallbackTask {
  readonly [CallbackTaskId]: typeof CallbackTaskId = CallbackTaskId
  private resume: ((exit: Exit.Exit<unknown, unknown>) => void) | undefined = undefined
  private settled = false
  /** The core interrupted this function: it ends as interrupted, whatever its promise does. */
  private cancelled = false
  /** Settle, waiting: the function ran out of its `timeout`; it ends (timed out) once its promise has settled. */
  private late = false
  private timer: ReturnType<typeof setTimeout> | undefined = undefined
  /** The core's wait for this function's promise, once it has interrupted it. */
  private onSettled: (() => void) | undefined = undefined

  constructor(
    private readonly run: Run,
    private readonly index: number,
    private readonly promise: PromiseLike<unknown>,
    private readonly controller: AbortController
  ) {}

  /** Starts waiting for the function's promise (the engine's callback task); returns how the core cancels it. */
  start(resume: (exit: Exit.Exit<unknown, unknown>) => void): () => void {
    this.resume = resume
    const run = this.run
    this.promise.then(
      (value) => {
        if (this.settles()) this.end(run.halted ? interrupted : Exit.succeed(value))
      },
      (thrown) => {
        // An error that is not reported (the function was stopped first) is not made an Error.
        if (!this.settles()) return
        this.end(
          this.cancelled || this.late || run.halted ? interrupted : run.failure(toError(thrown, this.index), this.index)
        )
      }
    )
    if (run.pending !== undefined) {
      // The caller may have aborted while this very function was being called, before it could be given up on.
      if (run.halted) this.giveUp()
      else run.pending[this.index] = this
    }
    if (run.s.timeout !== undefined && !this.settled && !run.halted) {
      this.timer = setTimeout(() => this.timesOut(), run.s.timeout)
    }
    return () => this.cancel(() => resume(interrupted))
  }

  /** Whether this is the function's one settlement; it clears what watched the function. */
  private settles(): boolean {
    if (this.settled) return false
    this.settled = true
    if (this.timer !== undefined) clearTimeout(this.timer)
    const run = this.run
    if (run.own !== undefined) run.own[this.index] = undefined
    if (run.pending !== undefined) run.pending[this.index] = undefined
    return true
  }

  private end(exit: Exit.Exit<unknown, unknown>): void {
    if (this.onSettled !== undefined) return this.onSettled()
    this.resume!(this.late ? interrupted : exit)
  }

  private timesOut(): void {
    this.timer = undefined
    const run = this.run
    const error = functionTimeout(this.index, run.timeoutDuration!)
    if (run.failFast) {
      // The time-out stops the run. Waiting, this function ends (interrupted) once its promise has settled, as every
      // other one does now; under `detach` it ends now, with the time-out, its promise left to settle in the background.
      run.stop(error, siblingCancel(this.index))
      if (run.s.detach && this.settles()) this.resume!(Exit.fail(error))
      return
    }
    this.controller.abort(new CancelledError({ _tag: "Timeout" }, error))
    if (!run.halted) run.timedOut![this.index] = error
    // Waiting, the function keeps its slot until its promise settles; under `detach` it ends now, its promise left to
    // settle in the background.
    if (run.s.detach) this.giveUp()
    else this.late = true
  }

  /** Under `detach`: ends the function now, interrupted, its promise left to settle in the background. */
  giveUp(): void {
    if (this.settles()) this.resume!(interrupted)
  }

  private cancel(done: () => void): void {
    this.cancelled = true
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    this.run.cancelled(this.controller)
    if (this.settled || this.run.s.detach) return done()
    this.onSettled = done
  }
}

const failFast = (fns: ReadonlyArray<Fn>, options: Options | undefined, values: boolean): Promise<any> => {
  let run: Run
  try {
    const checked = checkFns(fns)
    const s = settings(options)
    if (s.signal !== undefined && s.signal.aborted) return Promise.reject(s.signal.reason)
    run = new Run(checked, s, true)
  } catch (error) {
    return Promise.reject(error)
  }
  const effect = runCallbacks("all", run.fns.length, (index) => run.task(run.fns[index]!, index), {
    concurrency: run.s.concurrency,
    deadline: run.s.deadline,
    detach: run.s.detach,
    discard: !values
  })
  return Effect.runPromiseExit(effect).then((exit) => {
    run.done()
    if (Exit.isSuccess(exit)) return values ? exit.value : undefined
    throw run.rejection(exit.cause)
  })
}

/** How a settle form reports each function. */
type Reporter<X> = (run: Run, outcome: Outcome.Outcome<unknown, unknown>, index: number) => X

const asSettled: Reporter<Settled<unknown>> = (run, outcome, index) => run.settled(outcome, index)

const asError: Reporter<Error | undefined> = (run, outcome, index) => {
  if (outcome._tag === "Success" && run.timedOut?.[index] === undefined) return undefined
  return (run.settled(outcome, index) as Exclude<Settled<unknown>, Fulfilled<unknown>>).reason
}

const settleWith = <X>(
  fns: ReadonlyArray<Fn>,
  options: Options | undefined,
  report: Reporter<X>
): Promise<Array<X>> => {
  let run: Run
  try {
    run = new Run(checkFns(fns), settings(options), false)
  } catch (error) {
    return Promise.reject(error)
  }
  const effect = runCallbacks("settle", run.fns.length, (index) => run.task(run.fns[index]!, index), {
    concurrency: run.s.concurrency,
    deadline: run.s.deadline
  })
  return Effect.runPromiseExit(effect).then((exit) => {
    run.done()
    if (Exit.isFailure(exit)) {
      for (const reason of exit.cause.reasons) if (reason._tag === "Die") throw internalError(reason.defect)
      throw interruptedError()
    }
    const outcomes = exit.value
    const out: Array<X> = new Array(outcomes.length)
    for (let i = 0; i < outcomes.length; i++) out[i] = report(run, outcomes[i]!, i)
    return out
  })
}
