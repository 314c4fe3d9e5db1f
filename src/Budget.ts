/**
 * Retry and hedge budgets: one token bucket, shared by every fan-out (and every request) that calls one downstream,
 * so that retries and hedges cannot turn a failing service into a storm.
 *
 * The design is gRPC's retry throttling (gRFC A6, `retryThrottling` in the service config), exactly: the bucket
 * holds `maxTokens` tokens to start with; every attempt that fails takes one token, every attempt that succeeds gives
 * back `tokenRatio` of one (never above `maxTokens`, never below zero); a retry or a hedge starts only while more than
 * `maxTokens / 2` tokens are left. First attempts always run: the bucket only decides whether an attempt that is not
 * the first may start. Tokens are counted in thousandths, as gRPC's implementations do, so `tokenRatio` keeps three
 * decimal places (more are dropped) and the counts never drift.
 *
 * Why this design and not Finagle's `RetryBudget` (a percentage of requests plus a floor per second over a window):
 * the bucket is one number, updated in O(1) by the attempts themselves with no clock and no window to keep, so it is
 * deterministic (a test needs no clock to drive it) and cheap enough to sit on every attempt; it reacts to failures,
 * not only to load — a downstream failing every call drains it and stops all retries and hedges after
 * `maxTokens / 2` failures, and successes earn them back; and it is the design the gRPC clients a service is likely
 * to be called by already use, with the same two numbers.
 *
 * @since 1.1.0
 */
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { InvalidOptionError } from "./FanOutError.js"
import { show } from "./internal/show.js"

const TypeId: unique symbol = Symbol.for("effect-fanout/Budget")

/**
 * A retry and hedge budget: a token bucket shared by the fan-outs given it as their `budget` option.
 *
 * @since 1.1.0
 * @category models
 */
export interface Budget {
  readonly [TypeId]: typeof TypeId
  /** The bucket's size, and how many tokens it holds when made. */
  readonly maxTokens: number
  /** The share of one token an attempt that succeeds gives back (three decimal places). */
  readonly tokenRatio: number
  /** The tokens left now. */
  readonly tokens: number
  /** Whether a retry or a hedge may start now: more than `maxTokens / 2` tokens are left. */
  readonly allows: boolean
  /** An attempt failed: one token less. @internal */
  readonly onFailure: () => void
  /** An attempt succeeded: `tokenRatio` tokens more. @internal */
  readonly onSuccess: () => void
}

/**
 * The settings of a budget, as gRPC's `retryThrottling` has them.
 *
 * @since 1.1.0
 * @category models
 */
export interface Settings {
  /** The bucket's size: a number above 0, at most 1000. Retries and hedges stop at half of it. */
  readonly maxTokens: number
  /** What each success gives back: a number above 0, at most 1 (three decimal places are kept). */
  readonly tokenRatio: number
}

class Bucket implements Budget {
  readonly [TypeId]: typeof TypeId = TypeId
  /** In thousandths of a token. */
  private count: number
  private readonly max: number
  private readonly ratio: number
  private readonly threshold: number
  constructor(readonly maxTokens: number, readonly tokenRatio: number) {
    this.max = Math.round(maxTokens * 1000)
    this.ratio = Math.round(tokenRatio * 1000)
    this.threshold = this.max / 2
    this.count = this.max
  }
  get tokens(): number {
    return this.count / 1000
  }
  get allows(): boolean {
    return this.count > this.threshold
  }
  onFailure(): void {
    this.count = Math.max(0, this.count - 1000)
  }
  onSuccess(): void {
    this.count = Math.min(this.max, this.count + this.ratio)
  }
}

const invalid = (option: string, reason: string) => new InvalidOptionError({ option, reason })

/**
 * Makes a budget at once, throwing an `InvalidOptionError` naming the setting that is wrong (`maxTokens` not above 0
 * or above 1000, `tokenRatio` not above 0 or above 1, or one that is not a number). For module-level budgets; in an
 * Effect, use {@link make}.
 *
 * @since 1.1.0
 * @category constructors
 */
