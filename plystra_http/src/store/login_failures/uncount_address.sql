UPDATE plystra.login_failures
SET failure_count = greatest(failure_count - 1, 0), updated_at = now()
WHERE email_key = $1 AND window_started_at + make_interval(secs => $2) > now() AND failure_count > 0
