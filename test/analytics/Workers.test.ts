/**
 * `npm run serve -- --workers=2`, end to end: the primary and two workers on one port, each answering requests, a
 * crashed worker reported and replaced, and SIGINT closing every process cleanly. Each step waits for the line the
 * server prints for it, never for a fixed time.
 */
import { describe, expect, it } from "@effect/vitest"
import { type ChildProcess, spawn } from "node:child_process"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { fileURLToPath } from "node:url"
import { workerHeader } from "../../examples/analytics/Listen.js"

const root = fileURLToPath(new URL("../../", import.meta.url))

/** The server's output, line by line, with a wait for the first line (from `from` on) matching a pattern. */
const watch = (child: ChildProcess) => {
  const lines: Array<string> = []
  const waiters: Array<() => void> = []
  let ended = false
  const onData = (stream: NodeJS.ReadableStream) => {
    let partial = ""
    stream.setEncoding("utf8")
    stream.on("data", (chunk: string) => {
      const parts = (partial + chunk).split("\n")
      partial = parts.pop()!
      lines.push(...parts)
      for (const wake of waiters.splice(0)) wake()
    })
  }
  onData(child.stdout!)
  onData(child.stderr!)
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => {
      ended = true
      for (const wake of waiters.splice(0)) wake()
      resolve({ code, signal })
    })
  )
  const line = (pattern: RegExp, from = 0) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const look = () => {
        for (const text of lines.slice(from)) {
          const match = text.match(pattern)
          if (match !== null) return resolve(match)
        }
        if (ended) return reject(new Error(`exited without printing ${pattern}:\n${lines.join("\n")}`))
        waiters.push(look)
      }
      look()
    })
  return { lines, line, exited }
}

/** One request on a connection of its own, so that the primary hands each to the next worker. */
const get = (url: string) =>
  new Promise<{ status: number; worker: string | undefined }>((resolve, reject) => {
    Http.get(url, { agent: false }, (response) => {
      response.resume()
      response.on("end", () => {
        const worker = response.headers[workerHeader]
        resolve({ status: response.statusCode ?? 0, worker: typeof worker === "string" ? worker : undefined })
      })
    }).on("error", reject)
  })

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe("npm run serve -- --workers=2", () => {
  it(
    "serves from both workers on one port, replaces a crashed worker, and exits 0 on SIGINT with nothing left",
    async () => {
      const child = spawn(process.execPath, ["--import", "tsx", "scripts/serve.ts", "--workers=2", "--port=0"], {
        cwd: root,
        stdio: ["ignore", "pipe", "pipe"]
      })
      const server = watch(child)
      try {
        const up = await server.line(/analytics API on (http:\/\/127\.0\.0\.1:\d+) \(2 workers: (\d+) (\d+)\)/)
        const base = up[1]!
        const pids = [up[2]!, up[3]!]

        // Round-robin over fresh connections: both workers answer within a few requests (bounded, not timed).
        const seen = new Set<string>()
        for (let i = 0; i < 50 && seen.size < 2; i++) {
          const response = await get(`${base}/health`)
          expect(response.status).toBe(200)
          if (response.worker !== undefined) seen.add(response.worker)
        }
        expect([...seen].sort()).toEqual([...pids].sort())
        const usage = await get(`${base}/customers/c-1042/usage?mode=partial&deadlineMs=2000`)
        expect(usage.status).toBe(200)

        // A worker killed outright is reported and another takes its place on the same port.
        const from = server.lines.length
        process.kill(Number(pids[0]), "SIGKILL")
        await server.line(new RegExp(`serve: worker ${pids[0]} was killed by SIGKILL; starting another`), from)
        const replacement = await server.line(/worker (\d+) serving the API on (http:\/\/127\.0\.0\.1:\d+)/, from)
        expect(replacement[2]).toBe(base)
        const workers = [pids[1]!, replacement[1]!]

        process.kill(child.pid!, "SIGINT")
        expect(await server.exited).toEqual({ code: 0, signal: null })
        expect(server.lines).toContain("shutting down: 2 workers and simulators closed")
        for (const pid of [...workers, pids[0]!]) expect(isAlive(Number(pid)), pid).toBe(false)
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
      }
    },
    120_000
  )

  it("exits with code 1 and one line when the port is taken, having started no worker", async () => {
    const taken = Http.createServer()
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve))
    const { port } = taken.address() as AddressInfo
    try {
      const child = spawn(process.execPath, ["--import", "tsx", "scripts/serve.ts", "--workers=2", `--port=${port}`], {
        cwd: root,
        stdio: ["ignore", "pipe", "pipe"]
      })
      const server = watch(child)
      expect(await server.exited).toEqual({ code: 1, signal: null })
      expect(server.lines.filter((line) => line !== "")).toEqual([
        `serve: cannot listen: listen EADDRINUSE: address already in use 127.0.0.1:${port}`
      ])
    } finally {
      await new Promise((resolve) => taken.close(resolve))
    }
  }, 60_000)
})
