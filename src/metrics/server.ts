// The HTTP endpoint Prometheus scrapes: GET /metrics returns the registry's text exposition.
// Plain node:http, no framework; anything else is 404 (and /healthz a liveness 200).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../logger/index.js";
import type { MetricsRegistry } from "./registry.js";

export interface MetricsServerOpts {
  /** "host:port"; port 0 picks a free port (see `address` after start). */
  listen: string;
}

export class MetricsServer {
  private server: Server | null = null;
  private bound: { host: string; port: number } | null = null;

  constructor(
    private readonly opts: MetricsServerOpts,
    private readonly mod: { registry: MetricsRegistry; log?: Logger },
  ) {}

  /** The bound "host:port" once started. */
  get address(): string {
    if (!this.bound) throw new Error("metrics server not started");
    const h = this.bound.host.includes(":") ? `[${this.bound.host}]` : this.bound.host;
    return `${h}:${this.bound.port}`;
  }

  async start(): Promise<void> {
    if (this.server) return;
    const { host, port } = splitHostPort(this.opts.listen);
    const server = createServer((req, res) => void this.handle(req, res));
    // Scrapers keep connections alive; bounded timeouts keep stop() from waiting on them.
    server.keepAliveTimeout = 5_000;
    server.requestTimeout = 10_000;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.server = server;
    const a = server.address() as AddressInfo;
    this.bound = { host: a.address, port: a.port };
    this.mod.log?.info({ address: this.address }, "metrics endpoint listening");
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (url === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
      return;
    }
    if (url !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found; try /metrics\n");
      return;
    }
    try {
      const body = await this.mod.registry.metrics();
      res.writeHead(200, { "content-type": this.mod.registry.contentType });
      res.end(req.method === "HEAD" ? undefined : body);
    } catch (err) {
      this.mod.log?.error({ err }, "collecting metrics failed");
      res.writeHead(500, { "content-type": "text/plain" }).end("metrics collection failed\n");
    }
  }
}

function splitHostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(":");
  const port = Number(s.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`metrics listen address must be "host:port", got ${JSON.stringify(s)}`);
  }
  return { host: s.slice(0, i).replace(/^\[|\]$/g, ""), port };
}
