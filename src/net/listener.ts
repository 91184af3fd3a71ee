// A TCP listener in front of a grpc-js server that counts connections before grpc-js sees them:
// a global cap and a per-remote-address cap. grpc-js has no connection limit of its own, so the
// socket is accepted here, counted, and handed to the server through its connection injector
// (TLS, when the credentials are secure, is done by grpc-js on the injected socket).
import net from "node:net";
import tls from "node:tls";
import type * as grpc from "@grpc/grpc-js";
import type { Logger } from "../logger/index.js";
import { RateLimiter } from "./rateLimit.js";

export interface ConnectionLimits {
  /** Open connections at once, all addresses together. */
  maxConnections: number;
  /** Open connections at once from one remote IP address. */
  maxConnectionsPerAddress: number;
  /** New connections per second from one IP address (token bucket, burst twice this). Default 20. */
  newConnectionsPerSecondPerAddress?: number;
  /** A connection whose calls were refused by a cap this many times is closed (`strike()`). Default 8. */
  maxStrikesPerConnection?: number;
  /**
   * After a connection is closed for abuse (`strike()`), new connections from its address are
   * refused at accept for this long (`abuse_cooldown`), so an abuser that reconnects at once pays
   * an accept and a close, not a gRPC call per request. Open connections from the address (an
   * honest client behind the same NAT) are untouched, and the cool-down ends by itself: an
   * address is never banned for good. Default 0 (off).
   */
  abuseCooldownMs?: number;
  /**
   * An address whose connection is closed for abuse again within this long of its last
   * cool-down's end gets twice that cool-down, up to this bound; one that stays clean this long
   * starts again from `abuseCooldownMs`. Default `abuseCooldownMs` (no escalation).
   */
  abuseCooldownMaxMs?: number;
}

export type ConnectionRefusal =
  | "max_connections"
  | "max_connections_per_address"
  | "connection_rate"
  | "abusive_connection_closed"
  /** A new connection from an address whose connection was closed for abuse a moment ago. */
  | "abuse_cooldown";

export interface ListenerTls {
  /** node:tls server options: our certificate and key. */
  cert: string;
  key: string;
  /** A TLS handshake not finished within this is dropped. */
  handshakeTimeoutMs: number;
  /**
   * A client certificate is required, and judged by its key, not by a CA: TLS 1.3 has already
   * proved the client holds that key. Returns null to accept, or the refusal reason (e.g. the key
   * is no validator's). So a validator elected later connects without anyone's trust bundle
   * changing; which validator it claims to be is checked against the same key in the handshake.
   */
  checkCertificate(der: Uint8Array): TlsRefusal | null;
  /** A TLS connection was refused: the handshake failed (timeout, garbage) or the certificate. */
  onFailure(reason: TlsRefusal | "tls_handshake_failed", address: string): void;
}

/** Why a client certificate was refused after a completed TLS handshake. */
export type TlsRefusal = "tls_no_certificate" | "tls_bad_certificate" | "tls_unknown_key";

export interface GatedListenerHooks {
  log: Logger;
  /** A connection was closed at once because a cap was reached. */
  onRefused?(reason: ConnectionRefusal, address: string): void;
  /** The open-connection count changed. */
  onCount?(open: number): void;
  /** The clock (ms) of the rate limits and cool-downs; Date.now by default (tests inject one). */
  now?(): number;
}

/** "::ffff:127.0.0.1" and "127.0.0.1" are one address. */
export function normalizeAddress(addr: string | undefined): string {
  if (!addr) return "unknown";
  return addr.startsWith("::ffff:") ? addr.slice(7) : addr;
}

/** The IP part of a grpc-js `getPeer()` string ("1.2.3.4:5", "[::1]:5", "ipv4:1.2.3.4:5"). */
export function peerAddress(peer: string): string {
  let p = peer.replace(/^ipv[46]:/, "");
  const m = /^\[(.*)\]:\d+$/.exec(p);
  if (m) return normalizeAddress(m[1]);
  const colon = p.lastIndexOf(":");
  if (colon > 0 && p.indexOf(":") === colon) p = p.slice(0, colon);
  return normalizeAddress(p);
}

/** Addresses whose abuse cool-down is remembered at once; past this the oldest is forgotten. */
const MAX_COOLDOWN_ADDRESSES = 10_000;

