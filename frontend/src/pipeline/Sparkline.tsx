import { sparklinePath, sparklineScale, type Point } from "./sparkline";

interface Props {
  points: readonly Point[];
  width?: number;
  height?: number;
  label: string;
  className?: string;
}

export function Sparkline({ points, width = 480, height = 80, label, className }: Props) {
  const scale = sparklineScale(points);
  const path = sparklinePath(points, width, height, scale);
  return (
    <svg
      className={`sparkline ${className ?? ""}`}
      viewBox={`0 0 ${width} ${height}`}
      preserveAspectRatio="none"
      role="img"
      aria-label={label}
    >
      <path d={path} vectorEffect="non-scaling-stroke" />
      <text x={4} y={12} className="spark-max">
        {Math.round(scale.maxY).toLocaleString("en-US")}
      </text>
    </svg>
  );
}
