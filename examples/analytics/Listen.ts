/**
 * Where and how the API listens: `PORT` and `HOST`, read strictly, and the `node:http` server it listens with.
 */
import { Config, Result } from "effect"
import Cluster from "node:cluster"
import * as Http from "node:http"
import { isIP } from "node:net"
import { variable } from "./Environment.js"

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

/**
 * A `node:http` server that, once closing, also closes each keep-alive connection as its last response finishes.
 * `server.close()` (what `NodeHttpServer` calls on shutdown) stops accepting and closes the connections idle at that
 * moment; a connection still answering a request would otherwise stay open after its answer until the client drops
 * it or the keep-alive timeout passes, holding up the shutdown. (The hook is on the response class, not a `request`
 * listener: `NodeHttpServer` answers 503 itself while its own listener is the only one.)
 *
 * In a `node:cluster` worker (`npm run serve -- --workers N`) every response also carries `workerHeader`.
 */
export const nodeServer = (): Http.Server => {
  const server: Http.Server = Http.createServer({
    ServerResponse: class extends Http.ServerResponse {
      constructor(request: Http.IncomingMessage) {
        super(request)
        if (Cluster.isWorker) this.setHeader(workerHeader, String(process.pid))
        this.once("finish", () => {
          if (!server.listening) server.closeIdleConnections()
        })
      }
    }
  })
  return server
}
