/**
 * `npx tsx scripts/nesting.ts [depth] [runs]`: every combinator nested in itself `depth` levels deep (default 10,000,
 * well past where the stack runs out), each run in a process of its own (a fresh stack and heap) with a time limit,
 * and a count of what came back per combinator: the depth, the stack overflow as a defect, anything else, or no
 * answer in time (a hang). `Effect.all` and `Stream.runCollect` nested the same way are measured alongside, as
 * peers. `npx tsx scripts/nesting.ts --one <combinator> <depth>` is one such run; `--every <depth>` runs every
 * combinator's nest in turn in one process, printing a line per combinator.
 */
import { Cause, Chunk, Effect, Exit, Option, Stream } from "effect"
import { execFileSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import { FanOut } from "../src/index.js"

type Level = (inner: Effect.Effect<number, unknown>) => Effect.Effect<number, unknown>

/** Each level runs the level below as its one task and adds one; any other answer of a task dies with it. */
export const levels: Record<string, Level> = {
  all: (inner) => Effect.map(FanOut.all([inner]), ([n]) => n + 1),
  forEach: (inner) => Effect.map(FanOut.forEach([0], () => inner), ([n]) => n! + 1),
  settle: (inner) =>
    Effect.flatMap(FanOut.settle([inner]), ([o]) => o._tag === "Success" ? Effect.succeed(o.value + 1) : Effect.die(o)),
  settleForEach: (inner) =>
    Effect.flatMap(
      FanOut.settleForEach([0], () => inner),
      ([o]) => o!._tag === "Success" ? Effect.succeed(o!.value + 1) : Effect.die(o)
    ),
  quorum: (inner) => Effect.map(FanOut.quorum([inner], 1), ([s]) => s!.value + 1),
  firstSuccess: (inner) => Effect.map(FanOut.firstSuccess([inner]), (n) => n + 1),
  stream: (inner) =>
    Effect.flatMap(
      Stream.runCollect(FanOut.stream([inner])),
      (chunk) => {
        const o = Chunk.unsafeGet(chunk, 0)
        return o._tag === "Success" ? Effect.succeed(o.value + 1) : Effect.die(o)
      }
    ),
  hedge: (inner) => Effect.map(FanOut.hedge(inner, { delay: "1 hour" }), (n) => n + 1)
}

/**
 * The peers: `Effect.all` nested the same way, and a one-element `Stream` run at every level (what each level of the
 * `stream` nest pays for `Stream.runCollect` alone, whatever makes the stream).
 */
const peers: Record<string, Level> = {
  "Effect.all": (inner) => Effect.map(Effect.all([inner]), ([n]) => n + 1),
  "Stream.runCollect": (inner) =>
    Effect.map(Stream.runCollect(Stream.fromEffect(inner)), (c) => Chunk.unsafeGet(c, 0) + 1)
}

export const nest = (level: Level, depth: number): Effect.Effect<number, unknown> =>
  depth === 0 ? Effect.succeed(0) : level(Effect.suspend(() => nest(level, depth - 1)))

/**
 * What a nest that did not answer its depth failed with, at its innermost level: each level fails with what the
 * level below did — a defect, a `Defect` outcome (settling levels die with it), a `QuorumError` whose outcome is the
 * level below's `Failure` — down to the stack overflow. Named, not returned: a nest 10,000 levels deep is no value to
 * print.
 */
export const innermostFailure = (exit: Exit.Exit<number, unknown>): string => {
  if (Exit.isSuccess(exit)) return "none"
  let current: unknown = exit.cause
  for (let steps = 0; steps < 100_000; steps++) {
    if (current instanceof RangeError) return "RangeError"
    if (typeof current !== "object" || current === null) return typeof current
    if (Cause.isCause(current)) {
      const failure = Cause.failureOption(current)
      if (Option.isSome(failure)) {
        current = failure.value
        continue
      }
      const defects = Cause.defects(current)
      if (Chunk.isEmpty(defects)) return "interruption"
      current = Chunk.unsafeHead(defects)
      continue
    }
    const value = current as Record<string, unknown>
    if (value._tag === "Defect") {
      current = value.defect
    } else if (value._tag === "Failure") {
      current = value.error
    } else if (Array.isArray(value.outcomes)) {
      current = value.outcomes.find((o: { _tag: string }) => o._tag !== "Success")
    } else {
      return String(value._tag)
    }
  }
  return "too deep"
}

const answer = async (level: Level, depth: number) => {
  const exit = await Effect.runPromiseExit(nest(level, depth))
  return Exit.isSuccess(exit) ? { value: exit.value } : { failure: innermostFailure(exit) }
}

const args = process.argv.slice(2)
const main = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]
if (!main) {
  // Imported (by test/nesting.test.ts): only the nests.
} else if (args[0] === "--one") {
  const level = levels[args[1]!] ?? peers[args[1]!]
  if (level === undefined) throw new Error(`no combinator ${args[1]}`)
  console.log(JSON.stringify(await answer(level, Number(args[2]))))
} else if (args[0] === "--every") {
  // Every combinator, one after the other in this process: one line each, as it answers.
  for (const [combinator, level] of Object.entries(levels)) {
    console.log(JSON.stringify({ combinator, ...await answer(level, Number(args[1])) }))
  }
} else {
  const depths = (args[0] ?? "10000").split(",").map(Number)
  const runs = Number(args[1] ?? 5)
  const only = args[2]?.split(",")
  const self = fileURLToPath(import.meta.url)
  console.log(`| combinator | depth | answers over ${runs} runs |\n|---|---|---|`)
  for (const name of [...Object.keys(peers), ...Object.keys(levels)]) {
    if (only !== undefined && !only.includes(name)) continue
    for (const depth of depths) {
      const counts = new Map<string, number>()
      for (let run = 0; run < runs; run++) {
        let answer: string
        try {
          answer = execFileSync(process.execPath, ["--import", "tsx", self, "--one", name, String(depth)], {
            timeout: 30_000,
            encoding: "utf8",
            stdio: ["ignore", "pipe", "ignore"]
          }).trim()
        } catch (error) {
          answer = (error as { readonly signal?: string }).signal === "SIGTERM" ? "no answer in 30 s" : "crashed"
        }
        counts.set(answer, (counts.get(answer) ?? 0) + 1)
      }
      console.log(`| ${name} | ${depth} | ${[...counts].map(([answer, n]) => `${n}× ${answer}`).join(", ")} |`)
    }
  }
}
