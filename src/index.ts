/**
 * effect-fanout: structured concurrent fan-out for Effect 4.
 *
 * @since 1.0.0
 */

/**
 * Fail fast (`all`, `forEach`), settle (`settle`, `settleForEach`), quorum, hedging and streaming.
 *
 * @since 1.0.0
 */
export * as FanOut from "./FanOut.js"

/**
 * What one task of a settled fan-out did.
 *
 * @since 1.0.0
 */
export * as Outcome from "./Outcome.js"

/**
 * The errors a fan-out itself raises.
 *
 * @since 1.0.0
 */
export * as FanOutError from "./FanOutError.js"

/**
 * The time left before the tightest enclosing fan-out deadline, readable inside a task.
 *
 * @since 1.1.0
 */
export * as Deadline from "./Deadline.js"

/**
 * Why a fan-out interrupted a task, as typed data, readable from the task's exit and its `Interrupted` outcome.
 *
 * @since 1.1.0
 */
export * as Cancellation from "./Cancellation.js"

/**
 * Retry and hedge budgets: gRPC's retry-throttling token bucket, shared across fan-outs.
 *
 * @since 1.1.0
 */
export * as Budget from "./Budget.js"

/**
 * Adaptive hedge delays, read from observed latency.
 *
 * @since 1.1.0
 */
export * as Hedge from "./Hedge.js"

/**
 * Attempt telemetry: attempts by type (original, retry, hedge) in task spans and, when turned on, in metrics.
 *
 * @since 1.1.0
 */
export * as Attempt from "./Attempt.js"
