INSERT INTO plystra.login_failures AS f (email_key, failure_count, window_started_at, updated_at)
VALUES ($1, 1, now(), now())
ON CONFLICT (email_key) DO UPDATE SET
  failure_count = CASE WHEN (f.window_started_at + make_interval(secs => $2) < now() OR (f.locked_until IS NOT NULL AND f.locked_until <= now())) THEN 1 ELSE LEAST(f.failure_count + 1, 1000000000) END,
  window_started_at = CASE WHEN (f.window_started_at + make_interval(secs => $2) < now() OR (f.locked_until IS NOT NULL AND f.locked_until <= now())) THEN now() ELSE f.window_started_at END,
  locked_until = NULL, updated_at = now()
