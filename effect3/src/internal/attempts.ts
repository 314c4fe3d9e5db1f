/**
 * What the per-attempt policies (time limits, hedging) share: attempts on fibers of their own, made without `fork`'s
 * bookkeeping, and alarms of one delay for many attempts, rung by one timer fiber.
 *
 * Effect's own combinators (`Effect.timeoutFail`, `Effect.race` against `Effect.sleep`) fork two fibers and race them
 * for every attempt: about a hundred times what the engine spends on a task. Here an attempt that ends while it starts
 * costs one fiber and nothing else; one that suspends also sets an alarm, an entry in a queue. (The engine's own time
 * limit, `engine.TimeLimit`, sets an alarm for every task as it starts, on its worker, with no fiber.) Every alarm of a queue
 * has the same delay and alarms are set in clock order, so they ring in the order they were set: one fiber per queue
 * sleeps until the head's time (through the fan-out's `Clock`, so `TestClock` drives it) and rings what is due.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import * as FiberRefs from "effect/FiberRefs"
import * as RuntimeFlags from "effect/RuntimeFlags"
import * as engine from "./engine.js"

/**
 * Makes the attempts' fibers: of the running Effect's class, with the task's fiber refs (forked once per refs object:
 * most tasks change none, so they share their worker's), seen by a `Supervisor` as `fork` would be. Such a fiber
 * is nobody's child: whoever starts it interrupts and awaits it.
 *
 * @internal
 */
export class Spawner {
  private factory: engine.FiberFactory | undefined = undefined
  /** The refs of each parent, forked: tasks share their worker's refs, and attempts inside attempts theirs. */
  private readonly forked = new WeakMap<FiberRefs.FiberRefs, FiberRefs.FiberRefs>()

  /** A new fiber for `effect` beside `parent`, with its flags and refs; not started. */
  fiber(parent: engine.AnyFiber, effect: Effect.Effect<any, any, any>): engine.AnyFiber {
    this.factory ??= engine.fiberFactory(parent)
    // Not `getFiberRefs()`, which first writes the runtime flags into them: a new `FiberRefs` per call.
    const refs = parent._fiberRefs
    let forked = this.forked.get(refs)
    if (forked === undefined) {
      forked = engine.boundAncestry(FiberRefs.forkAs(refs, FiberId.unsafeMake()))
      this.forked.set(refs, forked)
    }
    return this.factory(effect, parent.currentRuntimeFlags, forked, parent)
  }

  /** A fiber of the spawner's own (a timer): interruptible whatever the task's flags. */
  own(parent: engine.AnyFiber, effect: Effect.Effect<any, any, any>): engine.AnyFiber {
    this.factory ??= engine.fiberFactory(parent)
    return this.factory(
      effect,
      RuntimeFlags.enable(parent.currentRuntimeFlags, RuntimeFlags.Interruption),
      undefined,
      parent
    )
  }
}

/**
 * An alarm: `ring` is called at `at` (by the fan-out's clock) unless it was cleared first (`Alarms.clear`; `ring` is
 * then `undefined`).
 *
 * @internal
 */
export interface Alarm {
  readonly at: number
  ring: (() => void) | undefined
}

/** @internal */
export class Alarms {
  private queue: Array<Alarm> = []
  private head = 0
  /** Alarms cleared but still in the queue (past `head`): dropped in bulk once they are most of it. */
  private cleared = 0
  private timer: engine.AnyFiber | undefined = undefined
  private closed = false

  constructor(readonly millis: number, readonly spawner: Spawner) {}

  /** Alarms in the queue, cleared ones not yet dropped included. */
  get size(): number {
    return this.queue.length - this.head
  }

  /**
   * Sets an alarm `millis` from `from` (default: now, by the clock of `parent`, a fiber of the fan-out). After `close`,
   * sets none and returns `undefined`: the fan-out has ended, and what is left only finishes its interruption.
   */
  set(parent: engine.AnyFiber, ring: () => void, from?: number): Alarm | undefined {
    if (this.closed) return undefined
    const at = (from ?? Context.get(parent.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()) + this.millis
    const alarm: Alarm = { at, ring }
    this.queue.push(alarm)
    if (this.timer === undefined) {
      const timer = this.spawner.own(parent, this.watch)
      this.timer = timer
      // A timer that ended some other way (a defect) is not waited on: the next alarm starts another.
      timer.addObserver(() => {
        if (this.timer === timer) this.timer = undefined
      })
      timer.start(this.watch)
    }
    return alarm
  }

  /**
   * Clears an alarm: it will not ring. Cleared alarms stay in the queue until the timer passes them, or, once they are
   * most of it, are dropped all at once: a long fan-out's queue holds about as many alarms as tasks are running, not
   * one per task it ran (tasks end out of order, so the head alone would not do).
   */
  clear(alarm: Alarm): void {
    if (alarm.ring === undefined) return
    alarm.ring = undefined
    this.cleared++
    if (this.cleared > 1024 && this.cleared * 2 > this.queue.length - this.head) {
      this.queue = this.queue.slice(this.head).filter((queued) => queued.ring !== undefined)
      this.head = 0
      this.cleared = 0
    }
  }

  /** Drops the cleared alarms from the head; whether one is left. */
  private skipCleared(): boolean {
    const queue = this.queue
    while (this.head < queue.length && queue[this.head]!.ring === undefined) {
      this.head++
      this.cleared--
    }
    if (this.head === queue.length) {
      queue.length = 0
      this.head = 0
      this.cleared = 0
      return false
    }
    if (this.head > 1024 && this.head * 2 > queue.length) {
      queue.splice(0, this.head)
      this.head = 0
    }
    return true
  }

  /**
   * Sleeps until the first alarm's time, rings the alarms that are due, and so on; ends when none is left. Its first
   * step always waits (a yield for an alarm due at once), so an alarm never rings inside `set`, before the code that
   * set it has finished (a zero limit, or a `TestClock` sleep of zero, would otherwise ring it there).
   */
  private readonly watch: Effect.Effect<void> = Effect.clockWith((clock) =>
    Effect.suspend(() => {
      if (!this.skipCleared()) {
        this.timer = undefined
        return Effect.void
      }
      const wait = this.queue[this.head]!.at - clock.unsafeCurrentTimeMillis()
      return Effect.zipRight(wait > 0 ? Effect.sleep(wait) : Effect.yieldNow(), this.ringDue(clock))
    })
  )

  /** Rings the alarms whose time has come, then goes back to watching. */
  private ringDue(clock: Clock.Clock): Effect.Effect<void> {
    return Effect.suspend(() => {
      const now = clock.unsafeCurrentTimeMillis()
      // `this.queue` read afresh each time: a ring may set or clear alarms, and a clear may replace the queue.
      while (this.head < this.queue.length && this.queue[this.head]!.at <= now) {
        const alarm = this.queue[this.head++]!
        const ring = alarm.ring
        if (ring === undefined) this.cleared--
        else {
          alarm.ring = undefined
          ring()
        }
      }
      return this.watch
    })
  }

  /** Sets no more alarms, interrupts the timer and waits for it: run when the fan-out has ended. */
  readonly close: Effect.Effect<void> = Effect.suspend(() => {
    this.closed = true
    const timer = this.timer
    if (timer === undefined) return Effect.void
    this.timer = undefined
    return Effect.async<void>((ended) => {
      timer.addObserver(() => ended(Effect.void))
      timer.unsafeInterruptAsFork(FiberId.none)
    })
  })
}
