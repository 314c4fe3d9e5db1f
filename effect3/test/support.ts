/**
 * What several test files share: a log of what tasks did, and a supervisor that sees every fiber a fan-out starts.
 */
import { Effect, type Exit, type Fiber, type Option, Ref, Supervisor } from "effect"

/** An append-only log of entries such as `"a finalized"`, read back with `get`. */
export const makeLog = Effect.map(Ref.make<ReadonlyArray<string>>([]), (ref) => ({
  get: Ref.get(ref),
  add: (entry: string) => Ref.update(ref, (entries) => [...entries, entry])
}))
export type Log = Effect.Effect.Success<typeof makeLog>

/** Remembers every fiber started under it, so that a test can check they have all ended (`running` is 0). */
export class Recorder extends Supervisor.AbstractSupervisor<void> {
  readonly fibers: Array<{ readonly unsafePoll: () => unknown }> = []
  readonly value = Effect.void
  override onStart<A, E, R>(
    _context: unknown,
    _effect: Effect.Effect<A, E, R>,
    _parent: Option.Option<unknown>,
    fiber: Fiber.RuntimeFiber<A, E>
  ): void {
    this.fibers.push(fiber)
  }
  get running(): number {
    return this.fibers.filter((fiber) => fiber.unsafePoll() === null).length
  }
}

/** Runs `self` to its exit under a fresh `Recorder`, which then tells whether a fiber it started is still running. */
export const recordedExit = <A, E, R>(
  self: Effect.Effect<A, E, R>
): Effect.Effect<{ readonly exit: Exit.Exit<A, E>; readonly recorder: Recorder }, never, R> =>
  Effect.suspend(() => {
    const recorder = new Recorder()
    return Effect.map(Effect.exit(Effect.supervised(self, recorder)), (exit) => ({ exit, recorder }))
  })
