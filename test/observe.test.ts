/**
 * Tracing and metrics: one span per fan-out with its counts by outcome, one child span per task (by default only under
 * a tracer that exports), and the outcome and duration metrics every fan-out records when it ends.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Metric, Option, Ref, References, Schedule, Stream, Tracer } from "effect"
import { TestClock } from "effect/testing"
import { FanOut } from "../src/index.js"
import { recording } from "./support.js"

const parentOf = (span: Tracer.AnySpan): string | undefined => {
  if (span._tag !== "Span") return undefined
  const parent = Option.getOrUndefined(span.parent)
  return parent === undefined ? undefined : parent._tag === "Span" ? parent.name : `external:${parent.spanId}`
}

const counts = (span: Tracer.NativeSpan) => ({
  Success: span.attributes.get("fanout.outcome.Success"),
  Failure: span.attributes.get("fanout.outcome.Failure"),
  Defect: span.attributes.get("fanout.outcome.Defect"),
  TimedOut: span.attributes.get("fanout.outcome.TimedOut"),
  Interrupted: span.attributes.get("fanout.outcome.Interrupted")
})

const taskMarks = (span: Tracer.NativeSpan) => ({
  key: span.attributes.get("fanout.task.key"),
  outcome: span.attributes.get("fanout.task.outcome"),
  attempts: span.attributes.get("fanout.task.attempts")
})

/** The name and parent of the span a task runs under. */
const whereAmI = Effect.map(Effect.orDie(Effect.currentSpan), (span) => [span.name, parentOf(span)] as const)

describe("the fan-out span", () => {
  it.effect("is named by `name`, a child of the caller's span, with its settings and its counts by outcome", () =>
    Effect.gen(function*() {
      const { named, tracer } = recording()
      const outcomes = yield* FanOut.settle({
        profile: Effect.succeed(1),
        orders: Effect.fail("down"),
        crash: Effect.die("bug"),
        quit: Effect.interrupt
      }, { name: "page", concurrency: 2 }).pipe(Effect.withSpan("request"), Effect.withTracer(tracer))
      expect([outcomes.profile._tag, outcomes.orders._tag, outcomes.crash._tag, outcomes.quit._tag])
        .toStrictEqual(["Success", "Failure", "Defect", "Interrupted"])
      const page = named("page")
      expect(parentOf(page)).toBe("request")
      expect(page.status._tag).toBe("Ended")
      expect(page.attributes.get("fanout.mode")).toBe("settle")
      expect(page.attributes.get("fanout.tasks")).toBe(4)
      expect(page.attributes.get("fanout.concurrency")).toBe(2)
      expect(counts(page)).toStrictEqual({ Success: 1, Failure: 1, Defect: 1, TimedOut: 0, Interrupted: 1 })
    }))

  it.effect("is named fanout.<kind> by default, says an unbounded concurrency so, and counts an empty fan-out", () =>
    Effect.gen(function*() {
      const { named, tracer } = recording()
      yield* FanOut.all([Effect.succeed(1), Effect.succeed(2)]).pipe(Effect.withTracer(tracer))
      yield* FanOut.settle([]).pipe(Effect.withTracer(tracer))
      const all = named("fanout.all")
      expect(all.attributes.get("fanout.mode")).toBe("all")
      expect(all.attributes.get("fanout.concurrency")).toBe("unbounded")
      expect(counts(all)).toStrictEqual({ Success: 2, Failure: 0, Defect: 0, TimedOut: 0, Interrupted: 0 })
      const empty = named("fanout.settle")
      expect(empty.attributes.get("fanout.tasks")).toBe(0)
      expect(counts(empty)).toStrictEqual({ Success: 0, Failure: 0, Defect: 0, TimedOut: 0, Interrupted: 0 })
    }))

  it.effect("ends with the fan-out's exit when it fails fast, counting the siblings it interrupted", () =>
    Effect.gen(function*() {
      const { named, tracer } = recording()
      const exit = yield* FanOut.all([Effect.never, Effect.fail("down")], { name: "strict" }).pipe(
        Effect.withTracer(tracer),
        Effect.exit
      )
      expect(Exit.isFailure(exit)).toBe(true)
      const strict = named("strict")
      expect(strict.status._tag === "Ended" && Exit.isFailure(strict.status.exit)).toBe(true)
      expect(counts(strict)).toStrictEqual({ Success: 0, Failure: 1, Defect: 0, TimedOut: 0, Interrupted: 1 })
    }))

  it.effect("a fan-out interrupted from outside still ends its span with the counts by outcome", () =>
    Effect.gen(function*() {
      const { named, tracer } = recording()
      yield* FanOut.stream([Effect.never, Effect.succeed("b"), Effect.never], { name: "progressive" }).pipe(
        Stream.take(1),
        Stream.runCollect,
        Effect.withTracer(tracer)
      )
      expect(counts(named("progressive"))).toMatchObject({ Success: 1, Interrupted: 2 })

      const started = yield* Deferred.make<void>()
      const fiber = yield* FanOut.settle([
        Effect.succeed(1),
        Deferred.succeed(started, undefined).pipe(Effect.andThen(Effect.never))
      ], { name: "cancelled" }).pipe(Effect.withTracer(tracer), Effect.forkChild)
      yield* Deferred.await(started)
      yield* Fiber.interrupt(fiber)
      expect(counts(named("cancelled"))).toMatchObject({ Success: 1, Interrupted: 1 })
    }))

  it.effect("an empty stream still opens its fan-out's span", () =>
    Effect.gen(function*() {
      const { named, tracer } = recording()
      const out = yield* Stream.runCollect(FanOut.stream([], { name: "nothing" })).pipe(Effect.withTracer(tracer))
      expect(out).toStrictEqual([])
      expect(named("nothing").attributes.get("fanout.tasks")).toBe(0)
    }))

  it.effect("without an exporting tracer, tasks run under the fan-out's span and no span is made per task", () =>
    Effect.gen(function*() {
      const where = yield* FanOut.all([whereAmI]).pipe(Effect.withSpan("outer"))
      expect(where).toStrictEqual([["fanout.all", "outer"]])
    }))
})

