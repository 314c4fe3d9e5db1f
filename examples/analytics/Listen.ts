/**
 * Where and how the API listens: `PORT` and `HOST`, read strictly, and the `node:http` server it listens with.
 */
import { Config, Duration, Result } from "effect"
import Cluster from "node:cluster"
import * as Http from "node:http"
import type { Socket } from "node:net"
import { isIP } from "node:net"
import { duration, integer, variable } from "./Environment.js"

export interface Listen {
  readonly port: number
  readonly host: string
}

/** A TCP port written in decimal digits, 0 (any free port) included; `undefined` if `raw` is not one. */
export const parsePort = (raw: string): number | undefined => {
  const port = /^\d{1,5}$/.test(raw) ? Number(raw) : NaN
  return port <= 65535 ? port : undefined
}

/** What `parsePort` takes, as said when it is given something else. */
export const portExpected = "port must be an integer from 0 to 65535"

/** An IP address or a host name (an empty `HOST` would listen on every interface). */
const isHost = (raw: string): boolean =>
  isIP(raw) !== 0 ||
  (raw.length <= 253 && /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(raw))

const hostExpected = "host must be an IP address or a host name, such as 127.0.0.1"

/** `PORT`, default 3000; 0 for any free port (the address is logged). `Config.Port` would refuse 0. */
export const portConfig: Config.Config<number> = variable("PORT", (raw) => {
  const port = parsePort(raw)
  return port === undefined ? Result.fail(portExpected) : Result.succeed(port)
}).pipe(Config.withDefault(3000))

/** `HOST`, default 127.0.0.1. */
export const hostConfig: Config.Config<string> = variable(
  "HOST",
  (raw) => isHost(raw) ? Result.succeed(raw) : Result.fail(hostExpected)
).pipe(Config.withDefault("127.0.0.1"))

/** Where `Server.layerConfig` listens: `PORT` and `HOST`. */
export const listenConfig: Config.Config<Listen> = Config.all({ port: portConfig, host: hostConfig })

/** The header naming the worker process that answered, so a client can see the load spread over the workers. */
export const workerHeader = "x-worker-pid"

/** A duration variable from `min` to `max`. */
const durationBetween = (name: string, min: Duration.Duration, max: Duration.Duration) =>
  duration(
    name,
    (value) => Duration.isGreaterThanOrEqualTo(value, min) && Duration.isLessThanOrEqualTo(value, max),
    `must be a duration from ${Duration.format(min)} to ${Duration.format(max)}`
  )

/** How the server treats its client connections. */
export interface Connections {
  /**
   * Connections open at once: `MAX_CONNECTIONS`, 1 to 100000, default 512. One more connection closes the oldest idle
   * one (no request in flight on it: an idle keep-alive, or a socket that has not sent a whole request head yet), or
   * itself when none is idle. A client holding thousands of sockets open loses its oldest ones to every new
   * connection instead of locking everyone else out, and the process never reaches its file-descriptor limit (at the
   * defaults: 512 client connections, 12 × `FEATURE_CONNECTIONS` = 384 downstream ones, under 1024 in all).
   */
  readonly maxConnections: number
  /** How long a kept-alive connection may be idle between requests: `KEEP_ALIVE_TIMEOUT`, default 5 seconds. */
  readonly keepAliveTimeout: Duration.Duration
  /**
   * How long a connection may take to send a request head, counted from when it opened or its last answer:
   * `HEADERS_TIMEOUT`, 1 to 60 seconds, default 10 seconds. Past it the server answers 408 and closes it (an idle
   * socket that never sends anything included), checked every second.
   */
  readonly headersTimeout: Duration.Duration
}

export const connectionsConfig: Config.Config<Connections> = Config.all({
  maxConnections: integer("MAX_CONNECTIONS", 1, 100_000).pipe(Config.withDefault(512)),
  keepAliveTimeout: durationBetween("KEEP_ALIVE_TIMEOUT", Duration.millis(1), Duration.seconds(600)).pipe(
    Config.withDefault(Duration.seconds(5))
  ),
  headersTimeout: durationBetween("HEADERS_TIMEOUT", Duration.seconds(1), Duration.seconds(60)).pipe(
    Config.withDefault(Duration.seconds(10))
  )
})

/** The longest a whole request may take to arrive (its head and its body): longer than any deadline. */
const requestTimeoutMs = 90_000

/**
 * A `node:http` server that, once closing, also closes each keep-alive connection as its last response finishes.
 * `server.close()` (what `NodeHttpServer` calls on shutdown) stops accepting and closes the connections idle at that
 * moment; a connection still answering a request would otherwise stay open after its answer until the client drops
 * it or the keep-alive timeout passes, holding up the shutdown. (The hook is on the response class, not a `request`
 * listener: `NodeHttpServer` answers 503 itself while its own listener is the only one.) It keeps at most
 * `connections.maxConnections` connections, closing the oldest idle one for a new one (see `Connections`).
 *
 * In a `node:cluster` worker (`npm run serve -- --workers N`) every response also carries `workerHeader`.
 */
export const nodeServer = (connections: Connections): Http.Server => {
  // Every open connection, oldest first, with its requests in flight.
  const open = new Map<Socket, { inFlight: number }>()
  const server: Http.Server = Http.createServer({
    keepAliveTimeout: Duration.toMillis(connections.keepAliveTimeout),
    headersTimeout: Duration.toMillis(connections.headersTimeout),
    requestTimeout: requestTimeoutMs,
    connectionsCheckingInterval: 1_000,
    ServerResponse: class extends Http.ServerResponse {
      constructor(request: Http.IncomingMessage) {
        super(request)
        if (Cluster.isWorker) this.setHeader(workerHeader, String(process.pid))
        const state = open.get(request.socket)
        if (state !== undefined) state.inFlight++
        this.once("close", () => {
          if (state !== undefined) state.inFlight--
        })
        this.once("finish", () => {
          if (!server.listening) server.closeIdleConnections()
        })
      }
    }
  })
  server.on("connection", (socket: Socket) => {
    open.set(socket, { inFlight: 0 })
    socket.once("close", () => open.delete(socket))
    if (open.size <= connections.maxConnections) return
    for (const [other, state] of open) {
      if (other !== socket && state.inFlight === 0) {
        other.destroy()
        return
      }
    }
    socket.destroy()
  })
  return server
}
