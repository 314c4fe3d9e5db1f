/**
 * Tasks run on fibers of their own that start with the caller's context: its services, references, log annotations,
 * current span, clock and scheduler. What a task changes there stays in that task.
 *
 * (The Effect 3 line's `fiberRefs.test.ts`: Effect 4 has no FiberRefs, only the context, so these are its guarantees.)
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Context, Effect, Fiber, Logger, Option, References, Scheduler, Stream, type Tracer } from "effect"
import { TestClock } from "effect/testing"
import { AsyncLocalStorage, AsyncResource } from "node:async_hooks"
import { FanOut, type Outcome } from "../src/index.js"

class Greeting extends Context.Service<Greeting, { readonly hello: string }>()("test/Greeting") {}

/** A reference of the test's own, with a default. */
const Tenant = Context.Reference<string>("test/Tenant", { defaultValue: () => "no tenant" })

/** The value of a reference in the running fiber's context. */
const read = <A>(ref: Context.Reference<A>): Effect.Effect<A> =>
  Effect.withFiber((fiber) => Effect.succeed(fiber.getRef(ref)))

const annotation = (key: string) =>
  Effect.map(References.CurrentLogAnnotations, (annotations) => Option.fromNullishOr(annotations[key]))

/** Sets `ref` on the running fiber for the rest of its life: the strongest change a task can make to its context. */
const setOnFiber = <A>(ref: Context.Reference<A>, value: A) =>
  Effect.withFiber((fiber) => {
    fiber.setContext(Context.add(fiber.context, ref, value))
    return Effect.void
  })

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

const concurrencies = [1, 2, "unbounded"] as const

/** Every combinator, over tasks that all succeed, giving back their values in input order. */
const everyCombinator = <A, R>(
  tasks: ReadonlyArray<Effect.Effect<A, never, R>>,
  concurrency: FanOut.Options["concurrency"]
): ReadonlyArray<readonly [string, Effect.Effect<ReadonlyArray<unknown>, never, R>]> => [
  ["all", FanOut.all(tasks, { concurrency })],
  ["forEach", FanOut.forEach(tasks, (task) => task, { concurrency })],
  ["settle", Effect.map(FanOut.settle(tasks, { concurrency }), (os) => os.map(valueOf))],
  [
    "quorum",
    Effect.map(
      Effect.orDie(FanOut.quorum(tasks, tasks.length, { concurrency })),
      (winners) => [...winners].sort((a, b) => a.key - b.key).map((w) => w.value)
    )
  ],
  [
    "stream",
    Effect.map(
      Stream.runCollect(FanOut.stream(tasks, { concurrency })),
      (os) => [...os].sort((a, b) => (a.key as number) - (b.key as number)).map(valueOf)
    )
  ]
]

const valueOf = <A>(o: Outcome.Outcome<A, unknown>): unknown => o._tag === "Success" ? o.value : o

