import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, FiberRef, HashMap, Option, Tracer } from "effect"
import { FanOut } from "../src/index.js"

class Greeting extends Context.Tag("Greeting")<Greeting, { readonly hello: string }>() {}

const annotation = (key: string) =>
  Effect.map(FiberRef.get(FiberRef.currentLogAnnotations), (annotations) => HashMap.get(annotations, key))

/** The names of a span and its ancestors, innermost first. */
const lineage = (span: Tracer.AnySpan): Array<string> => {
  const names: Array<string> = []
  let current: Option.Option<Tracer.AnySpan> = Option.some(span)
  while (Option.isSome(current)) {
    const s: Tracer.AnySpan = current.value
    names.push(s._tag === "Span" ? s.name : `external:${s.spanId}`)
    current = s._tag === "Span" ? s.parent : Option.none()
  }
  return names
}

describe("fiber-local state", () => {
  describe("tasks see the caller's state", () => {
    it.effect("sees the caller's FiberRef values, with and without a concurrency bound", () =>
      Effect.gen(function*() {
        const ref = FiberRef.unsafeMake(0)
        for (const concurrency of [1, 2, "unbounded"] as const) {
          const values = yield* Effect.locally(
            FanOut.all([FiberRef.get(ref), FiberRef.get(ref), FiberRef.get(ref)], { concurrency }),
            ref,
            7
          )
          expect(values).toStrictEqual([7, 7, 7])
          const outcomes = yield* Effect.locally(FanOut.settle({ a: FiberRef.get(ref) }, { concurrency }), ref, 8)
          expect(outcomes.a).toMatchObject({ _tag: "Success", value: 8 })
        }
      }))

    it.effect("sees the caller's log annotations", () =>
      Effect.gen(function*() {
        const seen = yield* FanOut.forEach([1, 2], () => annotation("requestId"), { concurrency: 1 }).pipe(
          Effect.annotateLogs("requestId", "r-42")
        )
        expect(seen).toStrictEqual([Option.some("r-42"), Option.some("r-42")])
        const unbounded = yield* FanOut.settle([annotation("requestId")]).pipe(Effect.annotateLogs("requestId", "r-43"))
        expect(unbounded[0]).toMatchObject({ _tag: "Success", value: Option.some("r-43") })
      }))

    it.effect("sees the caller's services", () =>
      Effect.gen(function*() {
        const greeting = Effect.map(Greeting, (g) => g.hello)
        const result = yield* FanOut.all({ a: greeting, b: greeting }, { concurrency: 1 }).pipe(
          Effect.provideService(Greeting, { hello: "hi" })
        )
        expect(result).toStrictEqual({ a: "hi", b: "hi" })
      }))

    it.effect("runs tasks under a span opened around the fan-out", () =>
      Effect.gen(function*() {
        const [outer, spans] = yield* Effect.all([
          Effect.currentSpan,
          FanOut.all([
            Effect.withSpan(Effect.currentSpan, "inner-0"),
            Effect.withSpan(Effect.currentSpan, "inner-1")
          ], { concurrency: 1 })
        ]).pipe(Effect.withSpan("outer"))
        for (const [i, span] of spans.entries()) {
          const names = lineage(span)
          expect(names[0]).toBe(`inner-${i}`)
          expect(names).toContain("outer")
          expect(span.traceId).toBe(outer.traceId)
          // the outer span is an ancestor, and nothing above it was invented
          expect(names.slice(names.indexOf("outer"))).toStrictEqual(lineage(outer))
        }
      }))

    it.effect("a task's own span is a child of the span around the fan-out when the task opens none", () =>
      Effect.gen(function*() {
        const [outer, outcomes] = yield* Effect.all([
          Effect.currentSpan,
          FanOut.settle([Effect.currentSpan])
        ]).pipe(Effect.withSpan("outer"))
        const [o] = outcomes
        expect(o._tag).toBe("Success")
        if (o._tag === "Success") {
          expect(lineage(o.value)).toContain("outer")
          expect(o.value.traceId).toBe(outer.traceId)
        }
      }))
  })

  describe("changes stay inside the task", () => {
    it.effect("a FiberRef set inside a task is not visible to the caller afterwards", () =>
      Effect.gen(function*() {
        const ref = FiberRef.unsafeMake(0)
        for (const concurrency of [1, "unbounded"] as const) {
          yield* FanOut.all([FiberRef.set(ref, 5), FiberRef.set(ref, 6)], { concurrency })
          expect(yield* FiberRef.get(ref)).toBe(0)
          yield* FanOut.settle([FiberRef.set(ref, 5), Effect.zipRight(FiberRef.set(ref, 6), Effect.fail("x"))], {
            concurrency
          })
          expect(yield* FiberRef.get(ref)).toBe(0)
        }
      }))

    it.effect("a FiberRef set by one task is not seen by the next task on the same worker", () =>
      Effect.gen(function*() {
        const ref = FiberRef.unsafeMake(0)
        const result = yield* FanOut.all([
          Effect.as(FiberRef.set(ref, 5), "set"),
          FiberRef.get(ref),
          Effect.zipRight(FiberRef.update(ref, (n) => n + 1), FiberRef.get(ref))
        ], { concurrency: 1 })
        expect(result).toStrictEqual(["set", 0, 1])
      }))

    it.effect("a failing task's FiberRef changes are not seen by the next task on the same worker", () =>
      Effect.gen(function*() {
        const ref = FiberRef.unsafeMake("clean")
        const outcomes = yield* FanOut.settle([
          Effect.zipRight(FiberRef.set(ref, "dirty"), Effect.fail("failed")),
          Effect.zipRight(FiberRef.set(ref, "dirty"), Effect.die("crashed")),
          FiberRef.get(ref)
        ], { concurrency: 1 })
        expect(outcomes.map((o) => o._tag)).toStrictEqual(["Failure", "Defect", "Success"])
        expect(outcomes[2]).toMatchObject({ value: "clean" })
      }))

    it.effect("log annotations added by one task are not seen by the next task on the same worker", () =>
      Effect.gen(function*() {
        const result = yield* FanOut.all([
          FiberRef.update(FiberRef.currentLogAnnotations, HashMap.set<string, unknown>("leak", "yes")),
          annotation("leak"),
          annotation("requestId")
        ], { concurrency: 1 }).pipe(Effect.annotateLogs("requestId", "r-1"))
        expect(result[1]).toStrictEqual(Option.none())
        expect(result[2]).toStrictEqual(Option.some("r-1"))
        expect(yield* annotation("leak")).toStrictEqual(Option.none())
      }))
  })
})
