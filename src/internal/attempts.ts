/**
 * Each task as the engine runs it. A task that is its one attempt runs as it is (its `timeout` is set by the engine
 * on the task's own fiber); with `retry` or `hedge`, each attempt runs on a fiber of its own, limited by the same
 * alarms, and the task counts its attempts.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Schedule from "effect/Schedule"
import type { Refusal, Type as AttemptType } from "../Attempt.js"
import type { Budget } from "../Budget.js"
import { FanOutTimeoutError } from "../FanOutError.js"
import * as cancel from "./cancel.js"
import { clear } from "./engine/alarms.js"
import type { CallbackTask, Timers } from "./engine/run.js"
import * as hedging from "./hedge.js"
import type { Settings } from "./options.js"
import type { Shape } from "./shape.js"

type AnyEffect = Effect.Effect<any, any, any>

/** The tasks of one fan-out, prepared. */
export interface Prepared {
  /** Task `index` as the engine runs it. */
  readonly task: (index: number, timers: Timers) => AnyEffect | CallbackTask
  /** The per-task time limit the engine sets on each task's fiber, when a task is its one attempt. */
  readonly engineTimeout: number | undefined
  /** How many attempts task `index` made (1 for a task that started and is its one attempt). */
  readonly attempts: (index: number) => number
  /**
   * Whether `exit` is task `index` running out of its own `timeout`: a time-out error of a fan-out nested inside the
   * task is told apart by identity and stays that task's `Failure`.
   */
  readonly ownTimeout: (exit: Exit.Exit<unknown, unknown>) => boolean
  /**
   * Tells task `index`'s budget how its one attempt ended (its time limit, if one stopped it): set with a budget and
   * neither `retry` nor `hedge`, when the task is its one attempt.
   */
  readonly ended?: ((index: number, exit: Exit.Exit<unknown, unknown>, limit: string | undefined) => void) | undefined
  /** Whether the retry and hedge budget refused task `index` an attempt (absent without a budget). */
  readonly refused?: ((index: number) => "budget" | undefined) | undefined
  /** The retries and the hedges task `index` started (absent unless an `AttemptHook` listens). */
  readonly kinds?: ((index: number) => { readonly retries: number; readonly hedges: number }) | undefined
  /**
   * Why task `index`, which ended with `tag` (its outcome's), got no further attempt: its budget, the attempt limit
   * (its schedule or `hedge.max` gave none), or the deadline (it passed while a retry was waiting for its delay).
   * Absent without `retry` or `hedge`.
   */
  readonly refusal?: ((index: number, tag: string, limit: string | undefined) => Refusal | undefined) | undefined
}

/** What the fan-out's observer hears of each attempt as it happens, when it listens (task spans, attempt metrics). */
export interface AttemptHook {
  /** Task `index` starts an attempt of `type`. */
  readonly started: (index: number, type: AttemptType) => void
  /** Task `index`'s schedule decided on a retry after `millis` (and its budget, if any, allowed it). */
  readonly delayed: (index: number, millis: number) => void
}

/** A retry the budget refused: carries the attempt's error, which the task then fails with. */
/** An attempt's end, told to the budget: a failure (typed or a defect) takes a token, a success gives some back. */
const tell = (budget: Budget, exit: Exit.Exit<unknown, unknown>): void => {
  if (exit._tag === "Success") budget.onSuccess()
  else if (!Cause.hasInterruptsOnly(exit.cause)) budget.onFailure()
}

/** `attempt`, telling the budget its end (a hedged task's attempts are told by the hedge, which sees each end). */
const accounted = (attempt: AnyEffect, budget: Budget): AnyEffect =>
  Effect.onExit(attempt, (exit) => {
    tell(budget, exit)
    return Effect.void
  })

/** A hook around each prepared task: the task's span, when the fan-out makes one per task. */
export type Around = (index: number, task: AnyEffect, attempts: () => number) => AnyEffect

const one = () => 1