describe("task spans", () => {
  it.effect("one child span per task, named by its label or key, parent of the spans inside the task", () =>
    Effect.gen(function*() {
      const { ended, named, tracer } = recording()
      yield* FanOut.settle([
        Effect.succeed(1).pipe(Effect.withSpan("profile.query"), FanOut.labeled("profile")),
        Effect.fail("down"),
        Effect.die("bug").pipe(FanOut.labeled("crash"))
      ], { name: "page" }).pipe(Effect.withSpan("request"), Effect.withTracer(tracer))
      expect(parentOf(named("profile"))).toBe("page")
      expect(parentOf(named("profile.query"))).toBe("profile")
      expect(parentOf(named("1"))).toBe("page")
      expect(taskMarks(named("profile"))).toStrictEqual({ key: 0, outcome: "Success", attempts: 1 })
      expect(taskMarks(named("1"))).toStrictEqual({ key: 1, outcome: "Failure", attempts: 1 })
      expect(taskMarks(named("crash"))).toStrictEqual({ key: 2, outcome: "Defect", attempts: 1 })
      // Inner spans end before their task's, task spans before the fan-out's.
      const order = ended.map((span) => span.name)
      expect(order.indexOf("profile.query")).toBeLessThan(order.indexOf("profile"))
      for (const task of ["profile", "1", "crash"]) expect(order.indexOf(task)).toBeLessThan(order.indexOf("page"))
    }))

  it.effect("a struct's task spans carry their keys; forEach's their labels", () =>
    Effect.gen(function*() {
      const { named, tracer } = recording()
      yield* FanOut.all({ users: Effect.succeed(1) }, { name: "struct" }).pipe(Effect.withTracer(tracer))
      yield* FanOut.forEach(["eu"], (region) => Effect.succeed(region), {
        name: "each",
        label: (region) => `pricing-${region}`
      }).pipe(Effect.withTracer(tracer))
      expect(taskMarks(named("users"))).toStrictEqual({ key: "users", outcome: "Success", attempts: 1 })
      expect(parentOf(named("pricing-eu"))).toBe("each")
      expect(named("pricing-eu").attributes.get("fanout.task.key")).toBe(0)
    }))

  it.effect("says TimedOut for the task's own timeout, Failure for a nested fan-out's timeout", () =>
    Effect.gen(function*() {
      const { named, tracer } = recording()
      const fiber = yield* FanOut.settle({
        slow: Effect.never,
        nested: FanOut.all([Effect.never], { timeout: "1 second", name: "inner" })
      }, { timeout: "5 seconds", name: "outer" }).pipe(Effect.withTracer(tracer), Effect.forkChild)
      yield* TestClock.adjust("1 second")
      yield* TestClock.adjust("4 seconds")
      const outcomes = yield* Fiber.join(fiber)
      expect([outcomes.slow._tag, outcomes.nested._tag]).toStrictEqual(["TimedOut", "Failure"])
      // The nested fan-out names its own task 0: that span is the nested task's, and it timed out.
      expect(parentOf(named("0"))).toBe("inner")
      expect(named("0").attributes.get("fanout.task.outcome")).toBe("TimedOut")
      expect(named("nested").attributes.get("fanout.task.outcome")).toBe("Failure")
      expect(named("slow").attributes.get("fanout.task.outcome")).toBe("TimedOut")
      expect(counts(named("outer"))).toMatchObject({ TimedOut: 1, Failure: 1 })
    }))

  it.effect("a task cut off by the deadline says TimedOut on its span, as its outcome and the counts do", () =>
    Effect.gen(function*() {
      const { named, tracer } = recording()
      const fiber = yield* FanOut.settle({ slow: Effect.never, fast: Effect.succeed(1) }, {
        deadline: "1 second",
        name: "page"
      }).pipe(Effect.withTracer(tracer), Effect.forkChild)
      yield* TestClock.adjust("1 second")
      const outcomes = yield* Fiber.join(fiber)
      expect(outcomes.slow).toMatchObject({ _tag: "TimedOut", reason: "Deadline" })
      expect(named("slow").attributes.get("fanout.task.outcome")).toBe("TimedOut")
      expect(named("fast").attributes.get("fanout.task.outcome")).toBe("Success")
      expect(counts(named("page"))).toMatchObject({ TimedOut: 1, Success: 1 })
    }))

  it.effect("a sibling the fan-out stopped says Interrupted", () =>
    Effect.gen(function*() {
      const { named, tracer } = recording()
      yield* Effect.exit(FanOut.all({ hang: Effect.never, down: Effect.fail("x") }).pipe(Effect.withTracer(tracer)))
      expect(taskMarks(named("hang"))).toStrictEqual({ key: "hang", outcome: "Interrupted", attempts: 1 })
      expect(named("down").attributes.get("fanout.task.outcome")).toBe("Failure")
    }))

  it.effect("counts the attempts of a retried task", () =>
    Effect.gen(function*() {
      const { named, tracer } = recording()
      const tries = yield* Ref.make(0)
      const flaky = Ref.updateAndGet(tries, (n) => n + 1).pipe(
        Effect.flatMap((n) => n < 3 ? Effect.fail("down") : Effect.succeed(n))
      )
      yield* FanOut.settle({ flaky }, { retry: Schedule.recurs(5) }).pipe(Effect.withTracer(tracer))
      expect(taskMarks(named("flaky"))).toStrictEqual({ key: "flaky", outcome: "Success", attempts: 3 })
    }))

  it.effect("a detached task's span ends when the task does, after the fan-out has answered", () =>
    Effect.gen(function*() {
      const { ended, named, tracer } = recording()
      const release = yield* Deferred.make<void>()
      const slow = Effect.never.pipe(Effect.onInterrupt(() => Deferred.await(release)))
      const exit = yield* Effect.exit(
        FanOut.all({ slow, down: Effect.fail("x") }, { detach: true, name: "detached" }).pipe(Effect.withTracer(tracer))
      )
      expect(Exit.isFailure(exit)).toBe(true)
      expect(counts(named("detached"))).toMatchObject({ Failure: 1, Interrupted: 1 })
      expect(ended.some((span) => span.name === "slow")).toBe(false)
      yield* Deferred.succeed(release, undefined)
      // The released task was scheduled to resume before this yield: it ends first.
      yield* Effect.yieldNow
      expect(taskMarks(named("slow"))).toStrictEqual({ key: "slow", outcome: "Interrupted", attempts: 1 })
    }))

  it.effect("are made by default under a tracer other than Effect's own, and taskSpans overrides either way", () =>
    Effect.gen(function*() {
      const { ended, tracer } = recording()
      expect(yield* FanOut.all([whereAmI], { name: "on" }).pipe(Effect.withTracer(tracer))).toStrictEqual([
        ["0", "on"]
      ])
      expect(yield* FanOut.all([whereAmI], { name: "off", taskSpans: false }).pipe(Effect.withTracer(tracer)))
        .toStrictEqual([["off", undefined]])
      expect(ended.map((span) => span.name)).toStrictEqual(["0", "on", "off"])
      // Effect's own tracer: off by default, on when asked.
      expect(yield* FanOut.all([whereAmI], { name: "native" })).toStrictEqual([["native", undefined]])
      expect(yield* FanOut.all([whereAmI], { name: "asked", taskSpans: true })).toStrictEqual([["0", "asked"]])
    }))

  it.effect("are not made by default while tracing is disabled, even under an exporting tracer", () =>
    Effect.gen(function*() {
      const { ended, tracer } = recording()
      const where = yield* FanOut.all([whereAmI], { name: "quiet" }).pipe(
        Effect.withTracer(tracer),
        Effect.provideService(References.TracerEnabled, false)
      )
      expect(where).toStrictEqual([["quiet", undefined]])
      expect(ended).toStrictEqual([])
    }))
})