describe("tasks see the caller's context", () => {
  it.effect("its services, with and without a concurrency bound, in every combinator", () =>
    Effect.gen(function*() {
      const greeting = Effect.map(Effect.service(Greeting), (g) => g.hello)
      for (const concurrency of concurrencies) {
        for (const [name, run] of everyCombinator([greeting, Effect.andThen(Effect.yieldNow, greeting)], concurrency)) {
          const seen = yield* Effect.provideService(run, Greeting, { hello: "hi" })
          expect(seen, `${name}, ${concurrency}`).toStrictEqual(["hi", "hi"])
        }
      }
      const struct = yield* FanOut.all({ a: greeting, b: greeting }, { concurrency: 1 }).pipe(
        Effect.provideService(Greeting, { hello: "hello" })
      )
      expect(struct).toStrictEqual({ a: "hello", b: "hello" })
    }))

  it.effect("its references, its own or Effect's, and their defaults where it set none", () =>
    Effect.gen(function*() {
      const both = Effect.all([read(Tenant), read(References.MinimumLogLevel)])
      for (const concurrency of concurrencies) {
        for (const [name, run] of everyCombinator([both, Effect.andThen(Effect.yieldNow, both)], concurrency)) {
          const set = yield* run.pipe(
            Effect.provideService(Tenant, "acme"),
            Effect.provideService(References.MinimumLogLevel, "Debug")
          )
          expect(set, `${name}, ${concurrency}`).toStrictEqual([["acme", "Debug"], ["acme", "Debug"]])
          const defaults = yield* run
          expect(defaults, `${name}, ${concurrency}`).toStrictEqual([["no tenant", "Info"], ["no tenant", "Info"]])
        }
      }
    }))

  it.effect("its log annotations, in what tasks read and in what they log", () =>
    Effect.gen(function*() {
      const seen = yield* FanOut.forEach([1, 2], () => annotation("requestId"), { concurrency: 1 }).pipe(
        Effect.annotateLogs("requestId", "r-42")
      )
      expect(seen).toStrictEqual([Option.some("r-42"), Option.some("r-42")])
      const unbounded = yield* FanOut.settle([annotation("requestId")]).pipe(Effect.annotateLogs("requestId", "r-43"))
      expect(unbounded[0]).toMatchObject({ _tag: "Success", value: Option.some("r-43") })

      // What a task logs carries the caller's annotations, and goes to the caller's loggers.
      const lines: Array<{ readonly message: unknown; readonly requestId: unknown }> = []
      const logger = Logger.make((options) => {
        lines.push({
          message: options.message,
          requestId: options.fiber.getRef(References.CurrentLogAnnotations)["requestId"]
        })
      })
      yield* FanOut.all([Effect.log("from a"), Effect.andThen(Effect.yieldNow, Effect.log("from b"))]).pipe(
        Effect.annotateLogs("requestId", "r-44"),
        Effect.provideService(References.CurrentLoggers, new Set([logger]))
      )
      expect(lines.map((l) => [l.message, l.requestId]).sort()).toStrictEqual([
        [["from a"], "r-44"],
        [["from b"], "r-44"]
      ])
    }))

  it.effect("runs tasks under a span opened around the fan-out, inside the fan-out's own span", () =>
    Effect.gen(function*() {
      for (const concurrency of [1, "unbounded"] as const) {
        const [outer, spans] = yield* Effect.all([
          Effect.currentSpan,
          FanOut.all([
            Effect.withSpan(Effect.currentSpan, "inner-0"),
            Effect.withSpan(Effect.andThen(Effect.yieldNow, Effect.currentSpan), "inner-1")
          ], { concurrency, name: "fan-out" })
        ]).pipe(Effect.withSpan("outer"))
        for (const [i, span] of spans.entries()) {
          const names = lineage(span)
          // the task's own span, the fan-out's, then the caller's: nothing above it invented, no sibling in between
          expect(names).toStrictEqual([`inner-${i}`, "fan-out", ...lineage(outer)])
          expect(span.traceId).toBe(outer.traceId)
        }
      }
    }))

  it.effect("a task's current span is the fan-out's, a child of the caller's, when the task opens none", () =>
    Effect.gen(function*() {
      const [outer, outcomes] = yield* Effect.all([
        Effect.currentSpan,
        FanOut.settle([Effect.currentSpan])
      ]).pipe(Effect.withSpan("outer"))
      const [o] = outcomes
      expect(o._tag).toBe("Success")
      if (o._tag === "Success") {
        expect(lineage(o.value)).toStrictEqual(["fanout.settle", ...lineage(outer)])
        expect(o.value.traceId).toBe(outer.traceId)
      }
    }))

  it.effect("its Clock: the TestClock's time, its sleeps and durations, or any Clock the caller provides", () =>
    Effect.gen(function*() {
      yield* TestClock.adjust("1 hour")
      const fiber = yield* Effect.forkChild(FanOut.settle([
        Clock.currentTimeMillis,
        Effect.andThen(Effect.sleep("1 second"), Clock.currentTimeMillis)
      ], { concurrency: 1 }))
      yield* TestClock.adjust("1 second")
      const [now, later] = yield* Fiber.join(fiber)
      expect(now).toMatchObject({ _tag: "Success", value: 3_600_000, durationMillis: 0 })
      expect(later).toMatchObject({ _tag: "Success", value: 3_601_000, durationMillis: 1000 })

      // A clock stopped at one instant, whose sleeps end at once: a task sleeping a day ends at once, at that instant.
      const stopped: Clock.Clock = {
        currentTimeMillisUnsafe: () => 42,
        currentTimeMillis: Effect.succeed(42),
        currentTimeNanosUnsafe: () => BigInt(42_000_000),
        currentTimeNanos: Effect.succeed(BigInt(42_000_000)),
        monotonicTimeNanosUnsafe: () => BigInt(42_000_000),
        monotonicTimeNanos: Effect.succeed(BigInt(42_000_000)),
        sleep: () => Effect.void
      }
      const onStopped = yield* FanOut.all([
        Clock.currentTimeMillis,
        Effect.andThen(Effect.sleep("1 day"), Clock.currentTimeMillis)
      ], { timeout: "1 hour" }).pipe(Effect.provideService(Clock.Clock, stopped))
      expect(onStopped).toStrictEqual([42, 42])
    }))

  it.effect("its scheduler: tasks yield to the scheduler the caller runs on", () =>
    Effect.gen(function*() {
      let scheduled = 0
      const inner = new Scheduler.MixedScheduler()
      const counting: Scheduler.Scheduler = {
        executionMode: inner.executionMode,
        shouldYield: (fiber) => inner.shouldYield(fiber),
        makeDispatcher: () => {
          const dispatcher = inner.makeDispatcher()
          return {
            scheduleTask: (task, priority) => {
              scheduled++
              dispatcher.scheduleTask(task, priority)
            },
            flush: () => dispatcher.flush()
          }
        }
      }
      for (const concurrency of concurrencies) {
        scheduled = 0
        const task = Effect.andThen(Effect.yieldNow, read(Scheduler.Scheduler))
        const seen = yield* FanOut.all([task, task, task], { concurrency }).pipe(
          Effect.provideService(Scheduler.Scheduler, counting)
        )
        expect(seen.every((s) => s === counting), `${concurrency}`).toBe(true)
        // Each task's yield was scheduled on it.
        expect(scheduled, `${concurrency}`).toBeGreaterThanOrEqual(3)
      }
    }))
})

