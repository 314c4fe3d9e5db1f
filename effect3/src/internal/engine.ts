/**
 * The fan-out engine: runs a list of effects concurrently and reports how each one ended.
 *
 * Every combinator of the library is this engine plus a policy (`onExit` decides when to stop). It is the only
 * module that knows how fibers are made, so it can be swapped without touching the public API.
 *
 * Why not `Effect.forkDaemon` / `Effect.all`: in Effect 3 every forked child copies the parent's fiber-local state
 * (`FiberRefs.forkAs`, once per child), registers in the parent's scope, and is joined back one by one
 * (`inheritAll`, once per child); interrupting N children is N sequential effects. Here:
 *
 * - the parent's `FiberRefs` are forked **once per fan-out** and shared by every fiber it makes (they are immutable:
 *   a task that sets a `FiberRef` gets its own copy on write);
 * - tasks run on **workers**: plain `FiberRuntime`s of the running Effect that run one task after another. A worker
 *   started on a task runs it synchronously; when the task ends without suspending, the same worker goes on with
 *   the next task, and when it suspends, the engine starts a new worker for the next task. So unbounded, the
 *   fan-out makes one fiber per task that suspends (plus one), not one per task; with a bound (`concurrency: n`),
 *   n workers pull task indices from a shared counter. Between two tasks a worker interrupts and awaits the fibers
 *   the finished task forked (as that task's own fiber would on exit) and gets the caller's `FiberRefs` back, so
 *   tasks stay isolated from one another. With a `Supervisor` installed, unbounded tasks get one worker each, so
 *   the supervisor sees one fiber per task, as with `fork`;
 * - a worker runs with interruption off and each task inside an interruptible region (when the caller is
 *   interruptible), so that the worker always sees how its task ended, whole cause included, even when the task
 *   is interrupted; a worker's later tasks share one region, its loop (see `proceed`), and its first task's region
 *   is opened by hand (see `startWorker`);
 * - a task is asked of the plan only when it starts (`forEach` makes its tasks then), and a success is kept as a bare
 *   value in the report: what stays alive until the fan-out ends is what the garbage collector pays for;
 * - the fibers share one scheduler batch per JavaScript async resource: Effect 3.20+ gives every fiber its own
 *   scheduler runner (a `WeakMap` entry, a runner and a microtask per fiber) so that fibers resumed from different
 *   `AsyncLocalStorage` contexts never share a microtask. Here a fan-out's fibers share a runner when they are
 *   woken from the same async resource (`executionAsyncResource()`), or from inside one of its batches; a callback
 *   or `AsyncResource` of their own gets a batch of its own, so their stores do not leak into one another. What is
 *   not told apart: fibers woken synchronously one after the other inside one callback under different
 *   `als.run(store, ...)` scopes (same resource) run in the first one's store. Only when the caller runs on Effect's
 *   default scheduler; a custom scheduler is used as is. This halves the cost of unbounded tasks that yield and of
 *   interrupting many tasks at once;
 * - fiber ids are taken from Effect's own counter, with the fan-out's start time;
 * - stopping (first failure, deadline, the caller's interruption) interrupts every running worker in one pass and
 *   then waits for all of them, so finalizers have run before the fan-out returns;
 * - a per-task time limit (`Plan.timeLimit`) is an alarm per task in one queue with one timer fiber for the fan-out
 *   (`attempts.Alarms`); when it rings, the task's worker is interrupted and takes no further task;
 * - a task may also be a **callback task** (`CallbackTask`), for work that is not an Effect (the Promise facade's
 *   functions): no fiber at all, only a `Done` to report its end through. It takes a slot like a worker, is cancelled
 *   in the same pass when the fan-out stops, and is waited for until it reports, so the guarantees above hold for it
 *   too.
 *
 * The engine reaches into Effect 3's `FiberRuntime` for what its public API does not offer (the `AnyFiber` type
 * lists it: the constructor, children, fiber refs, the stack, the runtime flags). The test suite exercises each of
 * them against the Effect version in the lock file; these are the places to check when a new Effect 3 release
 * changes the runtime.
 *
 * Fiber-local state: tasks see the caller's `FiberRef` values (context, services, log annotations, the current span),
 * and changes a task makes stay inside that task; they are not merged back into the caller. Inside a task,
 * `FiberRef.currentScheduler` is the fan-out's batching wrapper around the default scheduler.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import * as FiberRefs from "effect/FiberRefs"
import * as GlobalValue from "effect/GlobalValue"
import * as MutableRef from "effect/MutableRef"
import * as Option from "effect/Option"
import * as RuntimeFlags from "effect/RuntimeFlags"
import * as RuntimeFlagsPatch from "effect/RuntimeFlagsPatch"
import * as Scheduler from "effect/Scheduler"
import * as Supervisor from "effect/Supervisor"
import { executionAsyncResource } from "node:async_hooks"
import type * as attempts from "./attempts.js"

/**
 * A task that is not an Effect: `register` starts task `index` and returns its canceler. The task reports how it ended
 * through `done` once (later calls are ignored), possibly from inside `register`; after a cancel it must still report
 * once its work has really stopped, since the fan-out waits for that as it waits for an interrupted fiber's
 * finalizers (a canceler may also report at once, for a task whose end nobody needs to wait for). A `register` that
 * throws ends its task as a defect; a canceler must not throw, since it runs inside the stopping pass. One object may
 * serve as every task of a plan: `register` is told which one it starts.
 *
 * @internal
 */
export interface CallbackTask {
  readonly register: (done: Done, index: number) => () => void
}

