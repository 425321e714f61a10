// An SVG path for a small time series; null values break the line.

export type Point = readonly [number, number | null];

export interface SparklineScale {
  minY: number;
  maxY: number;
}

export function sparklineScale(points: readonly Point[], floorZero = true): SparklineScale {
  let minY = Infinity;
  let maxY = -Infinity;
  for (const [, y] of points) {
    if (y === null || !Number.isFinite(y)) continue;
    minY = Math.min(minY, y);
    maxY = Math.max(maxY, y);
  }
  if (minY === Infinity) return { minY: 0, maxY: 1 };
  if (floorZero) minY = Math.min(0, minY);
  if (maxY === minY) maxY = minY + 1;
  return { minY, maxY };
}

/** `M x y L x y ...` in a width x height box (y grows downwards), one `M` per unbroken run. */
export function sparklinePath(points: readonly Point[], width: number, height: number, scale = sparklineScale(points)): string {
  if (points.length === 0) return "";
  const first = points[0]![0];
  const last = points[points.length - 1]![0];
  const spanX = last - first || 1;
  const spanY = scale.maxY - scale.minY || 1;
  const parts: string[] = [];
  let drawing = false;
  for (const [x, y] of points) {
    if (y === null || !Number.isFinite(y)) {
      drawing = false;
      continue;
    }
    const px = points.length === 1 ? width / 2 : ((x - first) / spanX) * width;
    const py = height - ((y - scale.minY) / spanY) * height;
    parts.push(`${drawing ? "L" : "M"}${px.toFixed(1)} ${py.toFixed(1)}`);
    drawing = true;
  }
  return parts.join(" ");
}
