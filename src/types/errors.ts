/**
 * Typed error with a stable code, in the style of Lodestar's LodestarError. Layers define
 * their own code unions; the API maps codes to gRPC status codes in one table.
 */
export class ParabftError<C extends string = string, D extends object = object> extends Error {
  /**
   * Set on subclasses whose errors are answers to a client (a refused transaction, a rate limit),
   * not bugs: they carry no stack trace. A flood is answered with thousands of them, and capturing
   * a stack was a large part of the cost of refusing one (issue 10's profiles).
   */
  static readonly stackless: boolean = false;
  readonly code: C;
  readonly detail: D;

  constructor(code: C, detail: D = {} as D, message?: string) {
    const limit = Error.stackTraceLimit;
    if (new.target.stackless) Error.stackTraceLimit = 0;
    try {
      super(message ?? code);
    } finally {
      Error.stackTraceLimit = limit;
    }
    this.code = code;
    this.detail = detail;
    this.name = "ParabftError";
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
