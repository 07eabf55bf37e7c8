SELECT um.id, um.user_id, um.member_id, um.space_id
FROM plystra.usable_bindings um
WHERE ($1::text IS NULL OR um.id = $1) AND ($2::text IS NULL OR um.user_id = $2)
  AND ($3::text IS NULL OR um.member_id = $3) AND ($4::text IS NULL OR um.space_id = $4)
  AND ($5::text IS NULL OR um.user_id = $5) AND ($6::text IS NULL OR um.space_id = $6)
ORDER BY um.id LIMIT 2
