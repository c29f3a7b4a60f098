import { useEffect, useRef } from 'react';

/**
 * Runs `effect` `delayMs` after the last change of `key`; an answer that arrives after a newer
 * run started is dropped (`isCurrent()` tells the effect whether it is still the latest).
 */
export function useDebouncedEffect(
  effect: (isCurrent: () => boolean) => void | Promise<void>,
  key: string,
  delayMs: number,
  enabled = true
) {
  const latest = useRef(effect);
  latest.current = effect;
  const seq = useRef(0);
  useEffect(() => {
    if (!enabled) {
      return;
    }
    const mine = ++seq.current;
    const t = setTimeout(() => {
      void latest.current(() => seq.current === mine);
    }, delayMs);
    return () => clearTimeout(t);
  }, [key, delayMs, enabled]);
}