/** Prepares the tasks of `shape` for the options `s`; `hook`, when given, hears of every attempt. */
export const prepare = (shape: Shape, s: Settings, around: Around | undefined, hook?: AttemptHook): Prepared => {
  if (shape.callbacks !== undefined) {
    return { task: shape.callbacks, engineTimeout: s.timeout, attempts: one, ownTimeout: () => false }
  }
  const counted = s.retry !== undefined || s.hedge !== undefined
  if (!counted) {
    const task = around === undefined
      ? (index: number) => shape.task(index)
      : (index: number) => around(index, shape.task(index), one)
    if (s.budget === undefined) return { task, engineTimeout: s.timeout, attempts: one, ownTimeout: () => false }
    // Each task is its one attempt: its end, as the ledger records it, is told to its budget, with no wrapper.
    const budgets = shape.keys.map((key, index) => s.budget!(key, index))
    const ended = (index: number, exit: Exit.Exit<unknown, unknown>, limit: string | undefined) => {
      const budget = budgets[index]
      if (budget === undefined) return
      // Its own time-out is the attempt's failure; the deadline cutting it off is not the downstream's.
      if (exit._tag === "Failure" && limit !== undefined) {
        if (limit === "Timeout") budget.onFailure()
      } else tell(budget, exit)
    }
    return { task, engineTimeout: s.timeout, attempts: one, ownTimeout: () => false, ended }
  }
  const n = shape.keys.length
  const tracking = hook !== undefined
  const counts: Array<number> = new Array(n).fill(0)
  // Kept only while someone listens: the type of task `index`'s next attempt, set as a retry or a hedge is decided
  // on; its retries and hedges; whether it waits for a retry's delay (the deadline passing then refused that retry).
  const next: Array<AttemptType> = tracking ? new Array(n).fill("original") : []
  const retries: Array<number> = tracking ? new Array(n).fill(0) : []
  const hedges: Array<number> = tracking ? new Array(n).fill(0) : []
  const waiting: Array<boolean> = tracking ? new Array(n).fill(false) : []
  const refused: Array<"budget" | undefined> = s.budget === undefined ? [] : new Array(n)
  // Each task's budget, read before any task starts: a function giving something else fails the fan-out at once.
  const budgets = s.budget === undefined ? undefined : shape.keys.map((key, index) => s.budget!(key, index))
  // Each task's hedging, when the delay is given per task (one per downstream): read before any task starts, as
  // the budgets are, so that a function giving something else fails the fan-out at once.
  const hedgings = s.hedge?.delayOf === undefined
    ? undefined
    : shape.keys.map((key, index) => s.hedge!.delayOf!(key, index))
  const timeouts = new WeakSet<object>()
  const timeoutError = (index: number): FanOutTimeoutError => {
    const error = new FanOutTimeoutError({
      reason: "Timeout",
      key: shape.keys[index],
      label: shape.labels[index],
      duration: Duration.millis(s.timeout!)
    })
    timeouts.add(error)
    return error
  }
  const task = (index: number, timers: Timers): AnyEffect => {
    const body = shape.task(index)
    const budget = budgets?.[index]
    const hedge = hedgings?.[index] ?? s.hedge
    let attempt: AnyEffect = Effect.suspend(
      tracking
        ? () => {
          const type = next[index]!
          counts[index]!++
          waiting[index] = false
          if (type === "retry") retries[index]!++
          else if (type === "hedge") hedges[index]!++
          hook.started(index, type)
          return body
        }
        : () => {
          counts[index]!++
          return body
        }
    )
    if (s.timeout !== undefined) attempt = limited(attempt, s.timeout, timers, () => timeoutError(index))
    if (budget !== undefined && hedge === undefined) attempt = accounted(attempt, budget)
    const told = budget === undefined || hedge === undefined
      ? undefined
      : (exit: Exit.Exit<unknown, unknown>) => tell(budget, exit)
    // Without a budget and without anyone listening, retries and hedges are what they were: nothing to ask or to tell.
    const plain = budget === undefined && !tracking
    if (hedge !== undefined) {
      if (plain) attempt = hedging.hedgeWith(attempt, hedge, timers)
      else {
        // Asked before each backup: whether it may start (the budget's leave), and, when it does, that it is a hedge.
        const backup = () => {
          if (budget !== undefined && !budget.allows) {
            refused[index] = "budget"
            return false
          }
          if (tracking) next[index] = "hedge"
          return true
        }
        const inner = attempt
        attempt = tracking
          // A hedging round's first attempt is the task's first, or a retry.
          ? Effect.suspend(() => {
            next[index] = counts[index] === 0 ? "original" : "retry"
            return hedging.hedgeWith(inner, hedge, timers, backup, told)
          })
          : hedging.hedgeWith(inner, hedge, timers, backup, told)
      }
    }
    if (s.retry !== undefined) {
      if (plain) attempt = Effect.retry(attempt, s.retry)
      else {
        // The budget is asked once the schedule has decided on another attempt, before its delay: a refusal ends
        // the schedule there, and the retry fails with the attempt's own failure.
        const schedule = Schedule.while(s.retry, ({ duration }) => {
          if (budget !== undefined && !budget.allows) {
            refused[index] = "budget"
            return false
          }
          if (tracking) {
            next[index] = "retry"
            waiting[index] = true
            hook.delayed(index, Duration.toMillis(duration))
          }
          return true
        })
        attempt = Effect.retry(attempt, schedule as Schedule.Schedule<any, any, any>)
      }
    }
    return around === undefined ? attempt : around(index, attempt, () => counts[index]!)
  }
  const ownTimeout = (exit: Exit.Exit<unknown, unknown>) => {
    if (exit._tag === "Success") return false
    for (const reason of exit.cause.reasons) {
      if (reason._tag === "Fail") return typeof reason.error === "object" && timeouts.has(reason.error as object)
    }
    return false
  }
  const retrying = s.retry !== undefined || s.hedge !== undefined
  const refusal = (index: number, tag: string, limit: string | undefined): Refusal | undefined => {
    if (refused[index] !== undefined) return refused[index]
    if (!retrying) return undefined
    if (tag === "TimedOut" && limit === "Deadline") return waiting[index] ? "deadline" : undefined
    // A typed failure, or an attempt's own time-out, is what a retry or a hedge is for: none came.
    return tag === "Failure" || (tag === "TimedOut" && limit === "Timeout") ? "limit" : undefined
  }
  return {
    task,
    engineTimeout: undefined,
    attempts: (index) => counts[index]!,
    ownTimeout,
    refused: s.budget === undefined ? undefined : (index) => refused[index],
    kinds: tracking ? (index) => ({ retries: retries[index]!, hedges: hedges[index]! }) : undefined,
    refusal
  }
}

