/**
 * The Promise facade (`effect-fanout/promise`): fan-out for code that is not written in Effect yet, with the
 * semantics of `FanOut.all` and `FanOut.settle` underneath (each function is a task of the core's engine).
 *
 * - `runAsync(fns)` / `all(fns)` — **fail fast**: run every function concurrently; the first error aborts every other
 *   function's `AbortSignal` (with that error as the signal's `reason`) and the promise rejects with that error.
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
 * `timeout`, the run's `deadline`, or the caller's `signal`. The signal's `reason` is what stopped it: the first
 * error, a `FanOutTimeoutError`, or the caller's `signal.reason`. A function must not rely on its signal once it has
 * returned: for speed, the functions of one run share one signal (except under `timeout` in the settle forms, where
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
 * Cost: a function is one callback task of the core's engine (no fiber) plus one promise callback;
 * `scripts/bench/promise.ts` compares it with `Promise.all`, `Promise.allSettled` and p-map.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import { setMaxListeners } from "node:events"
import { FanOutTimeoutError, InvalidOptionError } from "./FanOutError.js"
import { formatDuration } from "./internal/duration.js"
import * as engine from "./internal/engine.js"
import * as internal from "./internal/fanOut.js"
import { show } from "./internal/options.js"
import * as stack from "./internal/stack.js"
import type * as Outcome from "./Outcome.js"

export {
  /**
   * The error of a function that ran past its `timeout` (`reason: "Timeout"`, `key`: the function's index, message
   * "function 2 timed out after 100ms") or of a run that passed its `deadline` (`reason: "Deadline"`, message
   * "fan-out deadline of 200ms passed"). It is also the `reason` of the aborted signals.
   *
   * @since 0.1.0
   * @category errors
   */
  FanOutTimeoutError
} from "./FanOutError.js"

// ---------------------------------------------------------------------------------------------------------------
// models

/**
 * A function the facade runs: it gets an `AbortSignal` and returns a value or a promise of one.
 *
 * @since 0.1.0
 * @category models
 */
export type Fn<A = unknown> = (signal: AbortSignal) => PromiseLike<A> | A

type ValueOf<F> = F extends (...args: any) => infer R ? Awaited<R> : never

/**
 * The results of `all` over `T`: a tuple of functions gives a tuple of their awaited results, an array an array.
 *
 * @since 0.1.0
 * @category models
 */
export type Results<T extends ReadonlyArray<Fn>> = { -readonly [K in keyof T]: ValueOf<T[K]> }

/**
 * What every settled result carries.
 *
 * @since 0.1.0
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
 * @since 0.1.0
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
 * @since 0.1.0
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
 * @since 0.1.0
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
 * @since 0.1.0
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
 * @since 0.1.0
 * @category models
 */
export type Settled<A> = Fulfilled<A> | Rejected | TimedOut | Aborted

/**
 * The results of `settle` over `T`: one `Settled` per function, a tuple for a tuple.
 *
 * @since 0.1.0
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
 * @since 0.1.0
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
   * ignores its signal is waited for unless `detach`. A run listens to this signal until it settles (one listener, two
   * for the fail-fast forms; none is left behind); Node warns past 10 listeners on one signal, so a signal shared by
   * many runs at once (a server's shutdown signal) may want `events.setMaxListeners(n, signal)` from its owner.
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
 * @since 0.1.0
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
 * @since 0.1.0
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
 * @since 0.1.0
 * @category settle
 */
export const settle = <const T extends ReadonlyArray<Fn>>(
  fns: T,
  options?: Options
): Promise<SettledResults<T>> => settleImpl(fns, options, asSettled) as Promise<SettledResults<T>>

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
 * @since 0.1.0
 * @category settle
 */
export const runAsyncAllowErrors = (
  fns: ReadonlyArray<Fn>,
  options?: Options
): Promise<Array<Error | undefined>> => settleImpl(fns, options, asError)

