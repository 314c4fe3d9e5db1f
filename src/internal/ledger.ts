/**
 * What each task of a fan-out did — its exit, the time limit that stopped it, when it started and ended — and the
 * outcomes read from that, by one rule for outcomes, reports, task spans and metrics alike.
 *
 * @internal
 */
import * as Exit from "effect/Exit"
import type { CancelReason } from "../Cancellation.js"
import type * as Outcome from "../Outcome.js"
import type { Prepared } from "./attempts.js"
import { outcomeOf, tagOf } from "./classify.js"
import type { Limit } from "./engine/run.js"
import type { Shape } from "./shape.js"

/** How the fan-out stopped early: a policy (a failure, a required task, a quorum), or its deadline. */
export type Stop = "Policy" | "Deadline"

/** @internal */
export class Ledger {
  readonly exits: Array<Exit.Exit<unknown, unknown> | undefined>
  readonly limits: Array<Limit | undefined>
  /** The clock's time when each task started; NaN for a task that never started. (Plain arrays: a small typed array
   * costs more to make than a fan-out of ten tasks spends on them.) */
  readonly started: Array<number>
  readonly ended: Array<number>
  /** Whether each task waited (it did not end as it started): only those have a duration worth recording. */
  readonly waited: Array<boolean>
  stop: Stop | undefined = undefined
  /** The task whose end stopped the fan-out, -1 for none (the deadline, or no stop). */
  stoppedBy = -1
  /** Why a policy stopped the fan-out, once it has: the reason of the tasks it never started. */
  cancelReason: CancelReason | undefined = undefined

  constructor(
    readonly shape: Shape,
    readonly prepared: Prepared,
    readonly now: () => number,
    /** Keep no task's value (`discard`): a success is recorded as `Exit.void`. */
    readonly discard: boolean
  ) {
    const n = shape.keys.length
    this.exits = new Array(n)
    this.limits = new Array(n)
    this.started = new Array(n).fill(NaN)
    this.ended = new Array(n)
    this.waited = new Array(n)
  }

  /** Records the end of task `index`. */
  record(
    index: number,
    exit: Exit.Exit<unknown, unknown>,
    limit: Limit | undefined,
    started: number,
    ended: number,
    waited: boolean
  ) {
    this.exits[index] = this.discard && exit._tag === "Success" ? Exit.void : exit
    this.limits[index] = limit ?? (this.prepared.ownTimeout(exit) ? "Timeout" : undefined)
    this.prepared.ended?.(index, exit, this.limits[index])
    this.started[index] = started
    this.ended[index] = ended
    this.waited[index] = waited
  }

  /** Task `index`'s outcome. A task that never ran to its end is cut off: `TimedOut` at the deadline, else `Interrupted`. */
  outcome(index: number): Outcome.Outcome<unknown, unknown> {
    const key = this.shape.keys[index]!
    const label = this.shape.labels[index]
    const exit = this.exits[index]
    const started = this.started[index]!
    if (exit === undefined) {
      // Never started, or still running when a detached fan-out answered.
      const durationMillis = Number.isNaN(started) ? 0 : Math.max(0, this.now() - started)
      const attempts = Number.isNaN(started) ? 0 : this.prepared.attempts(index)
      return this.stop === "Deadline"
        ? { _tag: "TimedOut", reason: "Deadline", key, label, durationMillis, attempts }
        : { _tag: "Interrupted", key, label, durationMillis, attempts, cancelReason: this.cancelReason }
    }
    const common = {
      key,
      label,
      durationMillis: Math.max(0, this.ended[index]! - started),
      attempts: this.prepared.attempts(index)
    }
    const outcome = outcomeOf(exit, common, this.limits[index])
    const refused = this.prepared.refused?.(index)
    return refused === undefined ? outcome : { ...outcome, refused }
  }

  /** The tasks' values, once every one has succeeded. */
  values(): Array<unknown> {
    const out = new Array(this.exits.length)
    for (let i = 0; i < out.length; i++) out[i] = (this.exits[i] as Exit.Success<unknown, unknown>).value
    return out
  }

  /** Task `index`'s outcome tag, by the rule of `outcome`, without making the outcome. */
  tag(index: number): Outcome.Outcome<unknown, unknown>["_tag"] {
    const exit = this.exits[index]
    if (exit === undefined) return this.stop === "Deadline" ? "TimedOut" : "Interrupted"
    return tagOf(exit, this.limits[index])
  }

  outcomes(): Array<Outcome.Outcome<unknown, unknown>> {
    const out = new Array(this.exits.length)
    for (let i = 0; i < out.length; i++) out[i] = this.outcome(i)
    return out
  }
}
