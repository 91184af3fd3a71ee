// Callers waiting for a keyed event (a tx committing, a receipt appearing) with a deadline and an
// abort signal. One waiter list per key; resolving wakes all of them.
import { ParabftError } from "../types/errors.js";

interface Waiter<T> {
  resolve(value: T): void;
  reject(err: Error): void;
  cleanup(): void;
}

export class Waiters<T> {
  private readonly byKey = new Map<string, Set<Waiter<T>>>();

  get size(): number {
    return this.byKey.size;
  }

  /**
   * Waits for `key`; with `find`, meanwhile looks it up in storage: the waiter is registered first, so an
   * event that lands during the lookup is not missed, and the lookup runs inside the same promise,
   * so a deadline that fires while it is in flight settles that one promise (which the caller
   * awaits) and never leaves a rejection without a handler. Such a dangling rejection once killed
   * the process: a committed tx, timeout_ms = 1 and a RocksDB read slower than 1 ms.
   */
  wait(
    key: string,
    timeoutMs: number,
    signal?: AbortSignal,
    find?: () => Promise<T | null | undefined>,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let set = this.byKey.get(key);
      if (!set) {
        set = new Set();
        this.byKey.set(key, set);
      }
      const list = set;
      const onAbort = () => {
        waiter.cleanup();
        reject(new ParabftError("CANCELLED", {}, "wait cancelled"));
      };
      const timer = setTimeout(() => {
        waiter.cleanup();
        reject(new ParabftError("TIMEOUT", {}, `not done within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter: Waiter<T> = {
        resolve,
        reject,
        cleanup: () => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          list.delete(waiter);
          if (list.size === 0 && this.byKey.get(key) === list) this.byKey.delete(key);
        },
      };
      list.add(waiter);
      if (signal?.aborted) {
        onAbort();
        return;
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      // A settled promise ignores later calls, so a lookup that lands after the deadline is a no-op.
      find?.().then(
        (found) => {
          if (found === null || found === undefined) return;
          waiter.cleanup();
          resolve(found);
        },
        (err: unknown) => {
          waiter.cleanup();
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  resolve(key: string, value: T): void {
    const set = this.byKey.get(key);
    if (!set) return;
    for (const w of [...set]) {
      w.cleanup();
      w.resolve(value);
    }
  }

  rejectAll(err: Error): void {
    for (const set of [...this.byKey.values()]) {
      for (const w of [...set]) {
        w.cleanup();
        w.reject(err);
      }
    }
  }
}
