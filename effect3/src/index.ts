/**
 * effect-fanout: structured concurrent fan-out for Effect.
 *
 * @since 0.1.0
 */

/**
 * Fail fast (`all`, `forEach`) and settle (`settle`, `settleForEach`).
 *
 * @since 0.1.0
 */
export * as FanOut from "./FanOut.js"

/**
 * What one task of a settled fan-out did.
 *
 * @since 0.1.0
 */
export * as Outcome from "./Outcome.js"

/**
 * The errors a fan-out itself raises.
 *
 * @since 0.1.0
 */
export * as FanOutError from "./FanOutError.js"
