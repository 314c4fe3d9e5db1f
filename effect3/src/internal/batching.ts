/**
 * Request batching for a fan-out (`batching: true`): the requests its tasks make (`Effect.request`) are gathered
 * across tasks and sent together, each resolver getting one batch, as `Effect.all` does with `batching: true`.
 *
 * The fan-out runs in rounds on the engine. In a round every task still running is stepped (`Effect.step`) until it
 * ends or blocks on requests. When the round is over, the blocked tasks' requests are merged (`RequestBlock.parallel`)
 * and run (`Effect.runRequestBlock`), and the next round resumes the blocked tasks where they stopped. The policy
 * (`Plan.onExit`) sees every task end in completion order, with the fan-out's own indices and report, as without
 * batching; a task's time runs from its first start to its end, across rounds.
 *
 * A blocked task has no fiber: it is a continuation waiting for its requests. When the fan-out stops (a policy, the
 * deadline, the caller's interruption) the blocked tasks are started and interrupted at once (`engine.interruptAll`),
 * so that their finalizers run exactly once and they end like any interrupted task; their requests are never sent.
 * The deadline covers the rounds and the requests between them (the requests running at the deadline are
 * interrupted). Under `detach`, the fan-out returns when it stops and the rest goes on in the background.
 *
 * Nesting: a batching fan-out without a deadline that runs inside a stepped task (of an enclosing batching fan-out or
 * `Effect.all`) hands its round's requests up (`Effect.blocked`) instead of sending them, as `Effect.all` does, so
 * nested fan-outs batch together; the enclosing stepper resumes its next round, or interrupts it. With a deadline it
 * sends its own, so that it can stop them at the deadline. Likewise an `Effect.all` with batching inside a task joins
 * the fan-out's batch.
 *
 * What is not batched: requests made inside something a task forks (its `timeout`, `hedge`, `Effect.fork`, a fan-out
 * without `batching`) are sent by that fiber on its own, as with `Effect.all`. A task blocked on a request inside an
 * uninterruptible region when the fan-out stops cannot be interrupted, and waits for a request that is not sent: as
 * with `Effect.all`.
 *
 * @internal
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as RequestBlock from "effect/RequestBlock"
import * as Supervisor from "effect/Supervisor"
import * as engine from "./engine.js"

type Stepped = Exit.Exit<unknown, unknown> | Effect.Blocked<unknown, unknown>

const isBlocked = (stepped: Stepped): stepped is Effect.Blocked<unknown, unknown> => stepped._op === "Blocked"

/**
 * Runs the plan with its tasks' requests batched; like `engine.run` otherwise. Only for plans of Effects.
 *
 * @internal
 */
export const run = (plan: engine.Plan, report: engine.Report): Effect.Effect<engine.Report> =>
  plan.size === 0 ? Effect.succeed(report) : plan.detach ? detached(plan, report) : rounds(plan, report)

/**
 * `detach`: the rounds run on a fiber of their own, and the fan-out returns as soon as they stop (or end), leaving
 * the interruptions to finish in the background. The caller's interruption still interrupts and waits for everything.
 */
const detached = (plan: engine.Plan, report: engine.Report): Effect.Effect<engine.Report> =>
  Effect.flatMap(Deferred.make<void>(), (stopped) => {
    const attached: engine.Plan = {
      ...plan,
      detach: false,
      onStop: (report) => {
        plan.onStop?.(report)
        Deferred.unsafeDone(stopped, Effect.void)
      }
    }
    return Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(
        Effect.forkDaemon(restore(Effect.ensuring(rounds(attached, report), Deferred.succeed(stopped, undefined)))),
        (fiber) =>
          Effect.as(
            Effect.onInterrupt(restore(Deferred.await(stopped)), () => Fiber.interrupt(fiber)),
            report
          )
      )
    )
  })