/**
 * How a callback task reports its end: `succeed` with its value (no `Exit` to make for the common case), or `exit`
 * with any `Exit`.
 *
 * @internal
 */
export interface Done {
  succeed(value: unknown): void
  exit(exit: Exit.Exit<unknown, unknown>): void
  /**
   * The task did not run after all (as it started, it found its work no longer wanted): it ends interrupted, as a task
   * that never started, with no duration and no attempt.
   */
  skip(): void
}

const skipped: Exit.Exit<never, never> = Exit.interrupt(FiberId.none)

/** The `Done` of one callback task. */
class CallbackEnd implements Done {
  ended = false
  constructor(readonly fanOut: FanOutRun, readonly index: number) {}
  succeed(value: unknown): void {
    if (this.end()) this.fanOut.callbackEnded(this.index, false, value)
  }
  exit(exit: Exit.Exit<unknown, unknown>): void {
    if (exit._tag === "Success") this.succeed(exit.value)
    else if (this.end()) this.fanOut.callbackEnded(this.index, true, exit.cause)
  }
  skip(): void {
    if (this.ended) return
    this.fanOut.report.startedAt[this.index] = NaN
    this.exit(skipped)
  }
  private end(): boolean {
    if (this.ended) return false
    this.ended = true
    return true
  }
}

/** @internal */
export type Task = Effect.Effect<any, any, any> | CallbackTask

/**
 * A time limit for every task, applied by the engine on the task's worker: an alarm of `alarms` per task, set as it
 * starts; when it rings the worker is interrupted, the task ends with `error(index)` (whatever it ended with, once
 * it has ended), and the worker takes no further task (a new one takes its slot). For tasks that are their one
 * attempt; retried or hedged attempts get fibers of their own (`timeLimit.ts`).
 *
 * @internal
 */
export interface TimeLimit {
  readonly alarms: attempts.Alarms
  readonly error: (index: number) => unknown
}

/** @internal */
export interface Plan {
  readonly size: number
  /**
   * Task `index`, asked for once, when it starts: a fan-out may make its tasks as they start (as `forEach` does), so
   * that the tasks not running yet cost nothing. In a plan with `callbacks` it is also asked to tell a task's kind, so
   * there it must be a plain lookup.
   */
  readonly task: (index: number) => Task
  /** Whether some tasks are `CallbackTask`s; without it every task is taken for an Effect, unchecked. */
  readonly callbacks?: boolean | undefined
  /** `Infinity` for unbounded. */
  readonly concurrency: number
  readonly deadline: Duration.Duration | undefined
  readonly timeLimit?: TimeLimit | undefined
  /** Return at once when a policy stops the fan-out, leaving the interrupted tasks to finish in the background. */
  readonly detach: boolean
  /** Keep no success values: a task that succeeds leaves `undefined` in `Report.results` (`discard`). */
  readonly discard?: boolean | undefined
  /**
   * Called once per task as it ends, in completion order, before the fan-out decides what to do next, with the
   * failure's cause (`undefined`: the task succeeded). Returning `true` stops the fan-out: no task starts after that
   * and the running ones are interrupted.
   */
  readonly onExit: (index: number, cause: Cause.Cause<unknown> | undefined, report: Report) => boolean
  /**
   * Told when the fan-out stops (a policy, the deadline, the caller's interruption), once the report's `stop` and
   * `cut` are set and before any task is interrupted.
   */
  readonly onStop?: ((report: Report) => void) | undefined
}

/**
 * How a task ended, in `Report.status`. Successes are kept as bare values (no `Exit` per task): with many tasks, the
 * objects that live until the fan-out ends are what the garbage collector pays for.
 *
 * @internal
 */
export const Pending = 0
/** @internal */
export const Succeeded = 1
/** @internal */
export const Failed = 2

/** @internal */
export type StopReason = "Policy" | "Deadline"

/** @internal */
export interface Report {
  /**
   * `Succeeded`, `Failed`, or `Pending` for a task that never ended (never started, or still being interrupted under
   * `detach`).
   */
  readonly status: Uint8Array
  /** A task's value when it succeeded, its `Cause` when it failed. */
  readonly results: Array<unknown>
  /** By the fan-out's `Clock`; `NaN` for a task that never started. */
  readonly startedAt: Array<number>
  readonly endedAt: Array<number>
  /** Whether the task was still pending (running or not started) when the fan-out was stopped. */
  readonly cut: Array<boolean>
  stop: StopReason | undefined
  /** The task whose exit made the policy stop the fan-out, or -1. */
  stoppedBy: number
}

/**
 * The parts of Effect 3's `FiberRuntime` the engine uses beyond the public `RuntimeFiber`.
 *
 * @internal
 */
export type AnyFiber = Fiber.RuntimeFiber<any, any> & {
  start(effect: Effect.Effect<any, any, any>): void
  /** Starts the fiber on `effect` from the scheduler, not on this stack. */
  resume(effect: Effect.Effect<any, any, any>): void
  setFiberRefs(refs: FiberRefs.FiberRefs): void
  interruptAllChildren(): Effect.Effect<void> | null
  pushStack(frame: RevertFlagsFrame | Worker): void
  readonly currentRuntimeFlags: RuntimeFlags.RuntimeFlags
  readonly _fiberRefs: FiberRefs.FiberRefs
  readonly _children: Set<unknown> | null | undefined
}

/** The stack frame Effect 3 pushes when an `interruptible` region starts (`core.RevertFlags`): it ends the region. */
interface RevertFlagsFrame {
  readonly _op: "RevertFlags"
  readonly patch: RuntimeFlagsPatch.RuntimeFlagsPatch
  readonly op: undefined
}