/**
 * `attempt` on a fiber of its own, interrupted once `millis` have passed, when it fails with `error()`: the limit
 * runs on the fan-out's alarms, so it costs no timer fiber of its own. An attempt that ends as its alarm rings (it
 * could not be interrupted in time) is still a time-out. Interrupting the task interrupts the attempt and waits.
 */
export const limited = <A, E, R>(
  attempt: Effect.Effect<A, E, R>,
  millis: number,
  timers: Timers,
  error: () => E
): Effect.Effect<A, E, R> =>
  Effect.withFiber((task) =>
    // The attempt starts inside the registration, so that the task is waiting for it before it runs.
    Effect.callback<A, E>((resume) => {
      const fiber = Effect.runForkWith(task.context)(attempt as Effect.Effect<A, E>)
      const exit = fiber.pollUnsafe()
      if (exit !== undefined) return resume(exit)
      let timedOut = false
      const alarm = timers.alarms().set(millis, () => {
        timedOut = true
        fiber.interruptUnsafe(task.id, cancel.timeout)
      })
      fiber.addObserver((exit) => {
        clear(alarm)
        resume(timedOut ? Exit.fail(error()) : exit)
      })
      return Effect.callback<void>((done) => {
        clear(alarm)
        fiber.interruptUnsafe(task.id, timers.stopped())
        fiber.addObserver(() => done(Effect.void))
      })
    })
  )
