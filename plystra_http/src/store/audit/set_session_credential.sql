SELECT plystra.set_credential('session', $1, $2, NULL, false)
