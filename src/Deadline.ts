/**
 * The deadline a task runs under: the time left before the tightest enclosing fan-out `deadline` passes, readable
 * from inside the task (to pass on to a callee, in the style of gRPC's `grpc-timeout`).
 *
 * A fan-out with a `deadline` runs its tasks under it; a fan-out nested inside a task runs under the smaller of its
 * own `deadline` and the one around it, so that it never outlives the enclosing deadline: adopting the enclosing one,
 * it ends 1 ms before it, so that its result (settle's partial results) reaches the task that runs it in time.
 * Outside any fan-out with a deadline there is none. A fan-out without a `deadline` does no extra work per task: its tasks see the deadline
 * around the fan-out, if any.
 *
 * @since 1.1.0
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { CurrentDeadline } from "./internal/deadline.js"

/**
 * The time left before the tightest enclosing deadline, by the fiber's `Clock` (so `TestClock` drives it):
 * `Option.none()` when no enclosing fan-out has a deadline, `Duration.zero` once it has passed.
 *
 * **Example**
 *
 * ```ts
 * import { Duration, Effect, Option } from "effect"
 * import { Deadline, FanOut } from "effect-fanout"
 *
 * const call = Effect.gen(function*() {
 *   const left = yield* Deadline.remaining
 *   // e.g. send it to the callee as a header
 *   return Option.match(left, { onNone: () => "none", onSome: (d) => `${Duration.toMillis(d)}m` })
 * })
 * const page = FanOut.settle([call], { deadline: "800 millis" })
 * ```
 *
 * @since 1.1.0
 * @category deadline
 */
export const remaining: Effect.Effect<Option.Option<Duration.Duration>> = Effect.withFiber((fiber) => {
  const due = fiber.getRef(CurrentDeadline)
  if (due === Infinity) return Effect.succeed(Option.none())
  const now = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
  return Effect.succeed(Option.some(Duration.millis(Math.max(0, due - now))))
})
