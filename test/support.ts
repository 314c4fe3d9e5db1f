/**
 * What several test files share: a log of what tasks did, a recorder that sees every fiber a fan-out starts, and a
 * clock that counts the sleeps in flight.
 */
import { expect } from "@effect/vitest"
import { type Clock, Effect, type Exit, Metric, Ref, Tracer } from "effect"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"

/** An append-only log of entries such as `"a finalized"`, read back with `get`. */
export const makeLog = Effect.map(Ref.make<ReadonlyArray<string>>([]), (ref) => ({
  get: Ref.get(ref),
  add: (entry: string) => Ref.update(ref, (entries) => [...entries, entry])
}))
export type Log = Effect.Success<typeof makeLog>

/**
 * Counts every fiber started while it is provided as the `Metric.FiberRuntimeMetrics` service (Effect 4's public hook
 * on fiber starts and ends, which every fiber forked from a context holding it inherits), so that a test can check
 * that they have all ended (`running` is 0). Effect 4 has no `Supervisor`: this takes its place.
 */
export class Recorder implements Metric.FiberRuntimeMetricsService {
  started = 0
  ended = 0
  readonly recordFiberStart = (): void => {
    this.started++
  }
  readonly recordFiberEnd = (): void => {
    this.ended++
  }
  get running(): number {
    return this.started - this.ended
  }
}

/** Runs `self` under `recorder`: every fiber it starts, however deep, is counted. */
export const recorded = <A, E, R>(self: Effect.Effect<A, E, R>, recorder: Recorder): Effect.Effect<A, E, R> =>
  Effect.provideService(self, Metric.FiberRuntimeMetrics, recorder)

/** Runs `self` to its exit under a fresh `Recorder`, which then tells whether a fiber it started is still running. */
export const recordedExit = <A, E, R>(
  self: Effect.Effect<A, E, R>
): Effect.Effect<{ readonly exit: Exit.Exit<A, E>; readonly recorder: Recorder }, never, R> =>
  Effect.suspend(() => {
    const recorder = new Recorder()
    return Effect.map(Effect.exit(recorded(self, recorder)), (exit) => ({ exit, recorder }))
  })

/** The caller's clock, counting the sleeps in flight: a fan-out's timer fiber (its alarms) is one while it waits. */
export const countingSleeps = Effect.clockWith((clock) => {
  let sleeping = 0
  const counted: Clock.Clock = {
    ...clock,
    sleep: (duration) =>
      Effect.suspend(() => {
        sleeping++
        return Effect.ensuring(clock.sleep(duration), Effect.sync(() => sleeping--))
      })
  }
  return Effect.succeed({ clock: counted, sleeping: () => sleeping })
})

/**
 * Runs the project's script `script` (a path from the project's root) under tsx in a child process with `args`, for
 * at most 110 seconds: its exit code, its output, and its last line of output (where the scripts print their verdict).
 */
export const runScript = (script: string, args: ReadonlyArray<string>) =>
  new Promise<{ code: number | null; stdout: string; stderr: string; last: string }>((resolve) =>
    execFile(
      process.execPath,
      ["--import", "tsx", script, ...args],
      { cwd: fileURLToPath(new URL("../", import.meta.url)), timeout: 110_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) =>
        resolve({
          code: error === null ? 0 : error.code as number | null,
          stdout,
          stderr,
          last: stdout.trim().split("\n").at(-1) ?? ""
        })
    )
  )

/** A tracer that keeps every span it made, in the order they ended; `named` reads the one
 * span of a name (and fails the test when there is not exactly one). */
export const recording = () => {
  const ended: Array<Tracer.NativeSpan> = []
  class Recorded extends Tracer.NativeSpan {
    override end(endTime: bigint, exit: Exit.Exit<unknown, unknown>): void {
      if (this.status._tag === "Ended") return
      super.end(endTime, exit)
      ended.push(this)
    }
  }
  const tracer = Tracer.make({ span: (options) => new Recorded(options) })
  const named = (name: string): Tracer.NativeSpan => {
    const found = ended.filter((span) => span.name === name)
    expect(found.map((span) => span.name)).toStrictEqual([name])
    return found[0]!
  }
  return { ended, tracer, named }
}
