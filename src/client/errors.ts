import { ParabftError } from "../types/errors.js";

export type ClientErrorCode =
  | "BAD_KEY"
  | "BAD_TX"
  | "BAD_ARGUMENT"
  /** A remote call failed; RpcError carries the gRPC status. */
  | "RPC";

/** SDK-side failures (bad input, bad key material) as typed errors. */
export class ClientError<D extends object = object> extends ParabftError<ClientErrorCode, D> {
  constructor(code: ClientErrorCode, detail: D, message?: string) {
    super(code, detail, message);
    this.name = "ClientError";
  }
}

/**
 * gRPC status codes by number, written out here so the node-free core can name a status
 * without importing grpc-js.
 */
export const GRPC_STATUS_NAMES = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
] as const;
export type GrpcStatusName = (typeof GRPC_STATUS_NAMES)[number];

export interface RpcErrorDetail {
  /** Numeric gRPC status code. */
  status: number;
  statusName: GrpcStatusName | "UNKNOWN";
  /** The API method that failed, e.g. "submitTx". */
  method: string;
}

/**
 * A failed API call: the server's status code and its readable message. Stackless: it is built in
 * a grpc-js callback (a stack would show grpc-js, not the caller), and a refused batch answers with
 * one per transaction (a 2× saturation load: ~1,700 a second, ~2 % of the bench client's thread).
 */
export class RpcError extends ClientError<RpcErrorDetail> {
  static override readonly stackless: boolean = true;
  constructor(status: number, method: string, message: string) {
    const statusName = GRPC_STATUS_NAMES[status] ?? "UNKNOWN";
    super("RPC", { status, statusName, method }, `${method}: ${statusName}: ${message}`);
    this.name = "RpcError";
    this.serverMessage = message;
  }
  /** The server's message without the method/status prefix. */
  readonly serverMessage: string;

  get status(): number {
    return this.detail.status;
  }
  get statusName(): string {
    return this.detail.statusName;
  }
}
