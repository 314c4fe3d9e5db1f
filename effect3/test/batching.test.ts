import { assert, describe, expect, it } from "@effect/vitest"
import {
  Cause,
  Data,
  Deferred,
  type Duration,
  Effect,
  Exit,
  FastCheck,
  Fiber,
  Option,
  Ref,
  Request,
  RequestResolver,
  Schedule,
  Stream,
  TestClock
} from "effect"
import { FanOut, FanOutError, Outcome } from "../src/index.js"
import { type Log, makeLog, recordedExit, Recorder } from "./support.js"

class NotFound extends Data.TaggedError("NotFound")<{ readonly id: number }> {}
class Down extends Data.TaggedError("Down")<{ readonly service: string }> {}

interface GetUser extends Request.Request<string, NotFound> {
  readonly _tag: "GetUser"
  readonly id: number
}
const GetUser = Request.tagged<GetUser>("GetUser")

/**
 * A user service behind a batched resolver that records every batch it is sent: a negative id is `NotFound`. With a
 * `gate`, the resolver says it has `started` and then waits for the gate before answering; with a `delay`, it takes that
 * long to answer.
 */
const makeUsers = (
  latches?: { readonly started: Deferred.Deferred<void>; readonly gate: Deferred.Deferred<void> },
  delay?: Duration.DurationInput
) =>
  Effect.gen(function*() {
    const batches = yield* Ref.make<ReadonlyArray<ReadonlyArray<number>>>([])
    const interrupted = yield* Ref.make(0)
    const resolver = RequestResolver.makeBatched((requests: ReadonlyArray<GetUser>) =>
      Effect.gen(function*() {
        yield* Ref.update(batches, (sent) => [...sent, requests.map((request) => request.id)])
        if (latches !== undefined) {
          yield* Deferred.succeed(latches.started, undefined)
          yield* Deferred.await(latches.gate)
        }
        if (delay !== undefined) yield* Effect.sleep(delay)
        yield* Effect.forEach(requests, (request) =>
          Request.completeEffect(
            request,
            request.id < 0 ? Effect.fail(new NotFound({ id: request.id })) : Effect.succeed(`user ${request.id}`)
          ), { discard: true })
      }).pipe(Effect.onInterrupt(() => Ref.update(interrupted, (n) => n + 1)))
    )
    const getUser = (id: number) => Effect.request(GetUser({ id }), resolver)
    return { getUser, batches: Ref.get(batches), interrupted: Ref.get(interrupted) }
  })

/** `self` with a finalizer that logs `name finalized` (it must run exactly once). */
const finalized = <A, E>(log: Log, name: string, self: Effect.Effect<A, E>) =>
  Effect.ensuring(self, log.add(`${name} finalized`))

/** The batches with the requests of each in numeric order (the order within a merged batch is the runtime's). */
const sorted = (batches: ReadonlyArray<ReadonlyArray<number>>) =>
  batches.map((batch) => [...batch].sort((a, b) => a - b))

