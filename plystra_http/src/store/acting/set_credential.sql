SELECT plystra.set_credential($1, $2, $3, $4, $5)