export const makeUnsafe = (settings: Settings): Budget => {
  if (typeof settings !== "object" || settings === null) {
    throw invalid("budget", `must be { maxTokens, tokenRatio }, got ${show(settings)}`)
  }
  const { maxTokens, tokenRatio } = settings
  if (typeof maxTokens !== "number" || !(maxTokens > 0 && maxTokens <= 1000)) {
    throw invalid("budget.maxTokens", `must be a number above 0 and at most 1000, got ${show(maxTokens)}`)
  }
  if (typeof tokenRatio !== "number" || !(tokenRatio > 0 && tokenRatio <= 1)) {
    throw invalid("budget.tokenRatio", `must be a number above 0 and at most 1, got ${show(tokenRatio)}`)
  }
  // Three decimal places, the rest dropped (as gRPC reads `tokenRatio`); the tiny term absorbs binary rounding.
  const ratio = Math.floor(tokenRatio * 1000 + 1e-6) / 1000
  if (ratio === 0) throw invalid("budget.tokenRatio", `keeps three decimal places, so ${show(tokenRatio)} is 0`)
  return new Bucket(maxTokens, ratio)
}

/**
 * Makes a budget, full: `maxTokens` tokens. Share it between every fan-out that calls the same downstream (make it
 * once, in that client's layer), and give it to them as their `budget` option. A wrong setting fails with an
 * `InvalidOptionError` naming it.
 *
 * **Example**
 *
 * ```ts
 * import { Effect, Schedule } from "effect"
 * import { Budget, FanOut } from "effect-fanout"
 *
 * const program = Effect.gen(function*() {
 *   // gRPC's example numbers: 10 tokens, each success gives back 0.1; no retry below 5 tokens.
 *   const budget = yield* Budget.make({ maxTokens: 10, tokenRatio: 0.1 })
 *   return yield* FanOut.settle([Effect.fail("down"), Effect.succeed(1)], {
 *     retry: Schedule.recurs(3),
 *     budget
 *   })
 * })
 * ```
 *
 * @since 1.1.0
 * @category constructors
 */
export const make = (settings: Settings): Effect.Effect<Budget, InvalidOptionError> =>
  Effect.suspend(() => {
    try {
      return Effect.succeed(makeUnsafe(settings))
    } catch (error) {
      return Effect.fail(error as InvalidOptionError)
    }
  })

/**
 * A budget as a service: a Layer making one, full, as the service `key`, which every request that calls that
 * downstream then shares for as long as the layer lives. Declare one key per downstream.
 *
 * **Example**
 *
 * ```ts
 * import { Context, Effect, Schedule } from "effect"
 * import { Budget, FanOut } from "effect-fanout"
 *
 * // One budget per downstream, shared by every request.
 * const PricingBudget = Context.Service<Budget.Budget>("app/PricingBudget")
 * const PricingBudgetLive = Budget.layer(PricingBudget, { maxTokens: 10, tokenRatio: 0.1 })
 *
 * const quote = (fetchQuote: Effect.Effect<number, "unavailable">) =>
 *   Effect.gen(function*() {
 *     const budget = yield* PricingBudget
 *     return yield* FanOut.settle([fetchQuote, fetchQuote], { retry: Schedule.recurs(2), budget })
 *   })
 *
 * const program = quote(Effect.succeed(42)).pipe(Effect.provide(PricingBudgetLive))
 * ```
 *
 * @since 1.1.0
 * @category layers
 */
export const layer = <I>(key: Context.Key<I, Budget>, settings: Settings): Layer.Layer<I, InvalidOptionError> =>
  Layer.effect(key, make(settings))

/**
 * The tokens a budget holds now.
 *
 * @since 1.1.0
 * @category getters
 */
export const tokens = (budget: Budget): Effect.Effect<number> => Effect.sync(() => budget.tokens)

/**
 * Whether `u` is a budget made by {@link make}.
 *
 * @since 1.1.0
 * @category guards
 */
export const isBudget = (u: unknown): u is Budget => typeof u === "object" && u !== null && TypeId in u
