DELETE FROM plystra.login_failures
WHERE window_started_at + make_interval(secs => $1) < now() AND (locked_until IS NULL OR locked_until < now())