const endInterruptible: RevertFlagsFrame = {
  _op: "RevertFlags",
  patch: RuntimeFlagsPatch.disable(RuntimeFlags.Interruption),
  op: undefined
}

type FiberConstructor = new(
  id: FiberId.Runtime,
  refs: FiberRefs.FiberRefs,
  flags: RuntimeFlags.RuntimeFlags
) => AnyFiber

// ---------------------------------------------------------------------------------------------------------------
// scheduling

/** As Effect's default `MixedScheduler`: after this many microtask rounds in a row, one `setTimeout` lets I/O in. */
const maxMicrotaskRounds = 2048

/**
 * Effect's default scheduler with one runner per fan-out and async context instead of one per fiber. A task
 * scheduled while one of this scheduler's batches is running joins that batch's next round (same async context);
 * otherwise it joins the current batch only if it comes from the same async resource, so that code resumed by
 * different callbacks (different `AsyncLocalStorage` stores) never runs in one another's context.
 */
class FanOutScheduler implements Scheduler.Scheduler {
  private runner: Scheduler.SchedulerRunner | undefined = undefined
  private resource: object | undefined = undefined
  private draining: Scheduler.SchedulerRunner | undefined = undefined

  constructor(private readonly parent: Scheduler.Scheduler) {}

  shouldYield(fiber: Fiber.RuntimeFiber<unknown, unknown>): number | false {
    return this.parent.shouldYield(fiber)
  }

  scheduleTask(task: Scheduler.Task, priority: number): void {
    let runner = this.draining
    if (runner === undefined) {
      const resource = executionAsyncResource()
      runner = this.runner
      if (runner === undefined || resource !== this.resource) {
        runner = this.makeRunner()
        this.runner = runner
        this.resource = resource
      }
    }
    runner.scheduleTask(task, priority)
  }

  private makeRunner(): Scheduler.SchedulerRunner {
    const runner: Scheduler.SchedulerRunner = new Scheduler.SchedulerRunner((depth, drain) => {
      const round = (d: number) => {
        const previous = this.draining
        this.draining = runner
        try {
          drain(d)
        } finally {
          this.draining = previous
        }
      }
      if (depth >= maxMicrotaskRounds) {
        setTimeout(() => round(0), 0)
      } else {
        Promise.resolve(undefined).then(() => round(depth + 1))
      }
    })
    return runner
  }
}

// ---------------------------------------------------------------------------------------------------------------
// fibers

/** Effect's own fiber id counter, so that the engine's ids never collide with the runtime's. */
const fiberIds = GlobalValue.globalValue(Symbol.for("effect/Fiber/Id/_fiberCounter"), () => MutableRef.make(0))

const runtimeProblems = new WeakMap<object, string | undefined>()

/**
 * What the engine needs of Effect 3's `FiberRuntime` beyond its public interface (`AnyFiber`, the `_steps` that
 * `isStepped` reads, the fiber id counter), checked once per runtime class: with an Effect release that changed them,
 * every fan-out dies with this message instead of misbehaving. `undefined` when all is there.
 *
 * @internal
 */
export const runtimeProblem = (fiber: Fiber.RuntimeFiber<any, any>): string | undefined => {
  const runtime = fiber.constructor
  if (runtimeProblems.has(runtime)) return runtimeProblems.get(runtime)
  const f = fiber as unknown as Record<string, unknown>
  const methods = [
    "start",
    "resume",
    "setFiberRefs",
    "getFiberRefs",
    "interruptAllChildren",
    "pushStack",
    "addObserver",
    "unsafeInterruptAsFork"
  ]
  const missing = [
    ...(runtime.length === 3 ? [] : ["a constructor of (id, fiber refs, runtime flags)"]),
    ...methods.filter((method) => typeof f[method] !== "function").map((method) => `${method}()`),
    ...["_fiberRefs", "_children"].filter((field) => !(field in f)),
    ...(Array.isArray(f._steps) ? [] : ["_steps"]),
    ...(typeof f.currentRuntimeFlags === "number" ? [] : ["currentRuntimeFlags"])
  ]
  const before = fiberIds.current
  FiberId.unsafeMake()
  if (fiberIds.current !== before + 1) missing.push("the fiber id counter")
  const problem = missing.length === 0 ?
    undefined :
    `the running effect's FiberRuntime lacks what the fan-out engine ` +
    `uses (${missing.join(", ")}); this engine is built for effect 3.22, please report your effect version`
  runtimeProblems.set(runtime, problem)
  return problem
}

/** @internal */
export interface FiberFactory {
  /**
   * A new fiber, not started, with the fan-out's `baseRefs` unless given other (shared as they are, not forked), and
   * told to a `Supervisor` as a child of the fan-out's caller unless of another `parent`.
   */
  (
    effect: Effect.Effect<any, any, any>,
    flags: RuntimeFlags.RuntimeFlags,
    refs?: FiberRefs.FiberRefs,
    parent?: Fiber.RuntimeFiber<any, any>
  ): AnyFiber
  readonly baseRefs: FiberRefs.FiberRefs
  readonly supervised: boolean
}

/** Past this many entries, the stack of one fiber ref in a fan-out's `baseRefs` is cut down to `keptAncestry`. */
const maxAncestry = 64
const keptAncestry = 16

