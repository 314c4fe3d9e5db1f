/**
 * The Promise facade's one entry into the core: `n` callback tasks (functions awaited on no fiber of their own), run
 * fail fast or settled by the same policies, engine and observability as every fan-out.
 *
 * @internal
 */
import type * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import type { CallbackTask } from "./engine/run.js"
import { all } from "./failFast.js"
import { settings } from "./options.js"
import { settle } from "./settle.js"

/** The core options the facade passes on (its own `timeout` and `signal` it handles itself). */
export interface CallbackOptions {
  readonly concurrency: number
  readonly deadline: number | undefined
  readonly detach?: boolean | undefined
  readonly discard?: boolean | undefined
}

/** Runs `n` callback tasks; `task(index)` makes each one as it starts (an `Exit` for a function that ended at once). */
export const runCallbacks = (
  kind: "all" | "settle",
  n: number,
  task: (index: number) => Exit.Exit<unknown, unknown> | CallbackTask,
  options: CallbackOptions
): Effect.Effect<any, any> => {
  const keys: Array<number> = new Array(n)
  for (let i = 0; i < n; i++) keys[i] = i
  const shape = { struct: false, keys, task: task as never, callbacks: task, labels: new Array(n) }
  return kind === "all"
    ? all(shape, settings({ ...options, taskSpans: false }, "FanOut.forEach"))
    : settle(shape, settings({ ...options, taskSpans: false }, "FanOut.settleForEach"), "settleForEach")
}
