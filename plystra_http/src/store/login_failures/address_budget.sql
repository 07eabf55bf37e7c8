SELECT failure_count, ceil(extract(epoch FROM window_started_at + make_interval(secs => $2) - now()))::bigint
FROM plystra.login_failures WHERE email_key = $1 AND window_started_at + make_interval(secs => $2) > now()