// ---------------------------------------------------------------------------------------------------------------
// input

interface Settings {
  readonly concurrency: number | "unbounded"
  /** Milliseconds, `undefined` for none. */
  readonly timeout: number | undefined
  readonly deadline: number | undefined
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
  let concurrency: number | "unbounded" = "unbounded"
  if (o.concurrency !== undefined && o.concurrency !== Infinity) {
    if (typeof o.concurrency !== "number") {
      throw new TypeError(
        `${prefix} option \`concurrency\` must be a positive integer or Infinity, got ${show(o.concurrency)}`
      )
    }
    if (!Number.isInteger(o.concurrency) || o.concurrency < 1) {
      throw new RangeError(
        `${prefix} option \`concurrency\` must be a positive integer or Infinity, got ${o.concurrency}`
      )
    }
    concurrency = o.concurrency
  }
  const signal = o.signal
  if (
    signal !== undefined &&
    (typeof signal !== "object" || signal === null || typeof (signal as AbortSignal).aborted !== "boolean" ||
      typeof (signal as AbortSignal).addEventListener !== "function" ||
      typeof (signal as AbortSignal).removeEventListener !== "function")
  ) {
    throw new TypeError(`${prefix} option \`signal\` must be an AbortSignal, got ${show(signal)}`)
  }
  if (o.detach !== undefined && typeof o.detach !== "boolean") {
    throw new TypeError(`${prefix} option \`detach\` must be true or false, got ${show(o.detach)}`)
  }
  return {
    concurrency,
    timeout: millis(o.timeout, "timeout"),
    deadline: millis(o.deadline, "deadline"),
    signal: signal as AbortSignal | undefined,
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
  reason instanceof Error ? reason : new Error(`aborted: ${show(reason)}`, { cause: reason })

// ---------------------------------------------------------------------------------------------------------------
// running

/** Marks a function's own timeout in the settle forms, so that a function's own errors are never taken for it. */
class OwnTimeout {
  constructor(readonly error: FanOutTimeoutError) {}
}

/** A plain `Exit`, never an Effect run inside the fan-out's span: the caller gets back the very `Error` thrown. */
const failWith = (error: unknown): Exit.Exit<never, unknown> => Exit.fail(error)

const interrupted: Exit.Exit<never, never> = Exit.interrupt(FiberId.none)

const noop = (): void => {}

const isThenable = (u: unknown): u is PromiseLike<unknown> =>
  (typeof u === "object" || typeof u === "function") && u !== null && typeof (u as any).then === "function"

/**
 * The state of one run, shared by its tasks.
 *
 * How a run maps onto the core: each function is one callback task (`engine.CallbackTask`, no fiber) of the core's
 * fail-fast or settle fan-out, and the core decides what starts, when to stop, who is cut off at the deadline, waits
 * for the cancelled functions, and builds the outcomes. The facade adds what the core cannot know:
 *
 * - an abort **reason**: the engine cancels a task without saying why, so the facade aborts the signals itself, at the
 *   moment it learns why: a function's error or own timeout (it sees them first), the caller's abort (it listens, and
 *   its listener runs before the runtime's), and otherwise the deadline, the only stop the core decides alone;
 * - a function's own **timeout**: fail fast, it is reported at once (it stops the run) while its promise may still be
 *   pending, so the facade counts those promises and waits for them once the core has returned (unless `detach`);
 * - settle under `detach`, the caller's abort: the core is not stopped (the finished results are kept), so the facade
 *   gives up on the running functions itself.
 *
 * A cancelled or timed-out function ends (`done`) once its promise has settled, so the core's waiting is waiting for
 * the promises, and a function holds its `concurrency` slot until then; under `detach` it ends at once and its promise
 * settles in the background.
 */
class Run implements engine.CallbackTask {
  /** Fail fast: set once the run has begun to fail; `reason` is then its rejection and every signal's reason. */
  stopped = false
  reason: unknown = undefined
  /** What stopped a settle run early, first come first served. */
  stoppedBy: "caller" | "deadline" | undefined = undefined
  deadlineError: FanOutTimeoutError | undefined = undefined
  /** One signal for the run; `undefined` when each function has its own (settle with `timeout`). */
  readonly shared: AbortController | undefined
  /** Settle with `timeout`: the controller of each function whose promise is pending. */
  readonly own: Array<AbortController | undefined> | undefined
  readonly timeoutDuration: Duration.Duration | undefined
  /** Promises returned by the functions that have not settled yet, and who waits for there to be none. */
  private inFlight = 0
  private onIdle: (() => void) | undefined = undefined
  private readonly onCallerAbort: (() => void) | undefined = undefined
  /** Settle with `detach` and a caller's signal: how to give up on each function whose promise is pending. */
  private readonly giveUps: Array<(() => void) | undefined> | undefined

  constructor(readonly fns: ReadonlyArray<Fn>, readonly s: Settings, readonly failFast: boolean) {
    const perFunction = !failFast && s.timeout !== undefined
    this.shared = perFunction ? undefined : new AbortController()
    // Every function may listen to the shared signal: dozens of listeners are expected, not a leak.
    if (this.shared !== undefined && fns.length > 1) setMaxListeners(0, this.shared.signal)
    this.own = perFunction ? new Array(fns.length).fill(undefined) : undefined
    this.timeoutDuration = s.timeout === undefined ? undefined : Duration.millis(s.timeout)
    this.giveUps = !failFast && s.detach && s.signal !== undefined ? new Array(fns.length).fill(undefined) : undefined
    if (s.signal !== undefined && !s.signal.aborted) {
      const signal = s.signal
      this.onCallerAbort = () => this.callerAborts(signal.reason)
      signal.addEventListener("abort", this.onCallerAbort, { once: true })
    }
  }

  get callerAborted(): boolean {
    return this.s.signal !== undefined && this.s.signal.aborted
  }

  /** Fail fast: the first cause of failure wins; it aborts every function's signal. */
  stop(reason: unknown): void {
    if (this.stopped) return
    this.stopped = true
    this.reason = reason
    this.shared!.abort(reason)
  }

  private callerAborts(reason: unknown): void {
    // Fail fast: the Effect runtime, given the same signal, interrupts the fan-out; the facade gives the reason.
    if (this.failFast) return this.stop(reason)
    // Settle: the finished results are kept, so the fan-out is not interrupted: every running function is aborted and
    // ends as `aborted` once it has settled (under `detach`, at once); the functions not called yet end so without
    // being called.
    if (this.stoppedBy === undefined) this.stoppedBy = "caller"
    this.abortRunning(reason)
    if (this.giveUps !== undefined) {
      for (const giveUp of this.giveUps) giveUp?.()
    }
  }

  private abortRunning(reason: unknown): void {
    if (this.shared !== undefined) this.shared.abort(reason)
    else for (const controller of this.own!) controller?.abort(reason)
  }

  /** Settle: a function that ends after the caller's abort is `aborted`, whatever it did. */
  private settleAborted(): boolean {
    return !this.failFast && this.stoppedBy === "caller"
  }

  private failure(error: Error): Exit.Exit<never, unknown> {
    if (this.failFast) {
      this.stop(error)
      return failWith(error)
    }
    return this.settleAborted() ? interrupted : failWith(error)
  }

  /**
   * The core cancelled a running function. Every stop but the deadline came from the facade, which has aborted the
   * signals with its reason already.
   */
  private cancelled(controller: AbortController): void {
    if (this.failFast) {
      if (!this.stopped) {
        this.stop(this.s.deadline !== undefined ? this.deadline() : new Error(`${prefix} the run was interrupted`))
      }
      return
    }
    if (this.stoppedBy === undefined) this.stoppedBy = "deadline"
    if (this.stoppedBy === "deadline") controller.abort(this.deadline())
  }

  /**
   * Starts function `index` (the run is the core's callback task for every function): reports its end to `done`,
   * returns its canceler.
   */
  register(done: engine.Done, index: number): () => void {
    // Never call a function whose signal is already aborted (the core may start a task before it learns of the stop).
    if (this.failFast ? this.stopped : this.settleAborted() || this.callerAborted) {
      done.skip()
      return noop
    }
    let controller = this.shared
    if (controller === undefined) {
      controller = new AbortController()
      this.own![index] = controller
    }
    let result: unknown
    let thenable: boolean
    try {
      result = this.fns[index]!(controller.signal)
      // Inside the `try`: a `then` getter that throws is the function's failure, as `await` would make it.
      thenable = isThenable(result)
    } catch (thrown) {
      if (this.own !== undefined) this.own[index] = undefined
      done.exit(this.failure(toError(thrown, index)))
      return noop
    }
    if (thenable) return this.watch(index, result as PromiseLike<unknown>, controller, done)
    if (this.own !== undefined) this.own[index] = undefined
    // Settle: a function that ends after the caller's abort is `aborted`, whether it returned a value or a promise.
    if (this.settleAborted()) done.exit(interrupted)
    else done.succeed(result)
    return noop
  }

  private watch(
    index: number,
    promise: PromiseLike<unknown>,
    controller: AbortController,
    done: engine.Done
  ): () => void {
    this.inFlight++
    let settled = false
    // Once cancelled, the function ends as interrupted whatever its promise does, as an interrupted fiber would.
    let cancelled = false
    // Settle, waiting: the end of a function that ran out of time, reported once its promise has settled.
    let timedOut: Exit.Exit<never, unknown> | undefined = undefined
    let timer: ReturnType<typeof setTimeout> | undefined = undefined
    /** Whether this is the function's one settlement: its promise's callback, or the throw of its `then`, once. */
    const settles = (): boolean => {
      if (settled) return false
      settled = true
      if (timer !== undefined) clearTimeout(timer)
      if (this.own !== undefined) this.own[index] = undefined
      if (this.giveUps !== undefined) this.giveUps[index] = undefined
      return true
    }
    /** Reports the end (`exit`; `undefined`: the promise's `value`), once the promise has settled. */
    const end = (exit: Exit.Exit<unknown, unknown> | undefined, value?: unknown): void => {
      if (timedOut !== undefined) done.exit(timedOut)
      else if (cancelled) done.exit(interrupted)
      else if (exit === undefined) done.succeed(value)
      else done.exit(exit)
      if (--this.inFlight === 0 && this.onIdle !== undefined) this.onIdle()
    }
    try {
      // A native promise never fulfils with a thenable; any other thenable is adopted as `await` would (its value may
      // itself be a promise), at the cost of one more promise for that function only. Inside the `try`: `instanceof`
      // itself throws for some values (a `Proxy` whose `getPrototypeOf` throws).
      const adopted = promise instanceof Promise ? promise : Promise.resolve(promise)
      adopted.then(
        (value) => {
          if (settles()) end(this.settleAborted() ? interrupted : undefined, value)
        },
        (thrown) => {
          // An error that is not reported (the function was stopped first) is not made an Error.
          if (!settles()) return
          end(
            cancelled || timedOut !== undefined || (this.failFast && this.stopped)
              ? interrupted
              : this.failure(toError(thrown, index))
          )
        }
      )
    } catch (thrown) {
      if (settles()) end(this.failure(toError(thrown, index)))
      return noop
    }
    if (settled) return noop
    // Once the run has stopped waiting for a function (given up on, or cancelled), its time limit has nothing left to
    // do: its timer is cleared then (a closure per function to do it would cost every function, so it is written out).
    if (this.giveUps !== undefined) {
      const giveUp = () => {
        cancelled = true
        if (timer !== undefined) clearTimeout(timer)
        timer = undefined
        done.exit(interrupted)
      }
      // The caller may have aborted while this very function was being called, before it could be given up on.
      if (this.settleAborted()) {
        giveUp()
        return noop
      }
      this.giveUps[index] = giveUp
    }
    if (this.s.timeout !== undefined) {
      const duration = this.timeoutDuration!
      timer = setTimeout(() => {
        timer = undefined
        if (settled || cancelled) return
        const error = functionTimeout(index, duration)
        if (this.failFast) {
          // Reported at once, since it stops the run; the run still waits for this promise (see `idle`).
          this.stop(error)
          done.exit(failWith(error))
          return
        }
        controller.abort(error)
        const exit = this.settleAborted() ? interrupted : failWith(new OwnTimeout(error))
        // Waiting, the function keeps its slot until its promise settles, as a core task that timed out is interrupted
        // and waited for; under `detach` it ends now, its promise left to settle in the background.
        if (this.s.detach) done.exit(exit)
        else timedOut = exit
      }, this.s.timeout)
    }
    return () => {
      if (settled) return
      cancelled = true
      if (timer !== undefined) clearTimeout(timer)
      timer = undefined
      this.cancelled(controller)
      if (this.s.detach) done.exit(interrupted)
    }
  }

  /** Whether a promise returned by a function has not settled yet. */
  get busy(): boolean {
    return this.inFlight > 0
  }

  /** Resolves once every promise the functions returned has settled. */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve()
    return new Promise((resolve) => {
      this.onIdle = resolve
    })
  }

  done(): void {
    if (this.onCallerAbort !== undefined) this.s.signal!.removeEventListener("abort", this.onCallerAbort)
  }

  /** The core's shape and settings for this run. */
  core(): { shape: internal.Shape; settings: internal.Settings } {
    const o: { concurrency: number | "unbounded"; deadline?: Duration.Duration } = { concurrency: this.s.concurrency }
    if (this.s.deadline !== undefined) o.deadline = Duration.millis(this.s.deadline)
    return { shape: internal.shapeOfCallbacks(this.fns.length, this), settings: internal.settings(o) }
  }

  /** Fail fast: the core failed with `cause`; abort what is still running and say what to reject with. */
  failed(cause: Cause.Cause<unknown>): unknown {
    const failure = Cause.failureOption(cause)
    if (failure._tag === "Some" && failure.value instanceof FanOutTimeoutError && failure.value.reason === "Deadline") {
      this.stop(failure.value)
    }
    if (this.stopped) return this.reason
    for (const defect of Cause.defects(cause)) return internalError(defect)
    return new Error(`${prefix} the run was interrupted`)
  }

  /** Settle: the core's outcomes; the ones it cut off at the deadline get their signal aborted. */
  cut(outcomes: ReadonlyArray<Outcome.Outcome<unknown, unknown> | undefined>): void {
    for (const outcome of outcomes) {
      if (outcome !== undefined && outcome._tag === "TimedOut" && outcome.reason === "Deadline") {
        if (this.stoppedBy === undefined) this.stoppedBy = "deadline"
        const error = this.deadline()
        if (this.shared !== undefined) return this.shared.abort(error)
        this.own![outcome.key as number]?.abort(error)
      }
    }
  }

  deadline(): FanOutTimeoutError {
    return this.deadlineError ??= new FanOutTimeoutError({
      reason: "Deadline",
      key: undefined,
      label: undefined,
      duration: Duration.millis(this.s.deadline ?? 0)
    })
  }

  /**
   * The `Settled` of a function that did not fulfil, from its core outcome (object literals of one shape per status).
   */
  settled(outcome: Outcome.NotSuccess<unknown>): Exclude<Settled<unknown>, Fulfilled<unknown>> {
    const index = outcome.key as number
    const durationMillis = outcome.durationMillis
    switch (outcome._tag) {
      case "Failure":
        return outcome.error instanceof OwnTimeout
          ? { status: "timedOut", limit: "timeout", reason: outcome.error.error, index, durationMillis }
          : { status: "rejected", reason: outcome.error as Error, index, durationMillis }
      case "Defect":
        return { status: "rejected", reason: toError(outcome.defect, index), index, durationMillis }
      case "TimedOut":
        return this.stoppedBy === "caller"
          ? { status: "aborted", reason: abortError(this.s.signal!.reason), index, durationMillis }
          : { status: "timedOut", limit: "deadline", reason: this.deadline(), index, durationMillis }
      case "Interrupted":
        return { status: "aborted", reason: abortError(this.s.signal?.reason), index, durationMillis }
    }
  }
}

/** An option the core refused is a `RangeError`; anything else that escaped is the facade's bug, reported as is. */
const internalError = (defect: unknown): unknown =>
  defect instanceof InvalidOptionError ? new RangeError(defect.message) : defect

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
  const signal = run.s.signal
  const effect = Effect.suspend(() => {
    const core = run.core()
    return internal.all(core.shape, core.settings)
  })
  return Effect.runPromiseExit(effect, signal === undefined ? undefined : { signal }).then((exit) => {
    if (Exit.isSuccess(exit)) {
      run.done()
      return values ? exit.value : undefined
    }
    const rejection = run.failed(exit.cause)
    run.done()
    if (run.s.detach || !run.busy) throw rejection
    return run.idle().then(() => {
      throw rejection
    })
  })
}

