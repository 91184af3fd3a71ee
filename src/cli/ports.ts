// Free TCP ports on loopback, found by binding port 0. All sockets are held open until every
// port is known, so one call never returns the same port twice.
import { createServer, type Server } from "node:net";

export async function freePorts(count: number, host = "127.0.0.1"): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const s = createServer();
      servers.push(s);
      await new Promise<void>((resolve, reject) => {
        s.once("error", reject);
        s.listen(0, host, () => resolve());
      });
      const a = s.address();
      if (a === null || typeof a === "string") throw new Error("could not read the bound port");
      ports.push(a.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}
