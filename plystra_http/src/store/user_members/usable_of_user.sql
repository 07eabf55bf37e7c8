SELECT um.id, um.user_id, u.email, um.member_id, m.display_name, um.space_id, s.name, um.relation_type, um.is_primary
FROM plystra.usable_bindings um
JOIN plystra.users u ON u.id = um.user_id
JOIN plystra.members m ON m.id = um.member_id
JOIN plystra.spaces s ON s.id = um.space_id
WHERE um.user_id = $1
ORDER BY um.is_primary DESC, s.name, m.display_name, um.id