describe("what a task changes stays in the task", () => {
  it.effect("a service or reference a task provides is seen by neither its siblings nor the caller", () =>
    Effect.gen(function*() {
      const both = Effect.all([read(Tenant), Effect.map(Effect.service(Greeting), (g) => g.hello)])
      for (const concurrency of concurrencies) {
        const seen = yield* FanOut.all([
          both.pipe(Effect.provideService(Tenant, "inner"), Effect.provideService(Greeting, { hello: "inner" })),
          both,
          Effect.andThen(Effect.yieldNow, both)
        ], { concurrency }).pipe(
          Effect.provideService(Tenant, "outer"),
          Effect.provideService(Greeting, { hello: "outer" })
        )
        expect(seen).toStrictEqual([["inner", "inner"], ["outer", "outer"], ["outer", "outer"]])
      }
    }))

  it.effect("a change a task makes to its own fiber's context is seen by neither the next task nor the caller", () =>
    Effect.gen(function*() {
      for (const concurrency of concurrencies) {
        const result = yield* FanOut.all([
          Effect.as(setOnFiber(Tenant, "changed"), "set"),
          read(Tenant),
          Effect.andThen(Effect.yieldNow, read(Tenant))
        ], { concurrency }).pipe(Effect.provideService(Tenant, "outer"))
        expect(result, `${concurrency}`).toStrictEqual(["set", "outer", "outer"])
        expect(yield* read(Tenant)).toBe("no tenant")
        yield* FanOut.settle(
          [setOnFiber(Tenant, "changed"), Effect.andThen(setOnFiber(Tenant, "x"), Effect.fail("x"))],
          {
            concurrency
          }
        )
        expect(yield* read(Tenant)).toBe("no tenant")
      }
    }))

  it.effect("a failing or crashing task's changes are not seen by the next task", () =>
    Effect.gen(function*() {
      const outcomes = yield* FanOut.settle([
        Effect.andThen(setOnFiber(Tenant, "dirty"), Effect.fail("failed")),
        Effect.andThen(setOnFiber(Tenant, "dirty"), Effect.die("crashed")),
        read(Tenant)
      ], { concurrency: 1 }).pipe(Effect.provideService(Tenant, "clean"))
      expect(outcomes.map((o) => o._tag)).toStrictEqual(["Failure", "Defect", "Success"])
      expect(outcomes[2]).toMatchObject({ value: "clean" })
    }))

  it.effect("log annotations a task adds are seen by neither the next task nor the caller", () =>
    Effect.gen(function*() {
      const result = yield* FanOut.all([
        Effect.annotateLogs(annotation("scoped"), "scoped", "yes"),
        Effect.withFiber((fiber) =>
          setOnFiber(References.CurrentLogAnnotations, {
            ...fiber.getRef(References.CurrentLogAnnotations),
            leak: "yes"
          })
        ),
        annotation("leak"),
        annotation("scoped"),
        annotation("requestId")
      ], { concurrency: 1 }).pipe(Effect.annotateLogs("requestId", "r-1"))
      expect(result[0]).toStrictEqual(Option.some("yes"))
      expect(result.slice(2)).toStrictEqual([Option.none(), Option.none(), Option.some("r-1")])
      expect(yield* annotation("leak")).toStrictEqual(Option.none())
      expect(yield* annotation("requestId")).toStrictEqual(Option.none())
    }))

  it.effect("a span a task opens is the parent of nothing in the next task", () =>
    Effect.gen(function*() {
      const spans = yield* FanOut.all([
        Effect.withSpan(Effect.currentSpan, "first"),
        Effect.withSpan(Effect.currentSpan, "second")
      ], { concurrency: 1, name: "fan-out" })
      expect(spans.map(lineage)).toStrictEqual([["first", "fan-out"], ["second", "fan-out"]])
    }))
})

