/**
 * The errors a fan-out itself can raise (the tasks' own errors pass through untouched).
 *
 * @since 1.0.0
 */
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import { formatDuration } from "./internal/duration.js"
import type * as Outcome from "./Outcome.js"

/**
 * An option was out of range (`concurrency: 0`, `timeout: -1`, `quorum` above the task count, ...).
 *
 * It is raised before any task starts, as a defect: a wrong option is a bug in the calling code, and `FanOut.settle`
 * keeps its promise of an error channel of `never`. Catch it with `Effect.catchDefect` or read it from the `Exit`.
 *
 * @since 1.0.0
 * @category errors
 */
export class InvalidOptionError extends Data.TaggedError("InvalidOptionError")<{
  /** The option's name, such as `"concurrency"` or `"timeout"`. */
  readonly option: string
  readonly reason: string
}> {
  override get message(): string {
    return `effect-fanout: option \`${this.option}\` ${this.reason}`
  }
}

/**
 * A fan-out ran out of time: one task's `timeout` (`reason: "Timeout"`, with that task's `key` and `label`) or the
 * whole fan-out's `deadline` (`reason: "Deadline"`; `key` and `label` then name the required task the deadline cut
 * off in `settle` with `required`, and are `undefined` in fail-fast mode).
 *
 * @since 1.0.0
 * @category errors
 */
export class FanOutTimeoutError extends Data.TaggedError("FanOutTimeoutError")<{
  readonly reason: "Timeout" | "Deadline"
  readonly key: Outcome.Key | undefined
  readonly label: string | undefined
  readonly duration: Duration.Duration
}> {
  override get message(): string {
    if (this.reason === "Deadline") {
      return this.key === undefined
        ? `fan-out deadline of ${formatDuration(this.duration)} passed`
        : `required task ${this.label ?? String(this.key)} did not finish by the deadline of ${
          formatDuration(this.duration)
        }`
    }
    return `task ${this.label ?? String(this.key)} timed out after ${formatDuration(this.duration)}`
  }
}

/**
 * The error of `FanOut.all(tasks, { report: true })`: which task ended the fan-out and why, plus what every task
 * did, so the caller can tell the first failure from the others seen while the rest were being interrupted.
 *
 * - `reason`: `"Failure"` (a typed error: `error` holds it), `"Defect"` (a crash), `"Timeout"` (a task's own
 *   timeout), `"Deadline"` (the fan-out's deadline; `key` and `label` name the required task it cut off in
 *   `settle`, and are `undefined` in fail-fast mode), or `"Interrupted"` (a task interrupted itself).
 * - `failures`: every task that genuinely failed, in the order they ended, the first one first; tasks that the
 *   fan-out interrupted are not here. In `settle` with `required`, a task the deadline cut off did not come, and is
 *   here as `TimedOut`.
 * - `outcomes`: one outcome per task, in input order (the ones the fan-out interrupted are `Interrupted`; in
 *   `settle` with `required`, those the deadline cut off are `TimedOut`, as in its outcomes).
 *
 * @since 1.0.0
 * @category errors
 */
export class FanOutFailure<E> extends Data.TaggedError("FanOutFailure")<{
  readonly reason: "Failure" | "Defect" | "Timeout" | "Deadline" | "Interrupted"
  readonly key: Outcome.Key | undefined
  readonly label: string | undefined
  readonly error: E | undefined
  readonly failures: ReadonlyArray<Outcome.NotSuccess<E>>
  readonly outcomes: ReadonlyArray<Outcome.Outcome<unknown, E>>
}> {
  override get message(): string {
    const who = this.label ?? (this.key === undefined ? "the fan-out" : String(this.key))
    switch (this.reason) {
      case "Failure":
        return `task ${who} failed: ${describe(this.error)}`
      case "Defect":
        return `task ${who} crashed`
      case "Timeout":
        return `task ${who} timed out`
      case "Deadline":
        return this.key === undefined ? "fan-out deadline passed" : `task ${who} did not finish by the deadline`
      case "Interrupted":
        return `task ${who} was interrupted`
    }
  }
}

const describe = (error: unknown): string => {
  if (error instanceof Error) return error.message
  if (typeof error === "object" && error !== null && "_tag" in error) return String(error._tag)
  return String(error)
}

/**
 * `FanOut.quorum` (or `FanOut.firstSuccess`) could no longer reach its quorum: too many tasks failed, timed out or
 * were cut off by the deadline. `outcomes` holds every task's outcome in input order, so nothing is lost.
 *
 * @since 1.0.0
 * @category errors
 */
export class QuorumError<E> extends Data.TaggedError("QuorumError")<{
  /** How many successes were needed. */
  readonly needed: number
  /** How many tasks succeeded. */
  readonly succeeded: number
  readonly outcomes: ReadonlyArray<Outcome.Outcome<unknown, E>>
}> {
  override get message(): string {
    return `quorum of ${this.needed} not reached: ${this.succeeded} of ${this.outcomes.length} tasks succeeded`
  }
}
