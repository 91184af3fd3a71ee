// A minimal grpc-js client for the API tests, through the same adapter the SDK uses.

import { createRequire } from "node:module";
import path from "node:path";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { ApiService } from "../../../src/gen/parabft/v1/api_pb.js";
import { grpcServiceDefinition } from "../../../src/net/grpcAdapter.js";

// biome-ignore lint/suspicious/noExplicitAny: generic grpc-js client methods are untyped
type AnyClient = grpc.Client & Record<string, any>;

/**
 * `ownConnection`: a connection of its own (grpc-js otherwise shares one between clients of the
 * same target in a process), for tests where the server closes one client's connection.
 */
export function apiClient(port: number, ownConnection = false): AnyClient {
  const Ctor = grpc.makeGenericClientConstructor(grpcServiceDefinition(ApiService), "ApiService");
  const opts = ownConnection ? { "grpc.use_local_subchannel_pool": 1 } : {};
  return new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), opts) as AnyClient;
}

/** Builds the request message from a plain init object, as protobuf-es needs for encoding. */
export function request(method: string, init: unknown) {
  const m = ApiService.methods.find((x) => x.localName === method);
  if (!m) throw new Error(`no method ${method}`);
  return create(m.input, init as MessageInitShape<typeof m.input>);
}

export function call<Res>(
  client: AnyClient,
  method: string,
  req: unknown,
  deadlineMs = 10_000,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    client[method](
      request(method, req),
      { deadline: Date.now() + deadlineMs },
      (err: grpc.ServiceError | null, res: Res) => (err ? reject(err) : resolve(res)),
    );
  });
}

/** Resolves with the error a call fails with; fails the test if it succeeds. */
export async function callError(client: AnyClient, method: string, req: unknown): Promise<grpc.ServiceError> {
  try {
    await call(client, method, req);
  } catch (err) {
    return err as grpc.ServiceError;
  }
  throw new Error(`${method} unexpectedly succeeded`);
}

const loadOpts = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

export function healthClient(port: number): AnyClient {
  const def = grpc.loadPackageDefinition(protoLoader.loadSync(healthProtoPath, loadOpts));
  // biome-ignore lint/suspicious/noExplicitAny: dynamic package object
  const Health = (def as any).grpc.health.v1.Health as grpc.ServiceClientConstructor;
  return new Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as AnyClient;
}

export function reflectionClient(port: number): AnyClient {
  const require = createRequire(import.meta.url);
  const pkgDir = path.dirname(require.resolve("@grpc/reflection/package.json"));
  const file = path.join(pkgDir, "build/proto/grpc/reflection/v1/reflection.proto");
  const def = grpc.loadPackageDefinition(protoLoader.loadSync(file, loadOpts));
  // biome-ignore lint/suspicious/noExplicitAny: dynamic package object
  const Reflection = (def as any).grpc.reflection.v1.ServerReflection as grpc.ServiceClientConstructor;
  return new Reflection(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as AnyClient;
}

/** Polls `check` until it returns true or `timeoutMs` passes (bounded wait, no timing asserts). */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error("condition not reached in time");
}
