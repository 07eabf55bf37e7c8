SELECT t.*, m.display_name AS member_display_name, r.key AS role_key, r.name AS role_name, g.path AS scope_anchor_path
FROM plystra.member_roles t
LEFT JOIN plystra.members m ON m.id = t.member_id
LEFT JOIN plystra.roles r ON r.id = t.role_id
LEFT JOIN plystra.groups g ON g.id = t.scope_anchor_group_id
