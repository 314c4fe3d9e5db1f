/**
 * Twelve feature services that misbehave on purpose, on plain `node:http` on 127.0.0.1: each one answers as its mode
 * says and counts what it saw — connections, requests, the most requests in flight at once, the body bytes it wrote.
 */
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { byFeature, type Feature, features } from "../../examples/analytics/Features.js"
import { closeServers } from "../../examples/analytics/harness/Simulator.js"

export type Mode =
  /** A usage answer after `latencyMs`. */
  | { readonly _tag: "Ok"; readonly latencyMs: number }
  /** The connection reset as soon as a request arrives. */
  | { readonly _tag: "Reset" }
  /** `status` with a body of `bytes` (streamed as the client reads it, never held in memory). */
  | { readonly _tag: "Huge"; readonly status: number; readonly bytes: number }
  /** A small 503 (a JSON error), as a service that is down answers. */
  | { readonly _tag: "Unavailable" }

export interface Counts {
  connections: number
  requests: number
  maxInFlight: number
  bytesWritten: number
}

export interface Downstream {
  readonly urls: { readonly [F in Feature]: string }
  /** Every feature's mode, `all` then per feature; the counters are zeroed. */
  readonly set: (modes: { readonly all: Mode } & { readonly [F in Feature]?: Mode }) => void
  readonly counts: () => { readonly [F in Feature]: Counts }
  readonly close: () => Promise<void>
}

const chunk = Buffer.alloc(64 * 1024, "x")

export const start = async (): Promise<Downstream> => {
  let modes: { [F in Feature]: Mode } = byFeature(() => ({ _tag: "Ok", latencyMs: 0 }) as Mode)
  const zero = (): Counts => ({ connections: 0, requests: 0, maxInFlight: 0, bytesWritten: 0 })
  let counts = byFeature(zero) as { [F in Feature]: Counts }
  const inFlight = byFeature(() => 0) as { [F in Feature]: number }

  const handler = (feature: Feature) => (request: Http.IncomingMessage, response: Http.ServerResponse) => {
    const count = counts[feature]
    count.requests++
    inFlight[feature]++
    count.maxInFlight = Math.max(count.maxInFlight, inFlight[feature])
    response.once("close", () => inFlight[feature]--)
    const mode = modes[feature]
    switch (mode._tag) {
      case "Reset":
        request.socket.destroy()
        return
      case "Unavailable":
        response.writeHead(503, { "content-type": "application/json" }).end(`{"error":"${feature} is unavailable"}`)
        return
      case "Ok": {
        const customerId = decodeURIComponent((request.url ?? "").split("/")[2] ?? "")
        const body = JSON.stringify({ customerId, feature, count: 1, lastUsedAt: null })
        setTimeout(() => response.writeHead(200, { "content-type": "application/json" }).end(body), mode.latencyMs)
        return
      }
      case "Huge": {
        response.writeHead(mode.status, { "content-type": "application/json" })
        let left = mode.bytes
        const pump = () => {
          while (left > 0 && !response.destroyed) {
            const piece = left >= chunk.length ? chunk : chunk.subarray(0, left)
            left -= piece.length
            count.bytesWritten += piece.length
            if (!response.write(piece)) return void response.once("drain", pump)
          }
          if (left === 0) response.end()
        }
        pump()
        return
      }
    }
  }

  const servers = await Promise.all(
    features.map((feature) =>
      new Promise<readonly [Feature, Http.Server]>((resolve) => {
        const server = Http.createServer({ keepAliveTimeout: 30_000 }, handler(feature))
        server.on("connection", () => counts[feature].connections++)
        server.listen(0, "127.0.0.1", () => resolve([feature, server]))
      })
    )
  )
  const urls = {} as { [F in Feature]: string }
  for (const [feature, server] of servers) urls[feature] = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    urls,
    set: (next) => {
      modes = byFeature((feature) => next[feature] ?? next.all) as { [F in Feature]: Mode }
      counts = byFeature(zero) as { [F in Feature]: Counts }
    },
    counts: () => counts,
    close: () => closeServers(servers.map(([, server]) => server))
  }
}

/** The counters summed over the features (`maxInFlight`: the largest of any one service). */
export const total = (counts: { readonly [F in Feature]: Counts }): Counts =>
  Object.values(counts).reduce((sum, c) => ({
    connections: sum.connections + c.connections,
    requests: sum.requests + c.requests,
    maxInFlight: Math.max(sum.maxInFlight, c.maxInFlight),
    bytesWritten: sum.bytesWritten + c.bytesWritten
  }), { connections: 0, requests: 0, maxInFlight: 0, bytesWritten: 0 })