export class GatedListener {
  private readonly tcp: net.Server;
  private readonly injector: grpc.ConnectionInjector;
  private readonly perAddress = new Map<string, number>();
  /** New-connection token buckets per address. */
  /** New connections per address: a burst of twice the rate, then the rate. */
  private readonly arrivals: RateLimiter;
  /** Accepted sockets by `${remoteAddress}:${remotePort}` (grpc-js's getPeer()), with strikes. */
  private readonly byPeer = new Map<string, { socket: net.Socket; strikes: number }>();
  private readonly sockets = new Set<net.Socket>();
  /**
   * Addresses in an abuse cool-down or remembered after one (for escalation): its end and its
   * length (ms); insertion-ordered, bounded.
   */
  private readonly cooldowns = new Map<string, { until: number; ms: number }>();
  private refusedLogged = 0;
  private tlsFailLogged = 0;
  private readonly tlsServer: tls.Server | null = null;
  /** Client certificates (DER) of open TLS connections, by grpc-js's `getPeer()` string. */
  private readonly peerCerts = new Map<string, Uint8Array>();

  /**
   * With `tlsOpts`, TLS is done here by node:tls (client certificate required) and grpc-js gets
   * the decrypted socket through insecure credentials; read the certificate with
   * `peerCertificate(call.getPeer())`.
   */
  constructor(
    server: grpc.Server,
    credentials: grpc.ServerCredentials,
    private readonly limits: ConnectionLimits,
    private readonly hooks: GatedListenerHooks,
    tlsOpts?: ListenerTls,
  ) {
    const rate = limits.newConnectionsPerSecondPerAddress ?? 20;
    this.arrivals = new RateLimiter({ perSecond: rate, burst: 2 * rate }, 10_000);
    this.injector = server.createConnectionInjector(credentials);
    this.tcp = net.createServer({ noDelay: true, pauseOnConnect: false }, (socket) => this.onSocket(socket));
    if (tlsOpts) {
      const ts = tls.createServer({
        cert: tlsOpts.cert,
        key: tlsOpts.key,
        // Certificates are self-signed and judged by their key (checkCertificate), not by a CA.
        // TLS 1.3 still verifies the client's CertificateVerify: it holds the certificate's key.
        requestCert: true,
        rejectUnauthorized: false,
        minVersion: "TLSv1.3",
        ALPNProtocols: ["h2"],
        handshakeTimeout: tlsOpts.handshakeTimeoutMs,
      });
      ts.on("secureConnection", (s: tls.TLSSocket) => {
        const key = `${s.remoteAddress}:${s.remotePort}`;
        const raw = s.getPeerCertificate()?.raw;
        const refusal = raw ? tlsOpts.checkCertificate(new Uint8Array(raw)) : "tls_no_certificate";
        if (refusal !== null) {
          this.refuseTls(tlsOpts, refusal, normalizeAddress(s.remoteAddress));
          s.destroy();
          return;
        }
        if (raw) this.peerCerts.set(key, new Uint8Array(raw));
        s.once("close", () => this.peerCerts.delete(key));
        s.on("error", () => {});
        this.injector.injectConnection(s);
      });
      ts.on("tlsClientError", (err: Error & { code?: string }, s: tls.TLSSocket) => {
        const addr = normalizeAddress(s.remoteAddress);
        const reason = err.code ?? err.message;
        tlsOpts.onFailure("tls_handshake_failed", addr);
        const now = Date.now();
        if (now - this.tlsFailLogged > 1_000) {
          this.tlsFailLogged = now;
          this.hooks.log.warn(
            { address: addr, reason: "tls_handshake_failed", tls: reason },
            "peer TLS refused",
          );
        }
      });
      this.tlsServer = ts;
    }
  }

  private refuseTls(tlsOpts: ListenerTls, reason: TlsRefusal, address: string): void {
    tlsOpts.onFailure(reason, address);
    // One line a second at most: a flood of refused certificates must not become a log flood.
    const now = Date.now();
    if (now - this.tlsFailLogged > 1_000) {
      this.tlsFailLogged = now;
      this.hooks.log.warn({ address, reason }, "peer TLS refused");
    }
  }

  /** The DER client certificate of a TLS connection, by grpc-js's `call.getPeer()`. */
  peerCertificate(peer: string): Uint8Array | undefined {
    return this.peerCerts.get(peer);
  }

  get open(): number {
    return this.sockets.size;
  }

