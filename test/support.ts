/**
 * What several test files share: a log of what tasks did, and a supervisor that sees every fiber a fan-out starts.
 */
import { Effect, type Fiber, type Option, Ref, Supervisor } from "effect"

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