describe("batching", () => {
  it.effect("sends the requests of every task in one batch, results in input order", () =>
    Effect.gen(function*() {
      const users = yield* makeUsers()
      const names = yield* FanOut.forEach([1, 2, 3, 4], users.getUser, { batching: true })
      expect(names).toEqual(["user 1", "user 2", "user 3", "user 4"])
      expect(yield* users.batches).toEqual([[1, 2, 3, 4]])
    }))

  it.effect("without batching, each task sends its own request", () =>
    Effect.gen(function*() {
      const users = yield* makeUsers()
      const names = yield* FanOut.all([users.getUser(1), users.getUser(2), users.getUser(3)])
      expect(names).toEqual(["user 1", "user 2", "user 3"])
      expect(yield* users.batches).toHaveLength(3)
    }))

  it.effect("keeps the shape of a struct and batches whatever the concurrency", () =>
    Effect.gen(function*() {
      const users = yield* makeUsers()
      const struct = yield* FanOut.all(
        { a: users.getUser(1), b: users.getUser(2), c: users.getUser(3), d: users.getUser(4) },
        { batching: true, concurrency: 2 }
      )
      expect(struct).toEqual({ a: "user 1", b: "user 2", c: "user 3", d: "user 4" })
      expect(yield* users.batches).toEqual([[1, 2, 3, 4]])
    }))

  it.effect("tasks that make requests one after another are batched round by round", () =>
    Effect.gen(function*() {
      const users = yield* makeUsers()
      const pairs = yield* FanOut.forEach(
        [1, 2, 3],
        (id) => Effect.zip(users.getUser(id), users.getUser(id + 10)),
        { batching: true }
      )
      expect(pairs).toEqual([["user 1", "user 11"], ["user 2", "user 12"], ["user 3", "user 13"]])
      expect(yield* users.batches).toEqual([[1, 2, 3], [11, 12, 13]])
    }))

  it.effect("an Effect.all with batching inside a task joins the fan-out's batch", () =>
    Effect.gen(function*() {
      const users = yield* makeUsers()
      const result = yield* FanOut.all(
        [Effect.all([users.getUser(1), users.getUser(2)], { batching: true }), users.getUser(3), Effect.succeed(0)],
        { batching: true }
      )
      expect(result).toEqual([["user 1", "user 2"], "user 3", 0])
      const batches = yield* users.batches
      expect(batches).toHaveLength(1)
      expect([...batches[0]!].sort()).toEqual([1, 2, 3])
    }))

  it.effect("nested batching fan-outs without a deadline batch together, round by round", () =>
    Effect.gen(function*() {
      const users = yield* makeUsers()
      const nested = yield* FanOut.forEach([1, 2, 3], (c) =>
        FanOut.forEach(
          [c * 10 + 1, c * 10 + 2],
          (id) => Effect.zip(users.getUser(id), users.getUser(id + 100)),
          { batching: true }
        ), { batching: true })
      expect(nested[2]).toEqual([["user 31", "user 131"], ["user 32", "user 132"]])
      expect(sorted(yield* users.batches)).toEqual([[11, 12, 21, 22, 31, 32], [111, 112, 121, 122, 131, 132]])
    }))

  it.effect("an Effect.all with batching over batching fan-outs sends one batch", () =>
    Effect.gen(function*() {
      const users = yield* makeUsers()
      const both = yield* Effect.all([
        FanOut.forEach([1, 2], users.getUser, { batching: true }),
        FanOut.all({ x: users.getUser(3) }, { batching: true })
      ], { batching: true, concurrency: "unbounded" })
      expect(both).toEqual([["user 1", "user 2"], { x: "user 3" }])
      expect(sorted(yield* users.batches)).toEqual([[1, 2, 3]])
    }))

  it.effect("an Effect.all with batching that fails ends a nested fan-out's waiting tasks: finalizers once", () =>
    Effect.gen(function*() {
      const users = yield* makeUsers()
      const log = yield* makeLog
      const exit = yield* Effect.exit(Effect.all([
        FanOut.forEach([1, 2], (id) => finalized(log, `inner ${id}`, users.getUser(id)), { batching: true }),
        Effect.fail(new Down({ service: "outer" }))
      ], { batching: true, concurrency: "unbounded" }))
      // Effect.all's cause also holds the nested fan-out's interruption.
      assert(Exit.isFailure(exit))
      expect(Cause.failureOption(exit.cause)).toEqual(Option.some(new Down({ service: "outer" })))
      expect([...yield* log.get].sort()).toEqual(["inner 1 finalized", "inner 2 finalized"])
    }))

  it.effect("a nested fan-out with a deadline sends its own requests, so that it can stop them at its deadline", () =>
    Effect.gen(function*() {
      const users = yield* makeUsers()
      yield* FanOut.forEach(
        [1, 2],
        (c) => FanOut.forEach([c * 10], users.getUser, { batching: true, deadline: "1 second" }),
        { batching: true }
      )
      expect(sorted(yield* users.batches)).toEqual([[10], [20]])
    }))

  it.effect("an outer fan-out that stops interrupts the nested fan-outs' waiting tasks: finalizers once, nothing sent", () =>
    Effect.gen(function*() {
      const users = yield* makeUsers()
      const log = yield* makeLog
      const { exit, recorder } = yield* recordedExit(
        FanOut.all([
          FanOut.forEach([1, 2], (id) => finalized(log, `inner ${id}`, users.getUser(id)), { batching: true }),
          Effect.fail(new Down({ service: "outer" }))
        ], { batching: true })
      )
      expect(exit).toEqual(Exit.fail(new Down({ service: "outer" })))
      expect([...yield* log.get].sort()).toEqual(["inner 1 finalized", "inner 2 finalized"])
      expect(yield* users.batches).toEqual([])
      expect(recorder.running).toBe(0)
    }))

  it.effect("requests made inside what a task forks (here its own timeout) are sent on their own, as with Effect.all", () =>
    Effect.gen(function*() {
      const users = yield* makeUsers()
      const names = yield* FanOut.forEach([1, 2], users.getUser, { batching: true, timeout: "1 second" })
      expect(names).toEqual(["user 1", "user 2"])
      expect(sorted(yield* users.batches)).toEqual([[1], [2]])
    }))

  it.effect("\"inherit\" follows the caller's Effect.withRequestBatching", () =>
    Effect.gen(function*() {
      const off = yield* makeUsers()
      yield* Effect.withRequestBatching(FanOut.forEach([1, 2], off.getUser, { batching: "inherit" }), false)
      expect(yield* off.batches).toEqual([[1], [2]])
      const on = yield* makeUsers()
      yield* Effect.withRequestBatching(FanOut.forEach([1, 2], on.getUser, { batching: "inherit" }), true)
      expect(yield* on.batches).toEqual([[1, 2]])
    }))

  it.effect("settle: each task's outcome is its own, failed requests and defects included, in one batch", () =>
    Effect.gen(function*() {
      const users = yield* makeUsers()
      const outcomes = yield* FanOut.settle({
        alice: users.getUser(1),
        missing: users.getUser(-1),
        crash: Effect.die(new Error("boom")),
        plain: Effect.fail(new Down({ service: "x" })),
        // Its second request waits for the first one's answer: it goes in the next batch.
        both: Effect.zip(users.getUser(2), users.getUser(-2))
      }, { batching: true })
      expect(outcomes.alice).toMatchObject({ _tag: "Success", value: "user 1", key: "alice" })
      expect(outcomes.missing).toMatchObject({ _tag: "Failure", error: new NotFound({ id: -1 }) })
      expect(outcomes.crash._tag).toBe("Defect")
      expect(outcomes.plain).toMatchObject({ _tag: "Failure", error: new Down({ service: "x" }) })
      expect(outcomes.both).toMatchObject({ _tag: "Failure", error: new NotFound({ id: -2 }) })
      expect(yield* users.batches).toEqual([[1, -1, 2], [-2]])
    }))

  it.effect("retry: a failed request is tried again in the next round's batch, and the attempts are counted", () =>
    Effect.gen(function*() {
      const batches: Array<ReadonlyArray<number>> = []
      // Fails every request of the first batch, answers the later ones.
      const flaky = RequestResolver.makeBatched((requests: ReadonlyArray<GetUser>) => {
        batches.push(requests.map((request) => request.id))
        const first = batches.length === 1
        return Effect.forEach(requests, (request) =>
          Request.completeEffect(
            request,
            first && request.id === 1 ? Effect.fail(new NotFound({ id: 1 })) : Effect.succeed(`user ${request.id}`)
          ), { discard: true })
      })
      const get = (id: number) => Effect.request(GetUser({ id }), flaky)
      const [one, two] = yield* FanOut.settle([get(1), get(2)], { batching: true, retry: Schedule.recurs(2) })
      expect(one).toMatchObject({ _tag: "Success", value: "user 1", attempts: 2 })
      expect(two).toMatchObject({ _tag: "Success", value: "user 2", attempts: 1 })
      expect(batches).toEqual([[1, 2], [1]])
    }))

  it.effect("fail fast: a failure interrupts the tasks waiting for requests, runs their finalizers once, sends nothing", () =>
    Effect.gen(function*() {
      const users = yield* makeUsers()
      const log = yield* makeLog
      const { exit, recorder } = yield* recordedExit(
        FanOut.all([
          finalized(log, "a", users.getUser(1)),
          finalized(log, "b", users.getUser(2)),
          Effect.fail(new Down({ service: "c" }))
        ], { batching: true })
      )
      expect(exit).toEqual(Exit.fail(new Down({ service: "c" })))
      expect([...yield* log.get].sort()).toEqual(["a finalized", "b finalized"])
      expect(yield* users.batches).toEqual([])
      expect(recorder.fibers.length).toBeGreaterThan(0)
      expect(recorder.running).toBe(0)
    }))

  it.effect("fail fast: a failed request stops the fan-out before the next round's batch", () =>
    Effect.gen(function*() {
      const users = yield* makeUsers()
      const log = yield* makeLog
      const exit = yield* Effect.exit(FanOut.forEach(
        [-1, 1, 2],
        (id) => finalized(log, `task ${id}`, Effect.zip(users.getUser(id), users.getUser(id + 10))),
        { batching: true, report: true }
      ))
      assert(Exit.isFailure(exit))
      const failure = Cause.failureOption(exit.cause)
      assert(Option.isSome(failure) && failure.value._tag === "FanOutFailure")
      expect(failure.value.error).toEqual(new NotFound({ id: -1 }))
      expect(failure.value.key).toBe(0)
      expect([...yield* log.get].sort()).toEqual(["task -1 finalized", "task 1 finalized", "task 2 finalized"])
      expect(yield* users.batches).toEqual([[-1, 1, 2]])
    }))

  it.effect("a caller that cannot be interrupted gets the batch's answers at once, not at the deadline", () =>
    Effect.gen(function*() {
      const users = yield* makeUsers()
      const fiber = yield* Effect.fork(Effect.exit(Effect.uninterruptible(
        FanOut.forEach([1, 2], users.getUser, { batching: true, deadline: "1 second" })
      )))
      yield* TestClock.adjust("1 millis")
      expect(yield* Fiber.poll(fiber)).toStrictEqual(Option.some(Exit.succeed(Exit.succeed(["user 1", "user 2"]))))
      expect(yield* users.batches).toEqual([[1, 2]])
    }))

  it.effect("settle with a deadline: the requests running at the deadline are interrupted, finished results kept", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const gate = yield* Deferred.make<void>()
      const users = yield* makeUsers({ started, gate })
      const log = yield* makeLog
      const fiber = yield* Effect.fork(FanOut.settle([
        Effect.succeed("ready"),
        finalized(log, "a", users.getUser(1)),
        Effect.as(Effect.sleep("200 millis"), "slept")
      ], { batching: true, deadline: "1 second" }))
      yield* TestClock.adjust("200 millis")
      yield* Deferred.await(started)
      yield* TestClock.adjust("800 millis")
      const [ready, waiting, slept] = yield* Fiber.join(fiber)
      expect(ready).toMatchObject({ _tag: "Success", value: "ready" })
      expect(slept).toMatchObject({ _tag: "Success", value: "slept", durationMillis: 200 })
      expect(waiting).toMatchObject({ _tag: "TimedOut", reason: "Deadline", durationMillis: 1000 })
      expect(yield* log.get).toEqual(["a finalized"])
      expect(yield* users.interrupted).toBe(1)
    }))

  it.effect("requests that answer at the very instant of the deadline: no round starts after it", () =>
    Effect.gen(function*() {
      const users = yield* makeUsers(undefined, "100 millis")
      const fiber = yield* Effect.fork(FanOut.settle([
        Effect.zip(users.getUser(1), users.getUser(2)),
        Effect.sleep("50 millis")
      ], { batching: true, deadline: "150 millis" }))
      yield* TestClock.adjust("50 millis")
      yield* TestClock.adjust("100 millis")
      const [pair, slept] = yield* Fiber.join(fiber)
      expect(slept).toMatchObject({ _tag: "Success", durationMillis: 50 })
      expect(pair).toMatchObject({ _tag: "TimedOut", reason: "Deadline", durationMillis: 150 })
      expect(yield* users.batches).toEqual([[1]])
    }))

  it.effect("a round that ends at the very instant of the deadline sends nothing and interrupts the waiting tasks", () =>
    Effect.gen(function*() {
      const users = yield* makeUsers()
      const log = yield* makeLog
      const fiber = yield* Effect.fork(FanOut.settle([
        finalized(log, "a", users.getUser(1)),
        Effect.as(Effect.sleep("100 millis"), "slept")
      ], { batching: true, deadline: "100 millis" }))
      yield* TestClock.adjust("100 millis")
      const [waiting, slept] = yield* Fiber.join(fiber)
      expect(waiting).toMatchObject({ _tag: "TimedOut", reason: "Deadline", durationMillis: 100 })
      // The sleep and the deadline both fall at 100 ms; the round ends (the sleep done) before the deadline is seen.
      expect(slept).toMatchObject({ _tag: "Success", value: "slept", durationMillis: 100 })
      expect(yield* log.get).toEqual(["a finalized"])
      expect(yield* users.batches).toEqual([])
    }))

  it.effect("a slow task without requests holds the batch back until it ends, as with Effect.all", () =>
    Effect.gen(function*() {
      const users = yield* makeUsers()
      const fiber = yield* Effect.fork(FanOut.all([users.getUser(1), Effect.sleep("1 second")], { batching: true }))
      yield* TestClock.adjust("999 millis")
      expect(yield* users.batches).toEqual([])
      yield* TestClock.adjust("1 millis")
      expect(yield* Fiber.join(fiber)).toEqual(["user 1", undefined])
      expect(yield* users.batches).toEqual([[1]])
    }))

  it.effect("interrupting the caller while the requests run interrupts them and the waiting tasks, finalizers once", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const gate = yield* Deferred.make<void>()
      const users = yield* makeUsers({ started, gate })
      const log = yield* makeLog
      const fiber = yield* Effect.fork(FanOut.forEach(
        [1, 2],
        (id) => finalized(log, `task ${id}`, users.getUser(id)),
        { batching: true }
      ))
      yield* Deferred.await(started)
      const exit = yield* Fiber.interrupt(fiber)
      expect(Exit.isInterrupted(exit)).toBe(true)
      expect([...yield* log.get].sort()).toEqual(["task 1 finalized", "task 2 finalized"])
      expect(yield* users.interrupted).toBe(1)
    }))

  it.effect("with the request cache, a request shared with a caller outside the fan-out is waited for, not cut", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const gate = yield* Deferred.make<void>()
      const users = yield* makeUsers({ started, gate })
      const cache = yield* Request.makeCache({ capacity: 10, timeToLive: "1 minute" })
      const cached = <A, E>(self: Effect.Effect<A, E>) =>
        self.pipe(Effect.withRequestCaching(true), Effect.withRequestCache(cache))
      const fanOut = yield* Effect.fork(cached(FanOut.all([users.getUser(1)], { batching: true })))
      yield* Deferred.await(started)
      const outside = yield* Effect.fork(cached(users.getUser(1)))
      yield* Effect.yieldNow()
      const interrupting = yield* Effect.fork(Fiber.interrupt(fanOut))
      yield* Effect.yieldNow()
      expect(interrupting.unsafePoll()).toBeNull()
      yield* Deferred.succeed(gate, undefined)
      expect(Exit.isInterrupted(yield* Fiber.join(interrupting))).toBe(true)
      expect(yield* Fiber.join(outside)).toBe("user 1")
      expect(yield* users.interrupted).toBe(0)
      expect(yield* users.batches).toEqual([[1]])
    }))

  it.effect("required: a required task's failed request fails the fan-out and interrupts the optional ones", () =>
    Effect.gen(function*() {
      const users = yield* makeUsers()
      const log = yield* makeLog
      const exit = yield* Effect.exit(FanOut.settle({
        account: users.getUser(-1),
        panel: finalized(log, "panel", Effect.zip(users.getUser(1), users.getUser(2)))
      }, { batching: true, required: ["account"] }))
      expect(exit).toEqual(Exit.fail(new NotFound({ id: -1 })))
      expect(yield* log.get).toEqual(["panel finalized"])
      expect(yield* users.batches).toEqual([[-1, 1]])
    }))

  it.effect("firstSuccess and the completion stream batch their tasks' requests too", () =>
    Effect.gen(function*() {
      const users = yield* makeUsers()
      const first = yield* FanOut.firstSuccess([users.getUser(-1), users.getUser(7)], { batching: true })
      expect(first).toBe("user 7")
      const streamed = yield* Stream.runCollect(
        FanOut.stream([users.getUser(8), Effect.succeed("now")], { batching: true })
      )
      expect(Array.from(streamed, (outcome) => Outcome.isSuccess(outcome) ? outcome.value : outcome._tag))
        .toEqual(["now", "user 8"])
      expect(yield* users.batches).toEqual([[-1, 7], [8]])
    }))

  it.effect("a completion stream ended early interrupts the tasks waiting for requests and the requests in flight", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const gate = yield* Deferred.make<void>()
      const users = yield* makeUsers({ started, gate })
      const log = yield* makeLog
      const seen: Array<unknown> = []
      // The consumer takes the first outcome, waits until the requests are being sent, and ends the stream.
      yield* FanOut.stream([
        Effect.succeed("ready"),
        finalized(log, "a", users.getUser(1)),
        finalized(log, "b", users.getUser(2))
      ], { batching: true }).pipe(
        Stream.take(1),
        Stream.runForEach((outcome) =>
          Effect.zipRight(
            Effect.sync(() => seen.push(Outcome.isSuccess(outcome) ? outcome.value : outcome._tag)),
            Deferred.await(started)
          )
        )
      )
      expect(seen).toEqual(["ready"])
      expect([...yield* log.get].sort()).toEqual(["a finalized", "b finalized"])
      expect(yield* users.interrupted).toBe(1)
      expect(yield* users.batches).toEqual([[1, 2]])
    }))

  it.effect("detach: returns at the first failure while the waiting tasks' finalizers finish in the background", () =>
    Effect.gen(function*() {
      const users = yield* makeUsers()
      const release = yield* Deferred.make<void>()
      const done = yield* Deferred.make<void>()
      const slowFinalizer = Effect.zipRight(Deferred.await(release), Deferred.succeed(done, undefined))
      const exit = yield* Effect.exit(FanOut.all([
        Effect.ensuring(users.getUser(1), slowFinalizer),
        Effect.fail(new Down({ service: "b" }))
      ], { batching: true, detach: true }))
      expect(exit).toEqual(Exit.fail(new Down({ service: "b" })))
      expect(yield* Deferred.isDone(done)).toBe(false)
      yield* Deferred.succeed(release, undefined)
      yield* Deferred.await(done)
      expect(yield* users.batches).toEqual([])
    }))

  it.effect("fail fast with a deadline: a FanOutTimeoutError when the requests outlast it", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const gate = yield* Deferred.make<void>()
      const users = yield* makeUsers({ started, gate })
      const fiber = yield* Effect.fork(Effect.flip(FanOut.all([users.getUser(1)], { batching: true, deadline: 100 })))
      yield* Deferred.await(started)
      yield* TestClock.adjust("100 millis")
      const error = yield* Fiber.join(fiber)
      assert(error instanceof FanOutError.FanOutTimeoutError)
      expect(error.reason).toBe("Deadline")
    }))
})

