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

class Window implements Adaptive {
  readonly [TypeId]: typeof TypeId = TypeId
  private readonly samples: Array<number> = []
  private next = 0
  // The delay is recomputed when asked after a new sample, not on every sample.
  private cached: number | undefined = undefined
  constructor(
    readonly percentile: number,
    readonly window: number,
    readonly minMillis: number,
    readonly maxMillis: number
  ) {}
  observe(latency: number): void {
    if (this.samples.length < this.window) this.samples.push(latency)
    else this.samples[this.next] = latency
    this.next = (this.next + 1) % this.window
    this.cached = undefined
  }
  delayMillis(): number {
    if (this.cached !== undefined) return this.cached
    const n = this.samples.length
    if (n === 0) return this.cached = this.maxMillis
    const sorted = this.samples.slice().sort((a, b) => a - b)
    // The nearest-rank percentile: the smallest sample at least `percentile` of the samples do not exceed.
    const value = sorted[Math.max(0, Math.ceil(this.percentile * n) - 1)]!
    return this.cached = Math.min(this.maxMillis, Math.max(this.minMillis, value))
  }
}

const invalid = (option: string, reason: string) => new InvalidOptionError({ option, reason })

/**
 * An adaptive hedge delay: the `percentile` of the latencies of the last `window` successful attempts, clamped
 * between `min` and `max`. A wrong setting throws an `InvalidOptionError` naming it. Share one between the fan-outs
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