describe("AsyncLocalStorage", () => {
  // The Effect 3 line's scheduling test had each task resumed from its own async resource and see that resource's
  // store. Effect 4's runtime runs a fiber in the async context it had when it suspended, whoever resumes it: tasks see
  // the store of the caller that started the fan-out, as under Effect.all, wherever they are resumed from.
  it("tasks resumed from other async resources see the store the fan-out runs in, as under Effect.all", async () => {
    const als = new AsyncLocalStorage<string>()
    const n = 4
    const program = Effect.gen(function*() {
      const resources = Array.from({ length: n }, (_, i) => als.run(`resource ${i}`, () => new AsyncResource("task")))
      // Each task is resumed from a microtask queued in its own resource's scope.
      const tasks = resources.map((resource) =>
        Effect.callback<string | undefined>((resume) => {
          resource.runInAsyncScope(() => queueMicrotask(() => resume(Effect.sync(() => als.getStore()))))
        })
      )
      return {
        effectAll: yield* Effect.all(tasks, { concurrency: "unbounded" }),
        runs: [
          yield* FanOut.all(tasks),
          yield* FanOut.all(tasks, { concurrency: 1 }),
          yield* FanOut.forEach(tasks, (task) => task, { concurrency: 2 }),
          yield* Effect.map(
            FanOut.settle(tasks, { concurrency: 2 }),
            (os) => os.map((o) => o._tag === "Success" && o.value)
          )
        ]
      }
    })
    const { effectAll, runs } = await als.run("caller", () => Effect.runPromise(program))
    expect(effectAll).toStrictEqual(new Array(n).fill("caller"))
    for (const run of runs) expect(run).toStrictEqual(effectAll)
  })
})
