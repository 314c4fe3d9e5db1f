/**
 * Adaptive hedge delays: a hedge's delay taken from the latency its tasks have shown, rather than fixed.
 *
 * `Hedge.adaptive` keeps the latencies of the last `window` attempts that succeeded (of every fan-out given it, so
 * share one per downstream, as a budget) and gives as the delay before a backup their `percentile`, clamped between
 * `min` and `max`: the hedge starts once the attempt is slower than, say, 95% of its recent peers ("The Tail at
 * Scale"'s deferred hedging). With no latency seen yet the delay is `max`.
 *
 * @since 1.1.0
 */
import type * as Duration from "effect/Duration"
import { InvalidOptionError } from "./FanOutError.js"
import { millis } from "./internal/options.js"
import { show } from "./internal/show.js"

const TypeId: unique symbol = Symbol.for("effect-fanout/Hedge/Adaptive")

/**
 * A hedge delay read from observed latency: give it as `hedge.delay`.
 *
 * @since 1.1.0
 * @category models
 */
export interface Adaptive {
  readonly [TypeId]: typeof TypeId
  readonly percentile: number
  readonly window: number
  /** The shortest delay, in milliseconds. */
  readonly minMillis: number
  /** The longest delay, in milliseconds; the delay while no latency has been seen. */
  readonly maxMillis: number
  /** The delay now, in milliseconds. */
  readonly delayMillis: () => number
  /** Records the latency of an attempt that succeeded. @internal */
  readonly observe: (millis: number) => void
}

/**
 * The settings of an adaptive delay.
 *
 * @since 1.1.0
 * @category models
 */
export interface AdaptiveSettings {
  /** Which latency to wait for, above 0 and at most 1 (`0.95`: the 95th percentile). */
  readonly percentile: number
  /** How many of the latest successful attempts' latencies to keep: an integer from 1 to 10,000. */
  readonly window: number
  /** The shortest delay. */
  readonly min: Duration.Input
  /** The longest delay, and the delay until a latency has been seen. */
  readonly max: Duration.Input
}

/** The index of the first of `sorted` not below `value`. */
const lowerBound = (sorted: Array<number>, value: number): number => {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (sorted[mid]! < value) lo = mid + 1
    else hi = mid
  }
  return lo
}

class Window implements Adaptive {
  readonly [TypeId]: typeof TypeId = TypeId
  // The samples in arrival order (a ring) and the same samples sorted: a sample costs two binary searches and two
  // moves of at most `window` numbers, and the delay is read in O(1), as every hedged task asks for it.
  private readonly ring: Array<number> = []
  private readonly sorted: Array<number> = []
  private next = 0
  constructor(
    readonly percentile: number,
    readonly window: number,
    readonly minMillis: number,
    readonly maxMillis: number
  ) {}
  observe(latency: number): void {
    if (this.ring.length < this.window) this.ring.push(latency)
    else {
      const old = this.ring[this.next]!
      this.ring[this.next] = latency
      this.sorted.splice(lowerBound(this.sorted, old), 1)
    }
    this.next = (this.next + 1) % this.window
    this.sorted.splice(lowerBound(this.sorted, latency), 0, latency)
  }
  delayMillis(): number {
    const n = this.sorted.length
    if (n === 0) return this.maxMillis
    // The nearest-rank percentile: the smallest sample at least `percentile` of the samples do not exceed. The
    // backup starts a millisecond past it: the clock counts whole milliseconds, so an attempt as slow as that sample
    // has not run longer than it until then (at the sample itself, its answer and its backup race within one tick).
    const value = this.sorted[Math.max(0, Math.ceil(this.percentile * n) - 1)]!
    return Math.min(this.maxMillis, Math.max(this.minMillis, value + 1))
  }
}

const invalid = (option: string, reason: string) => new InvalidOptionError({ option, reason })

/**
 * An adaptive hedge delay: one millisecond past the `percentile` of the latencies of the last `window` successful
 * attempts (so that only an attempt slower than that starts a backup), clamped between `min` and `max`. A wrong setting throws an `InvalidOptionError` naming it. Share one between the fan-outs
 * calling one downstream: they learn its latency together.
 *
 * **Example**
 *
 * ```ts
 * import { Effect } from "effect"
 * import { FanOut, Hedge } from "effect-fanout"
 *
 * const delay = Hedge.adaptive({ percentile: 0.95, window: 100, min: "5 millis", max: "200 millis" })
 *
 * declare const replica: Effect.Effect<number, "unavailable" | "not found">
 *
 * // A replica that is unavailable gets a backup at once; "not found" ends every attempt: no replica would know.
 * const program = FanOut.settle([replica, replica], {
 *   hedge: { delay, max: 3, nonFatal: (error) => error === "unavailable" }
 * })
 * ```
 *
 * @since 1.1.0
 * @category constructors
 */
export const adaptive = (settings: AdaptiveSettings): Adaptive => {
  if (typeof settings !== "object" || settings === null) {
    throw invalid("hedge.delay", `must be { percentile, window, min, max }, got ${show(settings)}`)
  }
  const { percentile, window } = settings
  if (typeof percentile !== "number" || !(percentile > 0 && percentile <= 1)) {
    throw invalid("hedge.delay.percentile", `must be a number above 0 and at most 1, got ${show(percentile)}`)
  }
  if (typeof window !== "number" || !Number.isInteger(window) || window < 1 || window > 10_000) {
    throw invalid("hedge.delay.window", `must be an integer from 1 to 10000, got ${show(window)}`)
  }
  if (settings.min === undefined) throw invalid("hedge.delay.min", "is required")
  if (settings.max === undefined) throw invalid("hedge.delay.max", "is required")
  const min = millis(settings.min, "hedge.delay.min")!
  const max = millis(settings.max, "hedge.delay.max")!
  if (min > max) throw invalid("hedge.delay.min", `must not exceed max (${max} ms), got ${min} ms`)
  return new Window(percentile, window, min, max)
}

/**
 * Whether `u` is an adaptive delay made by {@link adaptive}.
 *
 * @since 1.1.0
 * @category guards
 */
export const isAdaptive = (u: unknown): u is Adaptive => typeof u === "object" && u !== null && TypeId in u