/**
 * A fiber ref's value in `FiberRefs` is a stack: one entry per fiber that set it, newest first, down to the root
 * fiber's (what `join` looks in for the value two fibers last shared). Every fiber that sets a ref copies its stack
 * with its own entry on top, so in a nest of fan-outs each level's fibers copy a stack as long as the nest is deep,
 * and a nest costs time and memory in the square of its depth (a stream 10,000 levels deep never answered). The
 * fan-out's fibers are never joined into their caller, so the oldest entries of a long stack go: a fiber that a task
 * hands outside the fan-out and is joined by a fiber more than `keptAncestry` settings up the nest inherits its
 * values as changes from the refs' initial values rather than from the last ones the two shared.
 *
 * @internal
 */
export const boundAncestry = (refs: FiberRefs.FiberRefs): FiberRefs.FiberRefs => {
  let locals: Map<FiberRef.FiberRef<any>, readonly [readonly [FiberId.Single, any], ...Array<any>]> | undefined
  refs.locals.forEach((stack, ref) => {
    if (stack.length > maxAncestry) {
      locals ??= new Map(refs.locals)
      locals.set(ref, stack.slice(0, keptAncestry) as unknown as readonly [readonly [FiberId.Single, any]])
    }
  })
  return locals === undefined ? refs : FiberRefs.unsafeMake(locals)
}

/**
 * Makes child fibers of the running Effect without the per-child bookkeeping of `fork`: same class, the caller's
 * fiber refs forked once. A `Supervisor` installed by the caller still sees every fiber start and end, as it would
 * with `fork`. The fibers are nobody's children: whoever starts one interrupts and awaits it.
 *
 * @internal
 */
export const fiberFactory = (parent: Fiber.RuntimeFiber<any, any>): FiberFactory => {
  const problem = runtimeProblem(parent)
  if (problem !== undefined) throw new Error(`effect-fanout: ${problem}`)
  const FiberRuntime = parent.constructor as FiberConstructor
  const parentRefs = parent.getFiberRefs()
  const forkId = FiberId.unsafeMake()
  let baseRefs = FiberRefs.forkAs(parentRefs, forkId)
  const scheduler = FiberRefs.getOrDefault(parentRefs, FiberRef.currentScheduler)
  if (scheduler === Scheduler.defaultScheduler) {
    baseRefs = FiberRefs.updateAs(baseRefs, {
      fiberId: forkId,
      fiberRef: FiberRef.currentScheduler,
      value: new FanOutScheduler(scheduler)
    })
  }
  baseRefs = boundAncestry(baseRefs)
  const startTimeMillis = forkId.startTimeMillis
  const supervisor = parent.currentSupervisor
  const supervised = supervisor !== Supervisor.none
  const context = parent.currentContext
  const parentOption = Option.some(parent)
  const make = (
    effect: Effect.Effect<any, any, any>,
    flags: RuntimeFlags.RuntimeFlags,
    refs: FiberRefs.FiberRefs = baseRefs,
    of?: Fiber.RuntimeFiber<any, any>
  ): AnyFiber => {
    const id = fiberIds.current
    fiberIds.current = id + 1
    const fiber = new FiberRuntime(FiberId.runtime(id, startTimeMillis), refs, flags)
    if (supervised) {
      supervisor.onStart(
        context,
        effect as Effect.Effect<unknown>,
        of === undefined ? parentOption : Option.some(of),
        fiber
      )
      fiber.addObserver((exit) => supervisor.onEnd(exit, fiber))
    }
    return fiber
  }
  return Object.assign(make, { baseRefs, supervised })
}

// ---------------------------------------------------------------------------------------------------------------
// the engine

/**
 * A worker: a fiber that runs tasks one after another. Its first task runs as if in
 * `matchCauseEffect(interruptible(task), worker)` (the fiber starts with those frames on its stack); the tasks after it
 * run in one `whileLoop` made once per worker (its `while` claims the next task, its `body` is that task, its `step`
 * records a success), inside one interruptible region and one `matchCauseEffect` that records a failure and goes back
 * into the loop. So a task that succeeds in the loop costs the runtime no instruction of the engine's and allocates
 * nothing: its value goes straight into the report. A failure skips the loop's frame (a `While` frame only sees
 * successes), ends the region, and lands in the handler with its whole cause.
 */
class Worker {
  /** The task the worker is running, -1 between tasks. */
  running = -1
  /** Tasks started so far. */
  ran = 0
  /** The clock reading at the end of this worker's last task (the next one's start), NaN before the first. */
  lastEnd = NaN
  /** A task's success held back while the fibers that task forked are interrupted (outside the loop). */
  holding = false
  held: unknown = undefined
  /** Whether the running task's time limit interrupted this worker: it then takes no further task. */
  timedOut = false
  /** The running task's time limit, when the plan has one. */
  alarm: attempts.Alarm | undefined = undefined
  /** The loop that runs the worker's tasks after the first one, made when a worker reaches its second task. */
  loop: Effect.Effect<void, never, any> | undefined = undefined
  fiber: AnyFiber | undefined = undefined

  constructor(readonly fanOut: FanOutRun, readonly slot: number) {}

  /**
   * A worker is also its first task's handler: the stack frame `matchCauseEffect(task, { onFailure, onSuccess })`
   * would push (Effect 3's `OnSuccessAndFailure` continuation, whose handlers the runtime calls as methods of the
   * frame). So starting a worker allocates no frame and no handler closures: one fiber per unbounded task that waits,
   * so this is what each of them would pay.
   */
  readonly _op = "OnSuccessAndFailure"
  effect_instruction_i1(cause: Cause.Cause<unknown>): Effect.Effect<void, never, any> {
    return this.fanOut.guarded(() => this.fanOut.ended(this, true, cause, false))
  }
  effect_instruction_i2(value: unknown): Effect.Effect<void, never, any> {
    return this.fanOut.guarded(() => this.fanOut.ended(this, false, value, false))
  }
  readonly onEnd = (exit: Exit.Exit<unknown, unknown>) => {
    this.fanOut.guarded(() => this.fanOut.workerEnded(this, exit))
  }
}

