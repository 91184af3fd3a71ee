// Messages between the verify pool and its workers. Kept apart from verifyWorker.ts so that
// importing the types does not run the worker's side effects on the main thread.
export interface VerifyRequest {
  id: number;
  batch: ArrayBuffer;
}

export interface VerifyResponse {
  id: number;
  results: ArrayBuffer;
}

/** Posted once by a worker after its handler is installed. */
export const WORKER_READY = "ready";
