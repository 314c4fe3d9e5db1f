/**
 * The analytics API alone in a process of its own, as deployed: its configuration from the environment
 * (`<FEATURE>_URL` pointing at `npm run attack`'s hostile services, `PORT=0`), its logs on stdout. Prints
 * `ready <url>` once it listens, so that the attack measures this process's memory and descriptors alone. Its stdin
 * is a pipe from the attack: when that closes (the attack ended, however it ended, even killed), the server stops.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import * as Embedded from "../../examples/analytics/harness/Embedded.js"
import * as Server from "../../examples/analytics/Server.js"

process.stdin.on("end", () => process.kill(process.pid, "SIGTERM"))
process.stdin.resume()

Effect.gen(function*() {
  process.stdout.write(`ready ${yield* Embedded.apiUrl}\n`)
  return yield* Effect.never
}).pipe(Effect.provide(Server.layer({ port: 0, host: "127.0.0.1" })), NodeRuntime.runMain)