// ---------------------------------------------------------------------------------------------------------------

type Behaviour = "succeed" | "fail" | "die" | "request" | "requestFails" | "twoRequests"

const behaviours = FastCheck.array(
  FastCheck.constantFrom<Behaviour>("succeed", "fail", "die", "request", "requestFails", "twoRequests"),
  { maxLength: 12 }
)
const bounds = FastCheck.oneof(FastCheck.integer({ min: 1, max: 4 }), FastCheck.constant("unbounded" as const))

/** Task `i` as `behaviour` says: requests ask for user `i + 1` (`-(i + 1)` fails), a second one for `i + 101`. */
const makeTasks = (users: Effect.Effect.Success<ReturnType<typeof makeUsers>>, list: ReadonlyArray<Behaviour>) => {
  const starts = list.map(() => 0)
  const finalizers = list.map(() => 0)
  const tasks = list.map((behaviour, i): Effect.Effect<unknown, unknown> => {
    const body = (): Effect.Effect<unknown, unknown> => {
      starts[i]!++
      switch (behaviour) {
        case "succeed":
          return Effect.succeed(i)
        case "fail":
          return Effect.fail(i)
        case "die":
          return Effect.die(i)
        case "request":
          return users.getUser(i + 1)
        case "requestFails":
          return users.getUser(-(i + 1))
        case "twoRequests":
          return Effect.zip(users.getUser(i + 1), users.getUser(i + 101))
      }
    }
    return Effect.ensuring(Effect.suspend(body), Effect.sync(() => finalizers[i]!++))
  })
  return { tasks, starts, finalizers }
}