/** How many fibers are starting, one inside another's first steps, on this stack right now. */
let startsOnStack = 0
const maxStartsOnStack = 64

/**
 * Starts a fiber the engine made (a worker, an attempt). A fiber starts on this stack, running its effect until it
 * suspends, so a task that is a fan-out starts its own fibers deeper on the same stack: past a few levels of that, a
 * fiber starts from the scheduler instead, on a fresh stack, so that a deep nest of fan-outs costs the stack a
 * bounded number of levels at a time (as `Effect.all` nested the same way costs none of it).
 *
 * @internal
 */
export const startFiber = (fiber: AnyFiber, effect: Effect.Effect<any, any, any>): void => {
  if (startsOnStack >= maxStartsOnStack) return fiber.resume(effect)
  startsOnStack++
  try {
    fiber.start(effect)
  } finally {
    startsOnStack--
  }
}

/** The state of one running fan-out. */
class FanOutRun {
  readonly n: number
  readonly report: Report
  // Fibers that have been started and whose observer has not run yet: workers and the deadline timer.
  live = 0
  // Of which workers.
  liveWorkers = 0
  // Callback tasks started whose `done` has not been called yet (each takes a slot, as a worker does).
  liveCallbacks = 0
  // Tasks that have not ended and were not cut off before starting.
  pending: number
  // Next task index to start.
  next = 0
  // Set while tasks are being started, so that tasks ending meanwhile neither start others (the loop does) nor end the
  // fan-out before the loop has finished.
  filling = false
  stopped = false
  cancelled = false
  resumed = false
  /**
   * A throw in the fan-out's own bookkeeping (a stack overflow in a deep nest of fan-outs): the fan-out stops, and
   * dies with it once its tasks have ended, rather than answering with what a half-done step left behind (a success
   * recorded without its value, a task never counted as ended).
   */
  broken: { readonly defect: unknown } | undefined = undefined
  waiter: (() => void) | undefined = undefined
  // The workers whose observer has not run yet (a slot is cleared when its worker ends).
  readonly workers: Array<AnyFiber | undefined> = []
  // The cancelers of the running callback tasks, by task index; `undefined` when the plan has none.
  readonly cancels: Array<(() => void) | undefined> | undefined
  timer: AnyFiber | undefined = undefined
  resume: (effect: Effect.Effect<Report>) => void = () => {}
  readonly spawn: FiberFactory
  readonly clock: Clock.Clock
  readonly parentId: FiberId.FiberId
  /** The caller's fiber (where the time limits' alarms take their clock and their timer). */
  readonly caller: AnyFiber
  readonly parentFlags: RuntimeFlags.RuntimeFlags
  /** Workers run with interruption off and each task interruptible, so that a worker always sees its task's exit. */
  readonly interruptible: boolean
  readonly workerFlags: RuntimeFlags.RuntimeFlags
  readonly width: number
  /** Unbounded with a supervisor: one worker per task, so that the supervisor sees one fiber per task. */
  readonly oneTaskPerWorker: boolean

  constructor(readonly plan: Plan, parent: Fiber.RuntimeFiber<any, any>, report: Report) {
    const n = plan.size
    this.n = n
    this.pending = n
    this.report = report
    this.spawn = fiberFactory(parent)
    this.clock = Context.get(parent.currentDefaultServices, Clock.Clock)
    this.parentId = parent.id()
    this.caller = parent as AnyFiber
    const parentFlags = (parent as unknown as AnyFiber).currentRuntimeFlags
    this.parentFlags = parentFlags
    // When the caller is not interruptible, neither are its tasks (as with `fork`), and nothing needs wrapping.
    this.interruptible = RuntimeFlags.interruption(parentFlags)
    this.workerFlags = this.interruptible ? RuntimeFlags.disable(parentFlags, RuntimeFlags.Interruption) : parentFlags
    const bounded = plan.concurrency < n
    this.width = bounded ? plan.concurrency : Infinity
    this.oneTaskPerWorker = !bounded && this.spawn.supervised
    this.cancels = plan.callbacks === true ? new Array(n).fill(undefined) : undefined
  }

  isCallback(index: number): boolean {
    // A plain property read, not `Effect.isEffect` (a `dual` call per task): an Effect has no `register`.
    return this.cancels !== undefined && typeof (this.plan.task(index) as Partial<CallbackTask>).register === "function"
  }

  start(resume: (effect: Effect.Effect<Report>) => void): void {
    this.resume = resume
    this.filling = true
    const deadline = this.plan.deadline
    if (deadline !== undefined) {
      const sleep = Effect.sleep(deadline)
      // Interruptible even when the caller is not (a fan-out in a finalizer, or inside `Effect.uninterruptible`): the
      // timer is the fan-out's own, and once every task has ended it must stop at once, not hold the fan-out until
      // the deadline and then fail it.
      const t = this.spawn(sleep, RuntimeFlags.enable(this.parentFlags, RuntimeFlags.Interruption))
      this.timer = t
      this.live++
      t.addObserver((exit) => {
        this.live--
        if (this.timer === t) this.timer = undefined
        if (exit._tag === "Success" && this.pending > 0) this.stop("Deadline", -1)
        this.finishIfDone()
      })
      t.start(sleep)
    }
    this.filling = false
    this.fill()
  }

