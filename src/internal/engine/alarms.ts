/**
 * The one time-limit mechanism of a fan-out: a queue of alarms (task time-outs, the deadline, hedge delays) served
 * by at most one timer fiber per fan-out, which sleeps through the fan-out's `Clock` (so `TestClock` drives it) until
 * the earliest alarm is due. Setting or clearing an alarm costs no fiber; a cleared alarm is dropped when it reaches
 * the head of the queue.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"

/** The longest a timer waits: past 2^31 − 1 ms (about 24.8 days) Node's timers fire at once, so no alarm is set. */
export const longestDelay = 2_147_483_647

/** @internal */
export interface Alarm {
  readonly due: number
  readonly seq: number
  fire: (() => void) | undefined
}

/** @internal */
export class Alarms {
  private readonly heap: Array<Alarm> = []
  private seq = 0
  private timer: Fiber.Fiber<void> | undefined = undefined
  private timerDue = Infinity
  private closed = false
  /** While due alarms fire: an alarm they set is armed once they are done, not from inside them. */
  private ringing = false
  private onClosed: (() => void) | undefined = undefined

  constructor(
    private readonly fork: (effect: Effect.Effect<void>) => Fiber.Fiber<void>,
    private readonly now: () => number
  ) {}

  /** Calls `fire` once `delayMillis` have passed, unless cleared first; no alarm past {@link longestDelay}. */
  set(delayMillis: number, fire: () => void): Alarm | undefined {
    if (this.closed || delayMillis > longestDelay) return undefined
    const alarm: Alarm = { due: this.now() + delayMillis, seq: this.seq++, fire }
    push(this.heap, alarm)
    if (alarm.due < this.timerDue && !this.ringing) this.arm()
    return alarm
  }

  /** Ends the timer; `done` is called once its fiber has ended (at once when there is none). */
  close(done: () => void): void {
    this.closed = true
    this.heap.length = 0
    const timer = this.timer
    if (timer === undefined) return done()
    this.onClosed = done
    timer.interruptUnsafe()
  }

  private arm(): void {
    while (this.heap.length > 0 && this.heap[0]!.fire === undefined) pop(this.heap)
    const head = this.heap[0]
    const previous = this.timer
    if (head === undefined) {
      this.timerDue = Infinity
      this.timer = undefined
      previous?.interruptUnsafe()
      return
    }
    this.timerDue = head.due
    const timer = this.fork(Effect.sleep(Duration.millis(Math.max(0, head.due - this.now()))))
    this.timer = timer
    previous?.interruptUnsafe()
    timer.addObserver((exit) => {
      if (this.timer === timer) this.timer = undefined
      if (this.closed) {
        if (this.timer === undefined && this.onClosed !== undefined) {
          const done = this.onClosed
          this.onClosed = undefined
          done()
        }
        return
      }
      if (exit._tag === "Success") this.ring()
    })
  }

  private ring(): void {
    this.timerDue = Infinity
    this.ringing = true
    try {
      const now = this.now()
      while (!this.closed && this.heap.length > 0 && this.heap[0]!.due <= now) {
        const alarm = pop(this.heap)!
        const fire = alarm.fire
        alarm.fire = undefined
        fire?.()
      }
    } finally {
      this.ringing = false
    }
    if (!this.closed && this.timer === undefined) this.arm()
  }
}

/** Clears an alarm: it never fires. */
export const clear = (alarm: Alarm | undefined): void => {
  if (alarm !== undefined) alarm.fire = undefined
}

const before = (a: Alarm, b: Alarm) => a.due < b.due || (a.due === b.due && a.seq < b.seq)

const push = (heap: Array<Alarm>, alarm: Alarm): void => {
  heap.push(alarm)
  let i = heap.length - 1
  while (i > 0) {
    const parent = (i - 1) >> 1
    if (!before(heap[i]!, heap[parent]!)) break
    ;[heap[i], heap[parent]] = [heap[parent]!, heap[i]!]
    i = parent
  }
}

const pop = (heap: Array<Alarm>): Alarm | undefined => {
  const top = heap[0]
  const last = heap.pop()
  if (heap.length > 0 && last !== undefined) {
    heap[0] = last
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < heap.length && before(heap[l]!, heap[m]!)) m = l
      if (r < heap.length && before(heap[r]!, heap[m]!)) m = r
      if (m === i) break
      ;[heap[i], heap[m]] = [heap[m]!, heap[i]!]
      i = m
    }
  }
  return top
}