/** A metric registry of the test's own, so that no other test's fan-outs count. */
const isolated = <A, E>(effect: Effect.Effect<A, E>) => Effect.provideService(effect, Metric.MetricRegistry, new Map())

const countOf = (attributes: Record<string, string>) =>
  Effect.map(Metric.value(Metric.withAttributes(FanOut.metrics.outcomes, attributes)), (state) => state.count)

const outcomeCounts = (name: string) =>
  Effect.all({
    Success: countOf({ fanout: name, outcome: "Success" }),
    Failure: countOf({ fanout: name, outcome: "Failure" }),
    Defect: countOf({ fanout: name, outcome: "Defect" }),
    TimedOut: countOf({ fanout: name, outcome: "TimedOut" }),
    Interrupted: countOf({ fanout: name, outcome: "Interrupted" })
  })

const durationsOf = (attributes: Record<string, string>) =>
  Metric.value(Metric.withAttributes(FanOut.metrics.durations, attributes))

describe("metrics", () => {
  it.effect("count a settle's outcomes by tag and record the durations of its tasks that waited, by name", () =>
    isolated(Effect.gen(function*() {
      const fiber = yield* FanOut.settle({
        ok: Effect.as(Effect.sleep("20 millis"), 1),
        failed: Effect.fail("x"),
        crashed: Effect.die("bug"),
        slow: Effect.never,
        quit: Effect.interrupt
      }, { name: "mixed", timeout: "1 second" }).pipe(Effect.forkChild)
      yield* TestClock.adjust("1 second")
      const outcomes = yield* Fiber.join(fiber)
      expect(Object.values(outcomes).map((o) => o._tag)).toStrictEqual([
        "Success",
        "Failure",
        "Defect",
        "TimedOut",
        "Interrupted"
      ])
      expect(yield* outcomeCounts("mixed")).toStrictEqual({
        Success: 1,
        Failure: 1,
        Defect: 1,
        TimedOut: 1,
        Interrupted: 1
      })
      // The two tasks that waited (20 ms, and 1000 ms until their time-out); the three that ended as they started
      // took no time on the clock and are counted by outcome only.
      const durations = yield* durationsOf({ fanout: "mixed" })
      expect([durations.count, durations.sum, durations.min, durations.max]).toStrictEqual([2, 1020, 20, 1000])
      // Exponential boundaries from 1, doubling, 16 buckets: 20 ms under 32, 1000 ms under 1024.
      expect(durations.buckets.map(([boundary]) => boundary)).toStrictEqual(
        [...Array.from({ length: 15 }, (_, i) => 2 ** i), Infinity]
      )
      const upTo = (boundary: number) => durations.buckets.find(([b]) => b === boundary)?.[1]
      expect([upTo(1), upTo(16), upTo(32), upTo(512), upTo(1024)]).toStrictEqual([0, 0, 1, 1, 2])
      // A second run with the same name adds to the same series.
      yield* FanOut.settle([Effect.succeed(1)], { name: "mixed" })
      expect((yield* outcomeCounts("mixed")).Success).toBe(2)
    })))

  it.effect("are the series a snapshot lists, with the fan-out's attributes", () =>
    isolated(Effect.gen(function*() {
      yield* FanOut.all([Effect.succeed(1), Effect.as(Effect.yieldNow, 2)])
      const snapshot = yield* Metric.snapshot
      const outcomes = snapshot.filter((m) => m.id === "fanout_task_outcomes_total")
      expect(outcomes.map((m) => [m.type, m.attributes, m.state])).toStrictEqual([
        ["Counter", { fanout: "fanout.all", outcome: "Success" }, { count: 2, incremental: true }]
      ])
      // One duration: the task that waited (the one that ended as it started took no time on the clock).
      expect((yield* durationsOf({ fanout: "fanout.all" })).count).toBe(1)
      const durations = snapshot.filter((m) => m.id === "fanout_task_duration_millis")
      expect(durations.map((m) => [m.type, m.attributes])).toStrictEqual([["Histogram", { fanout: "fanout.all" }]])
    })))

  it.effect("add the caller's metric attributes", () =>
    isolated(Effect.gen(function*() {
      yield* FanOut.all([Effect.as(Effect.yieldNow, 1)], { name: "tenanted" }).pipe(
        Effect.provideService(Metric.CurrentMetricAttributes, { tenant: "acme" })
      )
      const snapshot = yield* Metric.snapshot
      expect(snapshot.filter((m) => m.id === "fanout_task_outcomes_total").map((m) => m.attributes)).toStrictEqual([
        { fanout: "tenanted", outcome: "Success", tenant: "acme" }
      ])
      expect(yield* countOf({ tenant: "acme", fanout: "tenanted", outcome: "Success" })).toBe(1)
      expect(yield* countOf({ fanout: "tenanted", outcome: "Success" })).toBe(0)
      expect((yield* durationsOf({ tenant: "acme", fanout: "tenanted" })).count).toBe(1)
    })))

  it.effect("tasks a stopped fan-out never started count as Interrupted and record no duration", () =>
    isolated(Effect.gen(function*() {
      yield* Effect.exit(
        FanOut.all([Effect.andThen(Effect.yieldNow, Effect.fail("x")), Effect.succeed(1), Effect.succeed(2)], {
          concurrency: 1,
          name: "unstarted"
        })
      )
      expect(yield* outcomeCounts("unstarted")).toMatchObject({ Failure: 1, Interrupted: 2, Success: 0 })
      expect((yield* durationsOf({ fanout: "unstarted" })).count).toBe(1)
    })))

  it.effect("quorum and a stream ended early record their outcomes too", () =>
    isolated(Effect.gen(function*() {
      yield* FanOut.quorum([Effect.succeed(1), Effect.never], 1, { name: "quorum" })
      expect(yield* outcomeCounts("quorum")).toMatchObject({ Success: 1, Interrupted: 1 })
      yield* FanOut.stream([Effect.succeed(1), Effect.never], { name: "stream" }).pipe(Stream.take(1), Stream.runDrain)
      expect(yield* outcomeCounts("stream")).toMatchObject({ Success: 1, Interrupted: 1 })
    })))

  it.effect("a fail-fast deadline counts the cut-off tasks as TimedOut, with report: true as without", () =>
    isolated(Effect.gen(function*() {
      for (const report of [false, true]) {
        const name = `deadline-${report}`
        const fiber = yield* FanOut.all([Effect.never, Effect.succeed(1)], { deadline: "1 second", report, name }).pipe(
          Effect.exit,
          Effect.forkChild
        )
        yield* TestClock.adjust("1 second")
        expect(Exit.isFailure(yield* Fiber.join(fiber))).toBe(true)
        expect(yield* outcomeCounts(name)).toMatchObject({ TimedOut: 1, Interrupted: 0, Success: 1 })
      }
    })))

  it.effect("are recorded when the caller interrupts the fan-out, once its tasks have stopped", () =>
    isolated(Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const fiber = yield* FanOut.settle([
        Effect.succeed(1),
        Deferred.succeed(started, undefined).pipe(Effect.andThen(Effect.never))
      ], { name: "cancelled" }).pipe(Effect.forkChild)
      yield* Deferred.await(started)
      yield* Fiber.interrupt(fiber)
      expect(yield* outcomeCounts("cancelled")).toMatchObject({ Success: 1, Interrupted: 1 })
    })))
})