const rounds = (plan: engine.Plan, report: engine.Report): Effect.Effect<engine.Report> =>
  Effect.clockWith((clock) => {
    const n = plan.size
    const deadlineAt = plan.deadline === undefined || !Duration.isFinite(plan.deadline)
      ? Infinity
      : clock.unsafeCurrentTimeMillis() + Duration.toMillis(plan.deadline)
    // What a blocked task resumes with, by task index, until a round takes it (or it is interrupted).
    const resumes: Array<Effect.Effect<unknown, unknown> | undefined> = new Array(n).fill(undefined)
    // The requests of the tasks blocked in the current round.
    let requests: Array<RequestBlock.RequestBlock> = []
    /** The round's requests as one block, to send or to hand up; the list starts over. */
    const takeRequests = (): RequestBlock.RequestBlock => {
      const block = requests.reduce(RequestBlock.parallel)
      requests = []
      return block
    }

    const stop = (reason: engine.StopReason, by: number): void => {
      if (report.stop === undefined) engine.stopped(plan, report, reason, by)
    }

    /** Records task `i`'s end; returns whether the policy stops the fan-out. */
    const ended = (i: number, failed: boolean, result: unknown, at: number): boolean => {
      if (!engine.ended(plan, report, i, failed, result, at)) return false
      stop("Policy", i)
      return true
    }

    /** The blocked tasks are interrupted, their finalizers run, and their ends recorded. */
    const interruptBlocked = Effect.suspend(() => {
      const indices: Array<number> = []
      const continuations: Array<Effect.Effect<unknown, unknown>> = []
      for (let i = 0; i < n; i++) {
        const resume = resumes[i]
        if (resume !== undefined) {
          resumes[i] = undefined
          indices.push(i)
          continuations.push(resume)
        }
      }
      return Effect.map(engine.interruptAll(continuations), (exits) => {
        const now = clock.unsafeCurrentTimeMillis()
        for (let k = 0; k < exits.length; k++) {
          const exit = exits[k]!
          if (exit._tag === "Success") ended(indices[k]!, false, exit.value, now)
          else ended(indices[k]!, true, exit.cause, now)
        }
      })
    })

    /** One round over `tasks` (task indices): returns the tasks that blocked, in index order. */
    const round = (tasks: ReadonlyArray<number>, first: boolean): Effect.Effect<Array<number>> =>
      Effect.suspend(() => {
        const sub = engine.makeReport(tasks.length)
        const blocked: Array<number> = []
        const passed = new Uint8Array(tasks.length)
        requests = []
        // Passes task `j` of the round on: a step that ended the task, or one that blocked it.
        const pass = (j: number): boolean => {
          passed[j] = 1
          const i = tasks[j]!
          if (first) report.startedAt[i] = sub.startedAt[j]!
          const result = sub.results[j]
          const at = sub.endedAt[j]!
          // The step itself fails only when the task was interrupted or its worker killed.
          if (sub.status[j] === engine.Failed) return ended(i, true, result, at)
          const stepped = result as Stepped
          if (isBlocked(stepped)) {
            resumes[i] = stepped.effect_instruction_i1
            requests.push(stepped.effect_instruction_i0)
            blocked.push(i)
            return false
          }
          return stepped._tag === "Success" ? ended(i, false, stepped.value, at) : ended(i, true, stepped.cause, at)
        }
        // Tasks that ended after the round stopped (the policy was not asked about them).
        const passRest = Effect.sync(() => {
          for (let j = 0; j < tasks.length; j++) {
            if (first && Number.isNaN(report.startedAt[tasks[j]!]!)) report.startedAt[tasks[j]!] = sub.startedAt[j]!
            if (passed[j] === 0 && sub.status[j] !== engine.Pending) pass(j)
          }
        })
        const remaining = deadlineAt - clock.unsafeCurrentTimeMillis()
        const subPlan: engine.Plan = {
          size: tasks.length,
          task: (j) => {
            const i = tasks[j]!
            if (first) return Effect.step(plan.task(i) as Effect.Effect<unknown, unknown>)
            const resume = resumes[i]!
            resumes[i] = undefined
            return Effect.step(resume)
          },
          concurrency: plan.concurrency,
          deadline: remaining === Infinity ? undefined : Duration.millis(Math.max(0, remaining)),
          detach: false,
          onExit: (j) => pass(j),
          onStop: (sub) => stop(sub.stop!, sub.stoppedBy < 0 ? -1 : tasks[sub.stoppedBy]!)
        }
        return Effect.map(Effect.ensuring(engine.run(subPlan, sub), passRest), () => blocked.sort((a, b) => a - b))
      })

    /**
     * Sends the requests of the tasks blocked in the last round; false when the deadline came first. When the fan-out
     * stops meanwhile, the waiting tasks are interrupted first (a task whose request is shared through the request
     * cache with a caller outside the fan-out then waits for its result: Effect's cache does so), then the requests:
     * Effect runs each resolver on a daemon fiber, so the fibers the requests started are tracked, interrupted and
     * awaited, and no resolver outlives the fan-out.
     */
    const send = Effect.uninterruptibleMask((restore) => {
      const block = takeRequests()
      const remaining = deadlineAt - clock.unsafeCurrentTimeMillis()
      // The round ended at the very instant of the deadline: nothing is sent, the waiting tasks are cut off.
      if (remaining <= 0) {
        stop("Deadline", -1)
        return Effect.as(interruptBlocked, false)
      }
      return Effect.flatMap(Supervisor.track, (tracker) =>
        Effect.flatMap(Effect.fork(restore(Effect.supervised(Effect.runRequestBlock(block), tracker))), (sending) => {
          const abandon = (reason: engine.StopReason) =>
            Effect.suspend(() => {
              stop(reason, -1)
              return Effect.zipRight(
                interruptBlocked,
                Effect.flatMap(tracker.value, (fibers) =>
                  Fiber.interruptAll([sending, ...fibers]))
              )
            })
          const sent = remaining === Infinity
            ? Effect.as(Fiber.await(sending), true)
            : Effect.map(Effect.timeoutOption(Fiber.await(sending), Duration.millis(remaining)), Option.isSome)
          return Effect.matchCauseEffect(restore(sent), {
            // Only the caller's interruption: waiting for a fiber cannot fail.
            onFailure: (cause) => Effect.zipRight(abandon("Policy"), Effect.failCause(cause)),
            onSuccess: (inTime) => inTime ? Effect.succeed(true) : Effect.as(abandon("Deadline"), false)
          })
        }))
    })

    const loop = (tasks: ReadonlyArray<number>, first: boolean): Effect.Effect<void> =>
      Effect.flatMap(round(tasks, first), (blocked) => {
        if (report.stop !== undefined) {
          return interruptBlocked
        }
        if (blocked.length === 0) {
          return Effect.void
        }
        // Without a deadline to keep, requests are handed up to an enclosing batch (a batching fan-out or `Effect.all`
        // stepping the task this fan-out runs in), so that nested fan-outs batch together: the enclosing stepper sends
        // them with its own and resumes this fan-out's next round, or interrupts it (its `onInterrupt` below then
        // interrupts the waiting tasks).
        if (deadlineAt === Infinity) {
          return Effect.withFiberRuntime<void>((fiber) => {
            if (!engine.isStepped(fiber)) {
              return sendAndLoop(blocked)
            }
            return Effect.blocked(takeRequests(), loop(blocked, false))
          })
        }
        return sendAndLoop(blocked)
      })

    const sendAndLoop = (blocked: ReadonlyArray<number>): Effect.Effect<void> =>
      Effect.flatMap(send, (inTime) => {
        if (!inTime) {
          return Effect.void
        }
        // The requests may have ended at the very instant of the deadline: no round starts after it.
        if (clock.unsafeCurrentTimeMillis() >= deadlineAt) {
          stop("Deadline", -1)
          return interruptBlocked
        }
        return loop(blocked, false)
      })

    const everyTask = Array.from({ length: n }, (_, i) =>
      i)
    return Effect.as(
      Effect.onInterrupt(loop(everyTask, true), () =>
        Effect.suspend(() => {
          stop("Policy", -1)
          return interruptBlocked
        })),
      report
    )
  })
