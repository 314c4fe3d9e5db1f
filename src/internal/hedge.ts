/**
 * Hedged requests: when an attempt is slow, start another and keep whichever succeeds first.
 *
 * A new attempt starts when the latest one has run for `delay` without an answer, and at once when an attempt fails;
 * at most `max` attempts run in all. The first success wins and the attempts still running are interrupted (and
 * waited for). The task fails only when every attempt has failed, with all their causes (the first attempt's first);
 * when some failed with typed errors, the attempts that only died are left out.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import type { HedgeOptions } from "../FanOut.js"
import { InvalidOptionError } from "../FanOutError.js"
import { hedgeLost } from "./cancel.js"
import { Alarms, clear, longestDelay } from "./engine/alarms.js"
import type { Alarm } from "./engine/alarms.js"
import type { Timers } from "./engine/run.js"
import * as options from "./options.js"
import type { Hedge } from "./options.js"
import { show } from "./show.js"

/**
 * The cause of a hedge whose every attempt failed: each attempt's reasons, the first attempt's first. A typed failure
 * wins over a crash, as in outcomes: when some attempts failed with typed errors, the attempts that only died (or
 * were interrupted) are left out, because Effect 4 reads any cause with a `Die` in it as a defect (`Effect.catch`,
 * `Effect.retry` leave it alone), and a backup that crashed would make the typed failures of the others unrecoverable.
 * `Cause.fromReasons`, not `Cause.combine`, which would merge equal failures of different attempts into one.
 */
const failure = <E>(causes: ReadonlyArray<Cause.Cause<E>>): Cause.Cause<E> => {
  const typed = causes.filter(Cause.hasFails)
  const kept = typed.length > 0 ? typed : causes
  return kept.length === 1 ? kept[0]! : Cause.fromReasons(kept.flatMap((cause) => cause.reasons))
}

/**
 * Runs `attempt` hedged: a backup starts once the latest attempt has run for `hedge.delay` milliseconds, and at once
 * after an attempt fails, at most `hedge.max` attempts in all (`options.hedge` bounds it by
 * {@link options.maxHedgeAttempts}, 100: each attempt may be a fiber running at once). The first success wins; the
 * attempts still running are then interrupted and waited for. It fails only when every attempt has failed, with
 * their causes combined ({@link failure}). Each attempt runs on a fiber of its own, with the task's context; the
 * delays are alarms of the fan-out's queue (`timers`), so hedging costs no timer fiber per attempt, and a delay past
 * {@link longestDelay} (an infinite one) sets none: only failures start backups. Interrupting the task interrupts
 * every attempt and waits for them all.
 */
