/**
 * Admission control: how many fan-outs run at once, in all and per client connection, and which requests are
 * answered 503 at once (`Overloaded`, with `Retry-After`) instead of joining a queue they would leave too late.
 *
 * A request is refused at once when its connection already has `MAX_FANOUTS_PER_CONNECTION` requests in flight (a
 * client pipelining hundreds of requests on one socket takes its share, not the server), when `MAX_QUEUED_FANOUTS`
 * requests already wait, or when the wait it would have — the requests queued ahead of it over the fan-outs that run
 * at once, times the typical fan-out's duration — is more than half its deadline. A queued request waits at most half
 * its deadline for its turn, and runs with what is left of the deadline: the deadline counts from arrival, queue
 * included, so a request that is admitted still answers by its deadline, however many are refused.
 *
 * Counting requests does not bound the CPU they take: 64 fan-outs against services answering in 300 ms are 2,500
 * downstream calls a second, more than one process can decode. So a request is also refused at once (`busy`) while
 * this process's event loop runs more than `MAX_EVENT_LOOP_DELAY` behind (measured with `monitorEventLoopDelay`, the
 * worst delay of the last quarter second): a refusal costs the loop almost nothing, the fan-outs already admitted get
 * the time they need to answer by their deadlines, and `/health` keeps answering.
 */
import type { Scope } from "effect"
import { Clock, Config, Context, Duration, Effect, Layer, Option, Semaphore } from "effect"
import { monitorEventLoopDelay } from "node:perf_hooks"
import { Overloaded } from "./Api.js"
import { integer } from "./Environment.js"

/** The bounds; each one's variable and default below. */
export interface Settings {
  /** Fan-outs running at once in this process: `MAX_FANOUTS`, 1 to 10000, default 64. */
  readonly maxInFlight: number
  /** Requests in flight (running or queued) on one client connection: `MAX_FANOUTS_PER_CONNECTION`, default 4. */
  readonly perConnection: number
  /** Requests waiting for a turn: `MAX_QUEUED_FANOUTS`, 0 to 100000, default 64. */
  readonly maxQueued: number
  /**
   * The event-loop delay, in milliseconds, past which new requests are refused: `MAX_EVENT_LOOP_DELAY`, 1 to 60000,
   * default 100; unset in `make`, no bound.
   */
  readonly maxLoopDelayMs?: number
}

export const settingsConfig: Config.Config<Settings> = Config.all({
  maxInFlight: integer("MAX_FANOUTS", 1, 10_000).pipe(Config.withDefault(64)),
  perConnection: integer("MAX_FANOUTS_PER_CONNECTION", 1, 10_000).pipe(Config.withDefault(4)),
  maxQueued: integer("MAX_QUEUED_FANOUTS", 0, 100_000).pipe(Config.withDefault(64)),
  maxLoopDelayMs: integer("MAX_EVENT_LOOP_DELAY", 1, 60_000).pipe(Config.withDefault(100))
})

/** How often the event-loop delay's window starts again, in milliseconds. */
const loopWindowMs = 250

/**
 * This process's event-loop delay: a function reading the worst delay, in milliseconds, of the last complete
 * `loopWindowMs` window and of the current one; sampled every 10 ms by Node's own histogram, stopped with the scope.
 */
export const loopDelay: Effect.Effect<() => number, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => {
    const histogram = monitorEventLoopDelay({ resolution: 10 })
    histogram.enable()
    let previousMs = 0
    const timer = setInterval(() => {
      previousMs = histogram.max / 1e6
      histogram.reset()
    }, loopWindowMs)
    timer.unref()
    return { histogram, timer, read: () => Math.max(previousMs, histogram.max / 1e6) }
  }),
  ({ histogram, timer }) =>
    Effect.sync(() => {
      clearInterval(timer)
      histogram.disable()
    })
).pipe(Effect.map(({ read }) => read))

/** The `Retry-After` of every `Overloaded`, in seconds. */
export const retryAfterSeconds = 1

