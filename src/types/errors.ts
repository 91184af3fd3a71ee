/**
 * Typed error with a stable code, in the style of Lodestar's LodestarError. Layers define
 * their own code unions; the API maps codes to gRPC status codes in one table.
 */
export class ParabftError<C extends string = string, D extends object = object> extends Error {
  constructor(
    readonly code: C,
    readonly detail: D = {} as D,
    message?: string,
  ) {
    super(message ?? code);
    this.name = "ParabftError";
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
