SELECT t.*, u.email AS email, m.display_name AS member_display_name
FROM plystra.user_members t
LEFT JOIN plystra.users u ON u.id = t.user_id
LEFT JOIN plystra.members m ON m.id = t.member_id