export const hedgeWith = <A, E, R>(
  attempt: Effect.Effect<A, E, R>,
  hedge: Hedge,
  timers: Timers,
  allow?: (() => boolean) | undefined,
  /** Told every attempt's end (the retry budget's accounting), from the attempt's own observer. */
  told?: ((exit: Exit.Exit<A, E>) => void) | undefined
): Effect.Effect<A, E, R> =>
  Effect.withFiber((task) =>
    // Started inside the callback's registration, not before it: a task fiber that yielded between the two and was
    // interrupted there would leave its attempts running, with nobody to interrupt them.
    Effect.callback<A, E>((resume) => {
      const fork = Effect.runForkWith(task.context)
      const adaptive = hedge.adaptive
      const clock = adaptive === undefined ? undefined : task.getRef(Clock.Clock)
      // When each attempt started, for the adaptive delay's latencies.
      const starts: Array<number> | undefined = adaptive === undefined ? undefined : []
      // Set when an attempt failed with a fatal failure (`nonFatal` said no): the task fails with it alone.
      let fatal: Cause.Cause<E> | undefined = undefined
      const running = new Set<Fiber.Fiber<A, E>>()
      // The causes of the attempts that failed, by attempt.
      const causes: Array<Cause.Cause<E>> = []
      let started = 0
      // Set once an attempt has won, every attempt has failed, or the task is interrupted: start nothing more.
      let decided = false
      let won: Exit.Exit<A, E> | undefined = undefined
      let answered = false
      // The latest attempt's delay: only the latest attempt's can start a backup.
      let alarm: Alarm | undefined = undefined
      // Told once every attempt has ended after the task was interrupted: its interruption waits for them.
      let interrupted: (() => void) | undefined = undefined

      /** Every attempt has ended and the answer is known: the winner's, or every failure. */
      const answer = () => {
        answered = true
        if (interrupted !== undefined) return interrupted()
        resume(won ?? Exit.failCause(fatal ?? failure(causes.filter((cause) => cause !== undefined))))
      }

      const ended = (k: number, fiber: Fiber.Fiber<A, E>, exit: Exit.Exit<A, E>) => {
        told?.(exit)
        running.delete(fiber)
        if (!decided) {
          if (exit._tag === "Success") {
            decided = true
            won = exit
            clear(alarm)
            if (starts !== undefined) adaptive!.observe(clock!.currentTimeMillisUnsafe() - starts[k]!)
            for (const other of running) other.interruptUnsafe(task.id, hedgeLost)
          } else if (hedge.nonFatal !== undefined && isFatal(exit.cause, hedge.nonFatal)) {
            decided = true
            fatal = exit.cause
            clear(alarm)
            for (const other of running) other.interruptUnsafe(task.id, hedgeLost)
          } else {
            causes[k] = exit.cause
            if (started < hedge.max) launch()
            else if (running.size === 0) decided = true
          }
        }
        if (decided && running.size === 0 && !answered) answer()
      }

      // Set while attempts are being started: an attempt that ends as it starts (or a delay of zero, whose alarm may
      // ring inside `set`) asks for the next one instead of starting it from inside its own start, so that no `max`
      // makes the stack grow.
      let starting = false
      let wanted = false
      /** Starts the next attempt (or, while attempts are being started, asks for it). */
      const launch = (): void => {
        wanted = true
        if (starting) return
        starting = true
        while (wanted && !decided && started < hedge.max) {
          wanted = false
          // A backup needs the budget's leave, when there is a budget.
          if (started > 0 && allow !== undefined && !allow()) {
            // Refused with nothing running: the task ends with the failures it has.
            if (running.size === 0) decided = true
            break
          }
          startOne()
        }
        starting = false
      }

      const startOne = (): void => {
        const k = started++
        clear(alarm)
        alarm = undefined
        if (starts !== undefined) starts[k] = clock!.currentTimeMillisUnsafe()
        const fiber = fork(attempt as Effect.Effect<A, E>)
        const exit = fiber.pollUnsafe()
        if (exit !== undefined) return ended(k, fiber, exit)
        // Read only for an attempt still running: one that ended at once needs no delay.
        const delay = adaptive === undefined ? hedge.delay : adaptive.delayMillis()
        running.add(fiber)
        fiber.addObserver((exit) => ended(k, fiber, exit))
        // Still running: the next attempt starts if this one has not answered within the delay.
        if (delay <= longestDelay && started < hedge.max && !decided) {
          alarm = timers.alarms().set(delay, () => {
            if (!decided && started === k + 1) launch()
          })
        }
      }

      launch()
      if (answered) return
      // The task is interrupted: so is every attempt, and the task waits for them all.
      return Effect.callback<void>((done) => {
        decided = true
        clear(alarm)
        if (answered || running.size === 0) return done(Effect.void)
        interrupted = () => done(Effect.void)
        const why = timers.stopped()
        for (const fiber of running) fiber.interruptUnsafe(task.id, why)
      })
    })
  )

/** Whether a failed attempt's cause ends every attempt: a typed failure `nonFatal` refuses, or a defect. */
const isFatal = (cause: Cause.Cause<unknown>, nonFatal: (error: unknown) => boolean): boolean => {
  for (const reason of cause.reasons) {
    if (reason._tag === "Fail") return !nonFatal(reason.error)
  }
  return Cause.hasDies(cause)
}

const invalid = (option: string, reason: string) => new InvalidOptionError({ option, reason })

/**
 * `FanOut.hedge(self, options)`: the task and the options are checked before any attempt starts (a wrong one is a
 * defect carrying an `InvalidOptionError`). With no fan-out around it, the hedge has alarms of its own, on the
 * caller's clock, closed (their timer fiber ended) before it answers.
 */
export const hedged = <A, E, R>(self: Effect.Effect<A, E, R>, raw: HedgeOptions): Effect.Effect<A, E, R> =>
  Effect.withFiber((fiber) => {
    let hedge: Hedge
    try {
      if (!Effect.isEffect(self)) throw invalid("task", `hedge needs an Effect, got ${show(self)}`)
      if (raw === undefined) throw invalid("hedge", `must be { delay, max? }, got ${show(raw)}`)
      hedge = options.hedge(raw, "hedge", false)!
    } catch (error) {
      return Effect.die(error)
    }
    const clock = fiber.getRef(Clock.Clock)
    const fork = Effect.runForkWith(fiber.context)
    let alarms: Alarms | undefined = undefined
    const timers: Timers = {
      alarms: () => alarms ??= new Alarms((effect) => fork(effect), () => clock.currentTimeMillisUnsafe()),
      // No fan-out around these attempts: an interruption of the hedge is its caller's, with no reason to pass on.
      stopped: () => undefined
    }
    const close = Effect.suspend(() => {
      const opened = alarms
      if (opened === undefined) return Effect.void
      return Effect.callback<void>((done) => opened.close(() => done(Effect.void)))
    })
    return Effect.ensuring(hedgeWith(self, hedge, timers), close)
  })
