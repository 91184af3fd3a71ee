// Free TCP ports on loopback for local clusters. They are picked below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range, 32768-60999 by default): a port bound with "port 0" comes from
// that range, which is also where every outgoing connection takes its local port, so a node
// restarted later (or started a moment after its ports were chosen) could find its port taken by
// a client's connection. Each candidate is bound to check that it is free, and all are held open
// until every port is known; one process never hands out the same port twice.
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:net";

/** Lowest port handed out: clear of the well-known and registered ports most services use. */
const LOWEST = 20_000;
/** Ports handed out by this process (a cluster may not have bound them yet). */
const handedOut = new Set<number>();

/** The first port of the kernel's ephemeral range (32768 when it cannot be read). */
function ephemeralLow(): number {
  try {
    const lo = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    return Number.isInteger(lo) && lo > 0 ? lo : 32_768;
  } catch {
    return 32_768;
  }
}

function bind(port: number, host: string): Promise<Server | null> {
  const s = createServer();
  return new Promise((resolve, reject) => {
    s.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EADDRINUSE" || err.code === "EACCES") resolve(null);
      else reject(err);
    });
    s.listen({ port, host, exclusive: true }, () => resolve(s));
  });
}

export async function freePorts(count: number, host = "127.0.0.1"): Promise<number[]> {
  const servers: Server[] = [];
  const high = ephemeralLow() - 1;
  try {
    const ports: number[] = [];
    // Below the ephemeral range when it leaves room; otherwise the kernel's choice (port 0).
    const span = high - LOWEST + 1;
    let attempts = 0;
    while (ports.length < count) {
      let port = 0;
      if (span >= 1_000 && attempts < 100 * count) {
        attempts++;
        port = LOWEST + Math.floor(Math.random() * span);
        if (handedOut.has(port)) continue;
      }
      const s = await bind(port, host);
      if (s === null) continue;
      servers.push(s);
      const a = s.address();
      if (a === null || typeof a === "string") throw new Error("could not read the bound port");
      ports.push(a.port);
    }
    for (const p of ports) handedOut.add(p);
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}