const firstRequests = (list: ReadonlyArray<Behaviour>) =>
  list.flatMap((b, i) => b === "request" || b === "twoRequests" ? [i + 1] : b === "requestFails" ? [-(i + 1)] : [])
const secondRequests = (list: ReadonlyArray<Behaviour>) => list.flatMap((b, i) => b === "twoRequests" ? [i + 101] : [])

describe("batching, properties", () => {
  it.effect.prop(
    "settle: every outcome is what its task did, one batch per round, finalizers once, nothing outlives it",
    [behaviours, bounds],
    ([list, bound]) =>
      Effect.gen(function*() {
        const users = yield* makeUsers()
        const { finalizers, tasks } = makeTasks(users, list)
        const recorder = new Recorder()
        const outcomes = yield* Effect.supervised(
          FanOut.settle(tasks, { batching: true, concurrency: bound }),
          recorder
        )
        list.forEach((behaviour, i) => {
          const outcome = outcomes[i]!
          switch (behaviour) {
            case "succeed":
              return expect(outcome).toMatchObject({ _tag: "Success", value: i })
            case "fail":
              return expect(outcome).toMatchObject({ _tag: "Failure", error: i })
            case "die":
              return expect(outcome).toMatchObject({ _tag: "Defect", defect: i })
            case "request":
              return expect(outcome).toMatchObject({ _tag: "Success", value: `user ${i + 1}` })
            case "requestFails":
              return expect(outcome).toMatchObject({ _tag: "Failure", error: new NotFound({ id: -(i + 1) }) })
            case "twoRequests":
              return expect(outcome).toMatchObject({ _tag: "Success", value: [`user ${i + 1}`, `user ${i + 101}`] })
          }
        })
        const expected = [firstRequests(list), secondRequests(list)].filter((batch) => batch.length > 0)
        expect(sorted(yield* users.batches)).toEqual(sorted(expected))
        expect(finalizers).toEqual(list.map(() => 1))
        expect(recorder.running).toBe(0)
      }),
    { fastCheck: { numRuns: 100 } }
  )

  it.effect.prop(
    "all: fails with the first failure to happen, sends no batch after it, finalizers once, nothing outlives it",
    [behaviours, bounds],
    ([list, bound]) =>
      Effect.gen(function*() {
        const users = yield* makeUsers()
        const { finalizers, starts, tasks } = makeTasks(users, list)
        const { exit, recorder } = yield* recordedExit(FanOut.all(tasks, { batching: true, concurrency: bound }))
        // Round one runs in input order (every step in it is synchronous): its first failure or defect stops the
        // fan-out before any request is sent. Otherwise a failed request stops it before the second round's batch;
        // which one comes first in that round depends on when the runtime resumes each waiting task.
        const atOnce = list.findIndex((b) => b === "fail" || b === "die")
        const failedRequests = list.flatMap((b, i) => b === "requestFails" ? [-(i + 1)] : [])
        if (atOnce >= 0) {
          expect(exit).toEqual(list[atOnce] === "fail" ? Exit.fail(atOnce) : Exit.die(atOnce))
          expect(yield* users.batches).toEqual([])
        } else if (failedRequests.length > 0) {
          assert(Exit.isFailure(exit))
          const error = Cause.failureOption(exit.cause)
          assert(Option.isSome(error) && error.value instanceof NotFound)
          expect(failedRequests).toContain(error.value.id)
          expect(sorted(yield* users.batches)).toEqual(sorted([firstRequests(list)]))
        } else {
          assert(Exit.isSuccess(exit))
          expect(exit.value).toHaveLength(list.length)
          expect(sorted(yield* users.batches)).toEqual(
            sorted([firstRequests(list), secondRequests(list)].filter((batch) => batch.length > 0))
          )
        }
        // Tasks after the first failure may never start (they start one after another): those that did ran their
        // finalizers once.
        starts.forEach((count) => expect(count).toBeLessThanOrEqual(1))
        expect(finalizers).toEqual(starts)
        if (Exit.isSuccess(exit)) expect(starts).toEqual(list.map(() => 1))
        expect(recorder.running).toBe(0)
      }),
    { fastCheck: { numRuns: 100 } }
  )
})
