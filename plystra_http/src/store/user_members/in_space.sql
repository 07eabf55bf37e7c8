SELECT user_id, member_id FROM plystra.user_members WHERE id = $1 AND space_id = $2 AND deleted_at IS NULL
