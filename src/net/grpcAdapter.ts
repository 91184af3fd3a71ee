// protoc-gen-es emits messages and service descriptors but no grpc-js stubs, so this maps a
// generated GenService onto a grpc-js ServiceDefinition. One adapter, used by the peer
// transport, the public API server and the client SDK's node transport.
import {
  type DescMessage,
  type DescService,
  fromBinary,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import type { MethodDefinition, ServiceDefinition } from "@grpc/grpc-js";

function messageCodec<S extends DescMessage>(schema: S) {
  return {
    serialize: (msg: MessageShape<S>) => Buffer.from(toBinary(schema, msg)),
    deserialize: (bytes: Buffer) => fromBinary(schema, bytes),
  };
}

/** grpc-js method path, e.g. "/parabft.v1.ApiService/SubmitTx". */
export function methodPath(service: DescService, methodName: string): string {
  return `/${service.typeName}/${methodName}`;
}

export interface AdapterOpts {
  /**
   * Pass raw bytes through instead of decoding: for streams whose payload must be checked by
   * the receiver's own verdict code (a decode failure inside grpc-js would tear the stream down
   * instead of penalising the peer with a reason).
   */
  raw?: boolean;
}

/** A grpc-js ServiceDefinition keyed by each method's localName (e.g. `submitTx`). */
export function grpcServiceDefinition(service: DescService, opts: AdapterOpts = {}): ServiceDefinition {
  const def: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    const input = opts.raw ? rawCodec : messageCodec(method.input);
    const output = opts.raw ? rawCodec : messageCodec(method.output);
    def[method.localName] = {
      path: methodPath(service, method.name),
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: input.serialize as (v: unknown) => Buffer,
      requestDeserialize: input.deserialize,
      responseSerialize: output.serialize as (v: unknown) => Buffer,
      responseDeserialize: output.deserialize,
      originalName: method.localName,
    };
  }
  return def as ServiceDefinition;
}

const rawCodec = {
  serialize: (bytes: Uint8Array) =>
    Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length),
  deserialize: (bytes: Buffer) => new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length),
};
