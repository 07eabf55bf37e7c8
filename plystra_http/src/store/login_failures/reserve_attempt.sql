INSERT INTO plystra.login_failures AS f (email_key, failure_count, window_started_at, locked_until, updated_at)
VALUES (lower($1), 1, now(), CASE WHEN 1 >= $2 THEN now() + make_interval(secs => $4) END, now())
ON CONFLICT (email_key) DO UPDATE SET
  failure_count = (CASE WHEN (f.window_started_at + make_interval(secs => $3) < now() OR (f.locked_until IS NOT NULL AND f.locked_until <= now())) THEN 1 WHEN (NOT (f.window_started_at + make_interval(secs => $3) < now() OR (f.locked_until IS NOT NULL AND f.locked_until <= now())) AND f.locked_until > now()) THEN $2 + 1 ELSE LEAST(f.failure_count + 1, $2 + 1) END),
  window_started_at = CASE WHEN (f.window_started_at + make_interval(secs => $3) < now() OR (f.locked_until IS NOT NULL AND f.locked_until <= now())) THEN now() ELSE f.window_started_at END,
  locked_until = CASE WHEN (NOT (f.window_started_at + make_interval(secs => $3) < now() OR (f.locked_until IS NOT NULL AND f.locked_until <= now())) AND f.locked_until > now()) THEN f.locked_until
                      WHEN (CASE WHEN (f.window_started_at + make_interval(secs => $3) < now() OR (f.locked_until IS NOT NULL AND f.locked_until <= now())) THEN 1 WHEN (NOT (f.window_started_at + make_interval(secs => $3) < now() OR (f.locked_until IS NOT NULL AND f.locked_until <= now())) AND f.locked_until > now()) THEN $2 + 1 ELSE LEAST(f.failure_count + 1, $2 + 1) END) >= $2 THEN now() + make_interval(secs => $4) END,
  updated_at = now()
RETURNING email_key, failure_count, ceil(extract(epoch FROM locked_until - now()))::bigint, xmax::text = '0'