  /** Binds host:port (0 = ephemeral); resolves with the bound port. */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.tcp.once("error", onError);
      this.tcp.listen({ host, port, exclusive: true }, () => {
        this.tcp.off("error", onError);
        this.tcp.on("error", (err) => this.hooks.log.warn({ err: err.message }, "listener error"));
        const a = this.tcp.address();
        resolve(typeof a === "object" && a ? a.port : port);
      });
    });
  }

  /**
   * Counts a refused call against its connection (by grpc-js's `call.getPeer()`); at
   * `maxStrikesPerConnection` the connection is closed, so an abuser cannot keep a slot and make
   * us refuse stream after stream on it.
   */
  strike(peer: string, weight = 1): void {
    const e = this.byPeer.get(peer);
    if (!e) return;
    e.strikes += weight;
    if (e.strikes >= (this.limits.maxStrikesPerConnection ?? 8)) {
      this.byPeer.delete(peer);
      const addr = normalizeAddress(e.socket.remoteAddress);
      this.hooks.onRefused?.("abusive_connection_closed", addr);
      e.socket.destroy();
      this.startCooldown(addr);
    }
  }

  private startCooldown(addr: string): void {
    const base = this.limits.abuseCooldownMs ?? 0;
    if (base <= 0) return;
    const max = Math.max(base, this.limits.abuseCooldownMaxMs ?? base);
    const now = this.now();
    const prior = this.cooldowns.get(addr);
    // Abuse again soon after the last cool-down: twice as long, up to max.
    const ms = prior !== undefined && now < prior.until + max ? Math.min(max, 2 * prior.ms) : base;
    this.cooldowns.delete(addr);
    if (this.cooldowns.size >= MAX_COOLDOWN_ADDRESSES)
      this.cooldowns.delete(this.cooldowns.keys().next().value!);
    this.cooldowns.set(addr, { until: now + ms, ms });
  }

  private now(): number {
    return this.hooks.now?.() ?? Date.now();
  }

  /** True while `addr` is in an abuse cool-down. */
  private cooling(addr: string, now: number): boolean {
    const c = this.cooldowns.get(addr);
    return c !== undefined && now < c.until;
  }

  /** Stops accepting new connections; open ones stay. */
  stopAccepting(): void {
    if (this.tcp.listening) this.tcp.close();
  }

  /** Stops accepting and closes every connection it let in. */
  close(): void {
    this.stopAccepting();
    this.injector.destroy();
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    this.peerCerts.clear();
    this.byPeer.clear();
    this.perAddress.clear();
    this.cooldowns.clear();
    this.hooks.onCount?.(0);
  }

  private onSocket(socket: net.Socket): void {
    const addr = normalizeAddress(socket.remoteAddress);
    const fromAddr = this.perAddress.get(addr) ?? 0;
    let refusal: ConnectionRefusal | null = null;
    const now = this.now();
    // Cheapest first: a map lookup refuses an address in cool-down before any count moves.
    if (this.cooling(addr, now)) refusal = "abuse_cooldown";
    else if (this.sockets.size >= this.limits.maxConnections) refusal = "max_connections";
    else if (fromAddr >= this.limits.maxConnectionsPerAddress) refusal = "max_connections_per_address";
    else if (!this.arrivals.take(addr, now)) refusal = "connection_rate";
    if (refusal !== null) {
      socket.destroy();
      this.hooks.onRefused?.(refusal, addr);
      // One line per burst is enough: a flood must not become a log flood.
      if (now - this.refusedLogged > 5_000) {
        this.refusedLogged = now;
        this.hooks.log.warn(
          { address: addr, reason: refusal, open: this.sockets.size, fromAddress: fromAddr },
          "connection refused",
        );
      }
      return;
    }
    this.sockets.add(socket);
    this.perAddress.set(addr, fromAddr + 1);
    const peerKey = `${socket.remoteAddress}:${socket.remotePort}`;
    this.byPeer.set(peerKey, { socket, strikes: 0 });
    this.hooks.onCount?.(this.sockets.size);
    socket.once("close", () => {
      this.byPeer.delete(peerKey);
      if (!this.sockets.delete(socket)) return;
      const left = (this.perAddress.get(addr) ?? 1) - 1;
      if (left <= 0) this.perAddress.delete(addr);
      else this.perAddress.set(addr, left);
      this.hooks.onCount?.(this.sockets.size);
    });
    socket.on("error", () => {});
    if (this.tlsServer) this.tlsServer.emit("connection", socket);
    else this.injector.injectConnection(socket);
  }
}
