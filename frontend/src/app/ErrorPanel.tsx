interface Props {
  title: string;
  message: string;
  hint?: string;
  onRetry?: () => void;
}

export function ErrorPanel({ title, message, hint, onRetry }: Props) {
  return (
    <div className="error-panel" role="alert" data-testid="error-panel">
      <strong>{title}</strong>
      <p className="mono">{message}</p>
      {hint && <p className="muted">{hint}</p>}
      {onRetry && (
        <button type="button" onClick={onRetry}>
          Retry
        </button>
      )}
    </div>
  );
}
