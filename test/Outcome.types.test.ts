/**
 * Static types of outcomes. The assertions are checked by `tsc --noEmit` (part of `npm test`); at run time they are
 * no-ops, so each `it` only proves that the file type-checks.
 */
import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import { Data } from "effect"
import type * as Cause from "effect/Cause"
import * as Outcome from "../src/Outcome.js"

class NotFound extends Data.TaggedError("NotFound")<{}> {}
class Unavailable extends Data.TaggedError("Unavailable")<{}> {}

declare const tuple: [Outcome.Outcome<number, NotFound>, Outcome.Outcome<string, Unavailable>]
declare const struct: { a: Outcome.Outcome<number, NotFound>; b: Outcome.Outcome<never, "bad"> }

describe("Outcome types", () => {
  it("narrows by _tag", () => {
    const check = (o: Outcome.Outcome<number, NotFound>) => {
      switch (o._tag) {
        case "Success":
          expectTypeOf(o.value).toEqualTypeOf<number>()
          break
        case "Failure":
          expectTypeOf(o.error).toEqualTypeOf<NotFound>()
          expectTypeOf(o.cause).toEqualTypeOf<Cause.Cause<NotFound>>()
          break
        case "Defect":
          expectTypeOf(o.defect).toEqualTypeOf<unknown>()
          expectTypeOf(o.cause).toEqualTypeOf<Cause.Cause<never>>()
          expectTypeOf(o.stack).toEqualTypeOf<string>()
          break
        case "TimedOut":
          expectTypeOf(o.reason).toEqualTypeOf<"Timeout" | "Deadline">()
          break
      }
      expectTypeOf(o.key).toEqualTypeOf<string | number>()
      expectTypeOf(o.label).toEqualTypeOf<string | undefined>()
      expectTypeOf(o.durationMillis).toEqualTypeOf<number>()
      expectTypeOf(o.attempts).toEqualTypeOf<number>()
    }
    expect(typeof check).toBe("function")
  })

  it("narrows with the guards", () => {
    const check = (o: Outcome.Outcome<number, NotFound>) => {
      if (Outcome.isSuccess(o)) expectTypeOf(o).toEqualTypeOf<Outcome.Success<number>>()
      if (Outcome.isFailure(o)) expectTypeOf(o).toEqualTypeOf<Outcome.Failure<NotFound>>()
      if (Outcome.isDefect(o)) expectTypeOf(o).toEqualTypeOf<Outcome.Defect>()
      if (Outcome.isTimedOut(o)) expectTypeOf(o).toEqualTypeOf<Outcome.TimedOut>()
      if (Outcome.isInterrupted(o)) expectTypeOf(o).toEqualTypeOf<Outcome.Interrupted>()
    }
    expect(typeof check).toBe("function")
  })

  it("match infers the value and the error in the data-first form, and returns the handlers' type", () => {
    const check = (o: Outcome.Outcome<number, NotFound>) =>
      Outcome.match(o, {
        onSuccess: (value) => {
          expectTypeOf(value).toEqualTypeOf<number>()
          return 1 as const
        },
        onFailure: (error) => {
          expectTypeOf(error).toEqualTypeOf<NotFound>()
          return 2 as const
        },
        onDefect: (thrown) => {
          expectTypeOf(thrown).toEqualTypeOf<unknown>()
          return 3 as const
        },
        onTimedOut: () => 4 as const,
        onInterrupted: () => 5 as const
      })
    expectTypeOf(check).returns.toEqualTypeOf<1 | 2 | 3 | 4 | 5>()
    expect(typeof check).toBe("function")
  })

  it("gives the successes' values and the failures' errors of a tuple or a struct", () => {
    const check = () => {
      expectTypeOf(Outcome.successes(tuple)).toEqualTypeOf<Array<Outcome.Success<number | string>>>()
      expectTypeOf(Outcome.failures(tuple)).toEqualTypeOf<Array<Outcome.Failure<NotFound | Unavailable>>>()
      expectTypeOf(Outcome.successes(struct)).toEqualTypeOf<Array<Outcome.Success<number>>>()
      expectTypeOf(Outcome.failures(struct)).toEqualTypeOf<Array<Outcome.Failure<NotFound | "bad">>>()
      expectTypeOf(Outcome.defects(struct)).toEqualTypeOf<Array<Outcome.Defect>>()
      expectTypeOf(Outcome.partition(struct)).toEqualTypeOf<
        [succeeded: Array<Outcome.Success<number>>, notSucceeded: Array<Outcome.NotSuccess<NotFound | "bad">>]
      >()
      expectTypeOf(Outcome.errors(tuple)).toEqualTypeOf<Array<NotFound | Unavailable | Error | undefined>>()
    }
    expect(typeof check).toBe("function")
  })

  it("allSucceeded narrows every slot of a tuple or a struct to its success", () => {
    const check = () => {
      if (Outcome.allSucceeded(tuple)) {
        expectTypeOf(tuple[0].value).toEqualTypeOf<number>()
        expectTypeOf(tuple[1].value).toEqualTypeOf<string>()
      }
      if (Outcome.allSucceeded(struct)) {
        expectTypeOf(struct.a.value).toEqualTypeOf<number>()
        expectTypeOf(struct.b).toEqualTypeOf<Outcome.Success<never>>()
      }
    }
    expect(typeof check).toBe("function")
  })
})