/** How a settle form reports each function: `fulfilled` straight from the core's report, the rest from outcomes. */
interface Reporter<X> {
  readonly fulfilled: (value: unknown, index: number, durationMillis: number) => X
  readonly other: (run: Run, outcome: Outcome.NotSuccess<unknown>) => X
}

const asSettled: Reporter<Settled<unknown>> = {
  fulfilled: (value, index, durationMillis) => ({ status: "fulfilled", value, index, durationMillis }),
  other: (run, outcome) => run.settled(outcome)
}

const asError: Reporter<Error | undefined> = {
  fulfilled: () => undefined,
  other: (run, outcome) => run.settled(outcome).reason
}

const settleImpl = <X>(
  fns: ReadonlyArray<Fn>,
  options: Options | undefined,
  reporter: Reporter<X>
): Promise<Array<X>> => {
  let run: Run
  try {
    const checked = checkFns(fns)
    run = new Run(checked, settings(options), false)
  } catch (error) {
    return Promise.reject(error)
  }
  if (run.callerAborted) run.stoppedBy = "caller"
  // The core's settle, read from its report: an outcome object only for a function that did not fulfil.
  let shape: internal.Shape
  const effect = Effect.suspend(() => {
    const core = run.core()
    shape = core.shape
    return internal.runObserved(
      { mode: "settle", shape, settings: core.settings, failFast: false, onExit: () => false },
      (finished) => [Effect.succeed(finished)]
    )
  })
  return Effect.runPromiseExit(effect).then((exit) => {
    run.done()
    if (Exit.isFailure(exit)) {
      for (const defect of Cause.defects(exit.cause)) throw internalError(defect)
      throw new Error(`${prefix} the run was interrupted`)
    }
    const { now, prepared, report } = exit.value
    const n = fns.length
    const others: Array<Outcome.NotSuccess<unknown> | undefined> = new Array(n)
    for (let i = 0; i < n; i++) {
      if (report.status[i] !== engine.Succeeded) {
        others[i] = internal.outcomeOf(shape, prepared, report, i, now) as Outcome.NotSuccess<unknown>
      }
    }
    run.cut(others)
    const out: Array<X> = new Array(n)
    for (let i = 0; i < n; i++) {
      const outcome = others[i]
      out[i] = outcome === undefined
        ? reporter.fulfilled(report.results[i], i, internal.durationOf(report, i, now))
        : reporter.other(run, outcome)
    }
    // Nothing to wait for here: waiting, a function ends only once its promise has settled; under `detach` its
    // promise is left to settle in the background.
    return out
  })
}
