import type { ReactNode } from "react";

/** A scrolling box keyboard users can reach and scroll (a tab stop, named for screen readers). */
export function ScrollRegion({ label, className = "scroll", children }: { label: string; className?: string; children: ReactNode }) {
  return (
    <div className={className} role="region" aria-label={label} tabIndex={0}>
      {children}
    </div>
  );
}
