import { useCallback, useSyncExternalStore } from "react";
import type { KeyedSignal, Signal } from "./signal";

/** Re-render when `signal` flushes (at most once per frame). Returns its version. */
export function useSignal(signal: Signal): number {
  return useSyncExternalStore(signal.subscribe, signal.getVersion);
}

/** Re-render when `key` of `signal` flushes. */
export function useKeyedSignal(signal: KeyedSignal, key: string): number {
  const subscribe = useCallback((listener: () => void) => signal.subscribe(key, listener), [signal, key]);
  const getVersion = useCallback(() => signal.getVersion(key), [signal, key]);
  return useSyncExternalStore(subscribe, getVersion);
}
