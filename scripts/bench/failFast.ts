/**
 * The fail-fast scenario the benchmarks share (`core.ts`'s failfast section, `compare.ts`): N = 1,000 tasks, 999 of
 * them waiting with a counting finalizer on a `Deferred` never done, an hour's sleep, or a read in flight on their own
 * socket (an `Effect.callback`), and the last one failing after 20 ms; measured from just before the failure to just
 * after the fan-out returns.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import { EventEmitter } from "node:events"
import { performance } from "node:perf_hooks"

export const failN = 1000
export const failAfterMs = 20

export type Wait = "Deferred" | "sleep" | "callback"
export const waits: ReadonlyArray<Wait> = ["Deferred", "sleep", "callback"]

export class Boom {
  readonly _tag = "Boom"
}

/** What a sibling waits on, for Effect: a Deferred never done, an hour's sleep, a read in flight on its own socket. */
export const effectWait = (wait: Wait, gate: Deferred.Deferred<void>): Effect.Effect<void> => {
  switch (wait) {
    case "Deferred":
      return Deferred.await(gate)
    case "sleep":
      return Effect.sleep("1 hour")
    case "callback":
      return Effect.callback<void>((resume) => {
        const socket = new EventEmitter()
        const onData = () => resume(Effect.void)
        socket.once("data", onData)
        return Effect.sync(() => socket.removeListener("data", onData))
      })
  }
}

export interface FailFast {
  readonly name: string
  /** Resolves with [ms from the failure to the return, finalizers done at the return]. */
  readonly run: (wait: Wait) => Promise<readonly [number, number]>
}

export const effectFailFast =
  (fanOut: (tasks: Array<Effect.Effect<void, Boom>>) => Effect.Effect<unknown, unknown>) =>
  (wait: Wait): Promise<readonly [number, number]> => {
    let finalized = 0
    let failedAt = 0
    const gate = Deferred.makeUnsafe<void>()
    const finalizer = Effect.sync(() => {
      finalized++
    })
    const tasks = new Array<Effect.Effect<void, Boom>>(failN)
    for (let i = 0; i < failN - 1; i++) tasks[i] = Effect.ensuring(effectWait(wait, gate), finalizer)
    tasks[failN - 1] = Effect.andThen(
      Effect.sleep(failAfterMs),
      Effect.suspend(() => {
        failedAt = performance.now()
        return Effect.fail(new Boom())
      })
    )
    return Effect.runPromise(Effect.flatMap(
      Effect.exit(fanOut(tasks)),
      () => Effect.sync(() => [performance.now() - failedAt, finalized] as const)
    ))
  }
