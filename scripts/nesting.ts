/**
 * `npx tsx scripts/nesting.ts [depth] [runs]`: every combinator nested in itself `depth` levels deep (default 10,000,
 * well past where one stack would run out), each run in a process of its own (a fresh stack and heap) with a time limit,
 * and a count of what came back per combinator: the depth, the stack overflow as a defect, anything else, or no
 * answer in time (a hang). `npx tsx scripts/nesting.ts --one <combinator> <depth>` is one such run.
 */
import { Effect, Exit, Stream } from "effect"
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
      ([o]) => o!._tag === "Success" ? Effect.succeed(o!.value + 1) : Effect.die(o)
    )
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
    const value = current as Record<string, unknown>
    if (Array.isArray(value.reasons)) {
      const reason = value.reasons.find((r: { _tag: string }) => r._tag !== "Interrupt") as
        | { readonly _tag: "Fail"; readonly error: unknown }
        | { readonly _tag: "Die"; readonly defect: unknown }
        | undefined
      if (reason === undefined) return "interruption"
      current = reason._tag === "Fail" ? reason.error : reason.defect
    } else if (value._tag === "Defect") {
      current = value.defect
    } else if (value._tag === "Failure") {
      current = value.error
    } else if (value._tag === "QuorumError" && Array.isArray(value.outcomes)) {
      current = value.outcomes[0]
    } else {
      return String(value._tag)
    }
  }
  return "too deep"
}

const args = process.argv.slice(2)
const main = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]
if (!main) {
  // Imported (by test/nesting.test.ts): only the nests.
} else if (args[0] === "--one") {
  const exit = await Effect.runPromiseExit(nest(levels[args[1]!]!, Number(args[2])))
  console.log(JSON.stringify(Exit.isSuccess(exit) ? { value: exit.value } : { failure: innermostFailure(exit) }))
} else {
  const depth = Number(args[0] ?? 10_000)
  const runs = Number(args[1] ?? 5)
  const self = fileURLToPath(import.meta.url)
  console.log(`| combinator | depth ${depth}: answers over ${runs} runs |\n|---|---|`)
  for (const name of Object.keys(levels)) {
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
    console.log(`| ${name} | ${[...counts].map(([answer, n]) => `${n}× ${answer}`).join(", ")} |`)
  }
}
