SELECT t.*, s.name AS space_name, g.path AS group_path, m.display_name AS owner_member_display_name
FROM plystra.resources t
LEFT JOIN plystra.spaces s ON s.id = t.space_id
LEFT JOIN plystra.groups g ON g.id = t.group_id
LEFT JOIN plystra.members m ON m.id = t.owner_member_id
