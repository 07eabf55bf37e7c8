SELECT user_member_id, member_id, user_id, grants FROM plystra.lookup_subjects($1, $2, $3, $4, $5)
