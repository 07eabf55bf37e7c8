UPDATE plystra.sessions SET active_space_id = $2, active_member_id = $3, active_user_member_id = $4
WHERE id = $1
