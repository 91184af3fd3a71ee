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

  wait(key: string, timeoutMs: number, signal?: AbortSignal): Promise<T> {
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
      if (signal?.aborted) onAbort();
      else signal?.addEventListener("abort", onAbort, { once: true });
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
