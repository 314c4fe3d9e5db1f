/**
 * The frame every policy (fail fast, settle, quorum, stream) runs in: its tasks prepared, run by the engine inside
 * the fan-out's span, and every task's end recorded in a ledger. A policy only says what a task's end means
 * (`onExit`, `true` to stop the fan-out), what a task that ended after the stop adds (`onLateExit`), what the
 * deadline means (`onDeadline`) and what the fan-out answers (`result`).
 *
 * @internal
 */
import type * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import type { CancelReason } from "../Cancellation.js"
import { prepare } from "./attempts.js"
import * as cancel from "./cancel.js"
import { run } from "./engine/run.js"
import type { Limit } from "./engine/run.js"
import { Ledger } from "./ledger.js"
import { observed } from "./observe.js"
import type { Settings } from "./options.js"
import type { Shape } from "./shape.js"

/** What one run of a fan-out does with its tasks' ends, made per run with that run's ledger. */
export interface Rules<A, E> {
  /** A task ended (already recorded) while the fan-out ran; `true` stops it, the ledger naming that task. */
  readonly onExit: (index: number, exit: Exit.Exit<unknown, unknown>, limit: Limit | undefined) => boolean
  /** Why `onExit` stopped the fan-out at task `index` (default: a success reached a quorum, else a sibling failed). */
  readonly stopReason?: ((index: number) => CancelReason) | undefined
  readonly onLateExit?: ((index: number, exit: Exit.Exit<unknown, unknown>) => void) | undefined
  readonly onDeadline?: (() => void) | undefined
  readonly result: () => Exit.Exit<A, E>
}

/** Runs the fan-out of `shape` under `rules`, named `kind` in its span and metrics. */
export const runPolicy = <A, E>(
  kind: string,
  shape: Shape,
  s: Settings,
  options: { readonly detach: boolean; readonly discard: boolean },
  /** `deadline`: the one the fan-out runs under, in milliseconds (its own, or the enclosing one it adopted). */
  rules: (ledger: Ledger, deadline: number | undefined) => Rules<A, E>
): Effect.Effect<A, E> =>
  observed(kind, s, shape, (around, observe, hook) => {
    const prepared = prepare(shape, s, around, hook)
    return run({
      size: shape.keys.length,
      task: prepared.task,
      concurrency: s.concurrency,
      timeout: prepared.engineTimeout,
      deadline: s.deadline,
      detach: options.detach,
      timed: true,
      policy: (clock, deadline) => {
        const ledger = observe(new Ledger(shape, prepared, () => clock.currentTimeMillisUnsafe(), options.discard))
        const r = rules(ledger, deadline)
        return {
          onExit(index, exit, limit, started, end, waited) {
            ledger.record(index, exit, limit, started, end, waited)
            if (!r.onExit(index, exit, limit)) return false
            ledger.stop = "Policy"
            ledger.stoppedBy = index
            return true
          },
          stopReason(index, exit): CancelReason {
            return ledger.cancelReason = r.stopReason !== undefined
              ? r.stopReason(index)
              : exit._tag === "Success"
              ? cancel.quorumReached
              : { _tag: "SiblingFailed", key: shape.keys[index]!, label: shape.labels[index] }
          },
          onLateExit(index, exit, limit, started, end, waited) {
            ledger.record(index, exit, limit, started, end, waited)
            r.onLateExit?.(index, exit)
          },
          onDeadline() {
            ledger.stop = "Deadline"
            r.onDeadline?.()
          },
          result: r.result
        }
      }
    })
  })
