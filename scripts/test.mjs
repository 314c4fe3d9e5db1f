// `npm test`: every line's checks and tests, the Effect 4 line (top level) then the Effect 3 line (effect3/). Every
// step runs even when an earlier one fails, so that one run reports everything; the exit code is non-zero when any
// step failed. The Effect 3 line runs on the machine's own Node (it supports Node 20), not on tools/node's.
import { spawnSync } from "node:child_process"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))
const ownBin = Path.join(root, "node_modules/.bin")
const machinePath = (process.env.PATH ?? "").split(Path.delimiter).filter((dir) => Path.resolve(dir) !== ownBin)

const steps = [
  { name: "Effect 4 line: type-check", cwd: root, args: ["run", "typecheck"] },
  { name: "Effect 4 line: lint", cwd: root, args: ["run", "lint"] },
  { name: "Effect 4 line: vitest", cwd: root, args: ["run", "vitest"] },
  {
    name: "Effect 3 line (effect3/): type-check, lint, vitest",
    cwd: Path.join(root, "effect3"),
    args: ["test"],
    env: { ...process.env, PATH: machinePath.join(Path.delimiter) }
  }
]

const failed = []
for (const step of steps) {
  console.log(`\n── ${step.name}`)
  const result = spawnSync("npm", step.args, { cwd: step.cwd, env: step.env ?? process.env, stdio: "inherit" })
  if (result.status !== 0) failed.push(step.name)
}
console.log(failed.length === 0 ? "\nnpm test: every step passed" : `\nnpm test: failed: ${failed.join("; ")}`)
process.exit(failed.length === 0 ? 0 : 1)
