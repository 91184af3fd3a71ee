// The process's last line of defence: an error that escaped every handler. Node's default for an
// unhandled rejection is to exit, and one such rejection reachable from a client request once let a
// single API call kill a validator. Here it is logged with its context and counted, and the node
// keeps running: every durable commitment (signing state, commit batch) is written before it is
// acted on, so an escaped error in a request or a timer leaves nothing unsafe behind. The exception
// is a storage failure: what is on disk may then be behind what the node believes, so the process
// exits and recovery rebuilds from disk on restart.
import type { Logger } from "pino";
import { StorageError } from "../storage/errors.js";
import { errorMessage } from "../types/errors.js";

export type EscapedKind = "unhandledRejection" | "uncaughtException";

export interface LastResortModules {
  log: Logger;
  count: (kind: EscapedKind) => void;
  /** Called for errors after which the process must not go on (default: exit 70). */
  exit?: (code: number) => void;
  /** Where the events come from (default: the process; tests pass an EventEmitter). */
  source?: Pick<NodeJS.EventEmitter, "on" | "off">;
}

/** Installs the process-wide handlers; the returned function removes them. */
export function installLastResort(mod: LastResortModules): () => void {
  const exit = mod.exit ?? ((code: number) => process.exit(code));
  const handle = (kind: EscapedKind) => (err: unknown) => {
    mod.count(kind);
    const stack = err instanceof Error ? err.stack : undefined;
    if (err instanceof StorageError) {
      mod.log.fatal({ kind, err: errorMessage(err), stack }, "storage failed outside any handler: exiting");
      mod.log.flush();
      exit(70);
      return;
    }
    mod.log.error({ kind, err: errorMessage(err), stack }, "error escaped every handler; node keeps running");
  };
  const onRejection = handle("unhandledRejection");
  const onException = handle("uncaughtException");
  const source = mod.source ?? process;
  source.on("unhandledRejection", onRejection);
  source.on("uncaughtException", onException);
  return () => {
    source.off("unhandledRejection", onRejection);
    source.off("uncaughtException", onException);
  };
}