  /**
   * Starts tasks while there are free slots. A worker returns from `start` when its task suspends (or when it has run
   * everything): unbounded, the next task gets a new worker; bounded, a new worker until there are `concurrency` of
   * them. A callback task takes a slot of its own. Tasks that end while this runs (synchronously) leave the starting
   * to this loop, so that thousands of synchronous callbacks do not nest.
   */
  fill(): void {
    if (this.filling) return
    this.filling = true
    while (!this.stopped && this.next < this.n && this.liveWorkers + this.liveCallbacks < this.width) {
      if (this.isCallback(this.next)) this.startCallback()
      else this.startWorker()
    }
    this.filling = false
    this.finishIfDone()
  }

  /**
   * Runs a step of the bookkeeping that the runtime calls (a task's end, a worker's end): a throw there breaks the
   * fan-out (see `broken`) instead of reaching the runtime, which would take it for the worker's own failure, or lose
   * it in an observer. If even stopping fails on this stack, the stop runs from the scheduler, on a fresh stack.
   */
  guarded<X>(step: () => Effect.Effect<X, never, any> | void): Effect.Effect<X, never, any> {
    try {
      return step() ?? (Effect.void as unknown as Effect.Effect<X, never, any>)
    } catch (defect) {
      this.broken ??= { defect }
      this.filling = false
      try {
        this.recover()
      } catch {
        try {
          Scheduler.defaultScheduler.scheduleTask(() => this.recover(), 0)
        } catch {
          // Not even the scheduler can be called on this stack; the next worker to end answers the caller.
        }
      }
      return Effect.void as unknown as Effect.Effect<X, never, any>
    }
  }

  recover(): void {
    this.stop("Policy", -1)
    this.finishIfDone()
  }

  /** What the caller is resumed with: the report, or the defect that broke the fan-out. */
  answer(): Effect.Effect<Report> {
    return this.broken === undefined ? Effect.succeed(this.report) : Effect.die(this.broken.defect)
  }

  /** The caller was interrupted: interrupt every task and wait for all of them, whatever `detach` says. */
  cancel(done: () => void): void {
    this.cancelled = true
    this.stop("Policy", -1)
    if (this.live === 0) done()
    else this.waiter = done
  }

  finishIfDone(): void {
    if (this.filling) return
    if (this.pending === 0 && this.timer !== undefined) {
      const t = this.timer
      this.timer = undefined
      t.unsafeInterruptAsFork(this.parentId)
    }
    if (this.live === 0) {
      if (this.waiter !== undefined) {
        const w = this.waiter
        this.waiter = undefined
        w()
      } else if (!this.resumed) {
        this.resumed = true
        this.resume(this.answer())
      }
    } else if (this.stopped && this.plan.detach && !this.cancelled && !this.resumed) {
      this.resumed = true
      this.resume(this.answer())
    }
  }

  stop(reason: StopReason, by: number): void {
    if (this.stopped) return
    this.stopped = true
    stopped(this.plan, this.report, reason, by)
    // Tasks that never started are done as far as waiting goes.
    this.pending -= this.n - this.next
    this.next = this.n
    const workers = this.workers
    for (let i = 0; i < workers.length; i++) {
      const worker = workers[i]
      if (worker !== undefined) worker.unsafeInterruptAsFork(this.parentId)
    }
    if (this.timer !== undefined) {
      const t = this.timer
      this.timer = undefined
      t.unsafeInterruptAsFork(this.parentId)
    }
    const cancels = this.cancels
    if (cancels !== undefined) {
      for (let i = 0; i < cancels.length; i++) {
        const cancel = cancels[i]
        if (cancel !== undefined) {
          cancels[i] = undefined
          cancel()
        }
      }
    }
  }

  /**
   * Records a task's end (`result`: its value, or its `Cause` when it `failed`) and returns the clock reading taken
   * for it.
   */
  taskEnded(index: number, failed: boolean, result: unknown): number {
    const now = this.clock.unsafeCurrentTimeMillis()
    this.pending--
    if (ended(this.plan, this.report, index, failed, result, now) && !this.stopped) this.stop("Policy", index)
    return now
  }

  exitEnded(index: number, exit: Exit.Exit<unknown, unknown>): number {
    return exit._tag === "Success" ? this.taskEnded(index, false, exit.value) : this.taskEnded(index, true, exit.cause)
  }

  startCallback(): void {
    const index = this.next++
    const task = this.plan.task(index) as CallbackTask
    const cancels = this.cancels!
    this.live++
    this.liveCallbacks++
    this.report.startedAt[index] = this.clock.unsafeCurrentTimeMillis()
    const done = new CallbackEnd(this, index)
    let cancel: () => void
    try {
      cancel = task.register(done, index)
    } catch (defect) {
      done.exit(Exit.die(defect))
      return
    }
    if (done.ended) return
    // Stopped from inside `register` (another task's end): the stopping pass could not see this task yet.
    if (this.stopped) cancel()
    else cancels[index] = cancel
  }

  callbackEnded(index: number, failed: boolean, result: unknown): void {
    this.cancels![index] = undefined
    this.live--
    this.liveCallbacks--
    this.taskEnded(index, failed, result)
    this.fill()
  }

