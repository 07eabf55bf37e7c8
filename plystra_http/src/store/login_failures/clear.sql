DELETE FROM plystra.login_failures WHERE email_key = $1