export class Admission extends Context.Service<Admission, {
  /**
   * Runs `run` with what is left of `deadline` once a turn is free, or fails with `Overloaded` at once. `connection`
   * identifies the client connection (any object: the socket).
   */
  readonly admit: <A, E, R>(
    connection: object,
    deadline: Duration.Duration,
    run: (left: Duration.Duration) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | Overloaded, R>
}>()("analytics/Admission") {
  /** Admission over `MAX_FANOUTS`, `MAX_FANOUTS_PER_CONNECTION`, `MAX_QUEUED_FANOUTS` and `MAX_EVENT_LOOP_DELAY`. */
  static readonly layer: Layer.Layer<Admission, Config.ConfigError> = Layer.effect(
    Admission,
    Effect.gen(function*() {
      return make(yield* settingsConfig, yield* loopDelay)
    })
  )
}

const shed = (reason: Overloaded["reason"], message: string) =>
  Effect.fail(new Overloaded({ reason, retryAfterSeconds, message }))

/**
 * Admission with the given bounds, timed by the `Clock`; `loopDelayMs` reads the event loop's current delay (see
 * `loopDelay`), checked against `settings.maxLoopDelayMs` when that is set.
 */
export const make = (settings: Settings, loopDelayMs: () => number = () => 0): Admission["Service"] => {
  const permits = Semaphore.makeUnsafe(settings.maxInFlight)
  const onConnection = new WeakMap<object, number>()
  let queued = 0
  // A moving average of how long an admitted fan-out took: the unit of the estimated wait (none until one ended).
  let typicalMs: number | undefined = undefined
  const record = (ms: number) => {
    typicalMs = typicalMs === undefined ? ms : 0.8 * typicalMs + 0.2 * ms
  }

  const enter = <A, E, R>(deadline: Duration.Duration, run: (left: Duration.Duration) => Effect.Effect<A, E, R>) =>
    Effect.uninterruptibleMask((restore) =>
      Effect.gen(function*() {
        const deadlineMs = Duration.toMillis(deadline)
        const arrived = yield* Clock.currentTimeMillis
        if (!(yield* permits.takeIfAvailable(1))) {
          if (queued >= settings.maxQueued) {
            return yield* shed("busy", `${settings.maxInFlight} requests run and ${queued} wait; try again later`)
          }
          const rounds = Math.floor(queued / settings.maxInFlight) + 1
          if (typicalMs !== undefined && rounds * typicalMs > deadlineMs / 2) {
            return yield* shed(
              "deadline",
              `the wait for a turn would take more than half of the ${deadlineMs} ms deadline`
            )
          }
          queued++
          const turn = yield* restore(Effect.timeoutOption(permits.take(1), Duration.millis(deadlineMs / 2))).pipe(
            Effect.ensuring(Effect.sync(() => queued--))
          )
          if (Option.isNone(turn)) {
            return yield* shed("deadline", `no turn within half of the ${deadlineMs} ms deadline`)
          }
        }
        const admitted = yield* Clock.currentTimeMillis
        return yield* restore(Effect.suspend(() => run(Duration.millis(deadlineMs - (admitted - arrived))))).pipe(
          Effect.ensuring(
            Effect.flatMap(Clock.currentTimeMillis, (ended) => {
              record(ended - admitted)
              return permits.release(1)
            })
          )
        )
      })
    )

  return {
    admit: (connection, deadline, run) =>
      Effect.suspend(() => {
        if (settings.maxLoopDelayMs !== undefined) {
          const delayMs = loopDelayMs()
          if (delayMs > settings.maxLoopDelayMs) {
            return shed(
              "busy",
              `the server runs ${
                Math.round(delayMs)
              } ms behind (more than ${settings.maxLoopDelayMs} ms); try again later`
            )
          }
        }
        const held = onConnection.get(connection) ?? 0
        if (held >= settings.perConnection) {
          return shed("connection", `${held} requests are in flight on this connection already`)
        }
        onConnection.set(connection, held + 1)
        return Effect.ensuring(
          enter(deadline, run),
          Effect.sync(() => {
            const left = onConnection.get(connection)! - 1
            if (left === 0) onConnection.delete(connection)
            else onConnection.set(connection, left)
          })
        )
      })
  }
}
