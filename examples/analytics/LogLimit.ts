/**
 * Repeated log lines written once per window: the first of a kind (a feature's failure, a 400) is logged at once, the
 * same kind again within `LOG_WINDOW` only counted, and the first after the window says how many were left out
 * (`suppressed`). Under a fault that every request meets, the logs grow with the number of kinds, not of requests.
 */
import { Clock, Config, Duration, Effect } from "effect"
import { duration } from "./Environment.js"

/**
 * How long a kind of log line stays quiet after it was written: `LOG_WINDOW`, a duration such as `10 seconds`;
 * `0 seconds` logs every line. Default 10 seconds.
 */
export const logWindow: Config.Config<Duration.Duration> = duration(
  "LOG_WINDOW",
  (window) => Duration.toMillis(window) >= 0,
  `the window must be a duration of zero or more, such as "10 seconds"`
).pipe(Config.withDefault(Duration.seconds(10)))

/** Writes `entry(suppressed)` for `key` unless a line of that key was written within the window. */
export type LogLimit = (key: string, entry: (suppressed: number) => Effect.Effect<void>) => Effect.Effect<void>

/** An `entry` for a `LogLimit` that annotates the line with `suppressed` when lines were left out before it. */
export const counting = (line: Effect.Effect<void>) => (suppressed: number): Effect.Effect<void> =>
  suppressed === 0 ? line : Effect.annotateLogs(line, { suppressed })

/** A limiter over `window`, timed by the `Clock` (so tests move it with `TestClock`). */
export const make = (window: Duration.Duration): LogLimit => {
  const windowMs = Duration.toMillis(window)
  const kinds = new Map<string, { writtenAt: number; suppressed: number }>()
  return (key, entry) =>
    windowMs === 0 ? entry(0) : Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const kind = kinds.get(key)
      if (kind !== undefined && now - kind.writtenAt < windowMs) {
        kind.suppressed++
        return Effect.void
      }
      const suppressed = kind?.suppressed ?? 0
      kinds.set(key, { writtenAt: now, suppressed: 0 })
      return entry(suppressed)
    })
}

/** A limiter over `LOG_WINDOW`. */
export const fromConfig: Effect.Effect<LogLimit, Config.ConfigError> = Effect.gen(function*() {
  return make(yield* logWindow)
})