  startWorker(): void {
    const worker = new Worker(this, this.workers.length)
    const claimed = this.claim(worker)
    // The first task runs as if in `matchCauseEffect(interruptible(task), worker)`, without those instructions: the
    // fiber starts on the task itself with the caller's flags, its stack already holding what they would have pushed:
    // the worker's handler (the worker itself is that frame), then, when the caller is interruptible, the end of the
    // task's interruptible region (Effect's `RevertFlags` frame). One fiber per task that waits, so this is the path
    // of every unbounded task that suspends. A caller that is not interruptible: neither is the task.
    const first = claimed ? this.plan.task(worker.running) as Effect.Effect<any, any, any> : Effect.void
    const fiber = this.spawn(first, claimed ? this.parentFlags : this.workerFlags)
    worker.fiber = fiber
    this.workers.push(fiber)
    this.live++
    this.liveWorkers++
    fiber.addObserver(worker.onEnd)
    if (claimed) {
      fiber.pushStack(worker)
      if (this.interruptible) fiber.pushStack(endInterruptible)
    }
    startFiber(fiber, first)
  }

  /** Whether this worker may take the next task. */
  mayClaim(worker: Worker): boolean {
    return !this.stopped && this.next < this.n && !(this.oneTaskPerWorker && worker.ran > 0) && !worker.timedOut &&
      // A callback task is started by `fill`, once this worker has ended and freed its slot.
      !this.isCallback(this.next)
  }

  /** Gives the worker the next task, if it may take one. */
  claim(worker: Worker): boolean {
    if (!this.mayClaim(worker)) return false
    const index = this.next++
    worker.running = index
    worker.ran++
    // The previous task's end on this worker was read just before: only engine code has run since.
    const startedAt = Number.isNaN(worker.lastEnd) ? this.clock.unsafeCurrentTimeMillis() : worker.lastEnd
    this.report.startedAt[index] = startedAt
    const limit = this.plan.timeLimit
    if (limit !== undefined) worker.alarm = limit.alarms.set(this.caller, () => this.timeUp(worker, index), startedAt)
    return true
  }

  /**
   * Task `index`'s time is up: its worker is interrupted, unless the task has ended already or the fan-out has
   * stopped. (An alarm only rings on the timer's fiber, so a worker found still on the task is suspended in it, or
   * waiting for what it forked.)
   */
  timeUp(worker: Worker, index: number): void {
    // Once the fan-out has stopped, the tasks still running are being interrupted by it: that is how they end.
    if (this.stopped || worker.running !== index) return
    worker.timedOut = true
    worker.fiber!.unsafeInterruptAsFork(this.parentId)
  }

  /**
   * Records how a task ended, under a time limit: its alarm cleared, and, if its time ran out, the time-out error
   * whatever it ended with. Returns the clock reading taken for it.
   */
  limitedEnded(worker: Worker, index: number, failed: boolean, result: unknown): number {
    const limit = this.plan.timeLimit!
    if (worker.alarm !== undefined) {
      limit.alarms.clear(worker.alarm)
      worker.alarm = undefined
    }
    return worker.timedOut
      ? this.taskEnded(index, true, Cause.fail(limit.error(index)))
      : this.taskEnded(index, failed, result)
  }

  /** What the worker does after a task that ended outside the loop: the loop, if there is a task to take. */
  proceed(worker: Worker): Effect.Effect<void, never, any> {
    if (!this.mayClaim(worker)) return Effect.void
    if (worker.loop === undefined) {
      // Made here, not with the worker: unbounded, most workers run one task that waits, and never get here.
      const tasks = this.plan
      const loop = Effect.whileLoop({
        while: () => !worker.holding && this.claim(worker),
        body: () => tasks.task(worker.running) as Effect.Effect<any, any, any>,
        step: (value) => this.succeeded(worker, value)
      })
      // The whole loop is one interruptible region (when the caller is interruptible): its end, below the loop's
      // frame, is the first frame a failure meets, so the handler always sees the whole cause, and a task that
      // succeeds costs the runtime no instruction of the engine's. Between two tasks only the loop's own callbacks
      // run, synchronously; an interruption there (the fan-out stopping) fails the loop with no task running.
      worker.loop = Effect.matchCauseEffect(this.interruptible ? Effect.interruptible(loop) : loop, {
        onFailure: (cause) => worker.running < 0 ? Effect.void : this.ended(worker, true, cause, false),
        onSuccess: () => this.loopEnded(worker)
      })
    }
    return worker.loop
  }

  /** The loop's `step`: a task succeeded. Recorded here unless it left forked fibers to interrupt first. */
  succeeded(worker: Worker, value: unknown): void {
    const children = worker.fiber!._children
    if (children != null && children.size > 0) {
      worker.holding = true
      worker.held = value
    } else {
      this.record(worker, false, value)
    }
  }

  /** The loop has ended: no task left to take, or a success held back for its forked fibers. */
  loopEnded(worker: Worker): Effect.Effect<void, never, any> {
    if (!worker.holding) return Effect.void
    const value = worker.held
    worker.holding = false
    worker.held = undefined
    return this.ended(worker, false, value, false)
  }

  /** A task ended outside the loop (the first task, a failure, a held success): record it and go on. */
  ended(worker: Worker, failed: boolean, result: unknown, childrenDone: boolean): Effect.Effect<void, never, any> {
    const fiber = worker.fiber!
    // The fibers the task forked end with it, as they would when its own fiber exits.
    const children = fiber._children
    if (!childrenDone && children != null && children.size > 0) {
      const interruption = fiber.interruptAllChildren()
      if (interruption !== null) return Effect.flatMap(interruption, () => this.ended(worker, failed, result, true))
    }
    this.record(worker, failed, result)
    return this.proceed(worker)
  }

