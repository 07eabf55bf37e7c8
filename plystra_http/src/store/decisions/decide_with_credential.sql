SELECT plystra.decide_with_credential($1, $2, $3, $4, $5)