  record(worker: Worker, failed: boolean, result: unknown): void {
    const index = worker.running
    worker.running = -1
    // Tasks must not see each other's fiber-local changes: give the worker back the caller's refs.
    const fiber = worker.fiber!
    if (fiber._fiberRefs !== this.spawn.baseRefs) fiber.setFiberRefs(this.spawn.baseRefs)
    worker.lastEnd = this.plan.timeLimit === undefined
      ? this.taskEnded(index, failed, result)
      : this.limitedEnded(worker, index, failed, result)
  }

  workerEnded(worker: Worker, exit: Exit.Exit<unknown, unknown>): void {
    this.live--
    this.liveWorkers--
    this.workers[worker.slot] = undefined
    // A worker only ends in the middle of a task when something outside the task killed it.
    if (worker.running >= 0) {
      const index = worker.running
      worker.running = -1
      if (this.plan.timeLimit === undefined) this.exitEnded(index, exit)
      else if (exit._tag === "Success") this.limitedEnded(worker, index, false, exit.value)
      else this.limitedEnded(worker, index, true, exit.cause)
    }
    // Keep the fan-out going: a worker lost with tasks left, or one that left its slot to a callback task.
    this.fill()
  }
}

/**
 * Records in the report that task `index` ended (`result`: its value, or its `Cause` when it `failed`) at `at`, and,
 * unless the fan-out has stopped, asks the policy: returns whether it stops the fan-out.
 *
 * @internal
 */
export const ended = (
  plan: Plan,
  report: Report,
  index: number,
  failed: boolean,
  result: unknown,
  at: number
): boolean => {
  report.status[index] = failed ? Failed : Succeeded
  report.results[index] = failed || plan.discard !== true ? result : undefined
  report.endedAt[index] = at
  return report.stop === undefined && plan.onExit(index, failed ? result as Cause.Cause<unknown> : undefined, report)
}

/**
 * Records in the report that the fan-out stopped, marks the tasks still pending as cut off, and tells the plan.
 *
 * @internal
 */
export const stopped = (plan: Plan, report: Report, reason: StopReason, by: number): void => {
  report.stop = reason
  report.stoppedBy = by
  for (let i = 0; i < report.status.length; i++) {
    if (report.status[i] === Pending) report.cut[i] = true
  }
  plan.onStop?.(report)
}

/**
 * A report with every task pending, for a fan-out of `n` tasks.
 *
 * @internal
 */
export const makeReport = (n: number): Report => ({
  status: new Uint8Array(n),
  results: new Array(n).fill(undefined),
  startedAt: new Array(n).fill(NaN),
  endedAt: new Array(n).fill(0),
  cut: new Array(n).fill(false),
  stop: undefined,
  stoppedBy: -1
})

/**
 * Runs the plan and succeeds with its report. The report may be given by the caller (one made by `makeReport` for the
 * plan's size, not shared with another run): it is filled in as tasks end, so that it can also be read when the run is
 * interrupted, once the interruption is over.
 *
 * @internal
 */
export const run = (plan: Plan, report?: Report): Effect.Effect<Report> =>
  Effect.withFiberRuntime<Report>((parent) => {
    const r = report ?? makeReport(plan.size)
    if (plan.size === 0) return Effect.succeed(r)
    const fanOut = new FanOutRun(plan, parent, r)
    return Effect.async<Report>((resume) => {
      fanOut.start(resume)
      return Effect.async<void>((resumeCanceler) => fanOut.cancel(() => resumeCanceler(Effect.void)))
    })
  })

/**
 * Runs each effect on a fiber of its own, interrupts it as soon as it has suspended, and waits for all of them: for
 * work that must not go on but whose finalizers must run (a batched task waiting for requests that will not be sent).
 * The fibers are interruptible whatever the caller's flags, unless an effect turns that off itself; the wait cannot be
 * interrupted.
 *
 * @internal
 */
export const interruptAll = (
  effects: ReadonlyArray<Effect.Effect<unknown, unknown, any>>
): Effect.Effect<Array<Exit.Exit<unknown, unknown>>> =>
  effects.length === 0 ? Effect.succeed([]) : Effect.uninterruptible(Effect.withFiberRuntime((parent) => {
    const spawn = fiberFactory(parent)
    const flags = RuntimeFlags.enable((parent as unknown as AnyFiber).currentRuntimeFlags, RuntimeFlags.Interruption)
    const exits = new Array<Exit.Exit<unknown, unknown>>(effects.length)
    return Effect.async<Array<Exit.Exit<unknown, unknown>>>((resume) => {
      let live = effects.length
      for (let i = 0; i < effects.length; i++) {
        const effect = effects[i]!
        const fiber = spawn(effect, flags)
        fiber.addObserver((exit) => {
          exits[i] = exit
          if (--live === 0) resume(Effect.succeed(exits))
        })
        // `start` runs the effect until it suspends or ends; interrupting an ended fiber does nothing.
        fiber.start(effect)
        fiber.unsafeInterruptAsFork(parent.id())
      }
    })
  }))

/**
 * Whether the fiber is running inside `Effect.step` (a batching `Effect.all`, or a batching fan-out stepping its
 * tasks): an `Effect.blocked` there returns to the stepper, which sends the requests with its own, instead of being
 * sent at once on a daemon fiber.
 *
 * @internal
 */
export const isStepped = (fiber: Fiber.RuntimeFiber<any, any>): boolean =>
  ((fiber as unknown as { readonly _steps?: ReadonlyArray<unknown> })._steps?.length ?? 0) > 0
