-- Self-conflicting, and only roles that may change admin_grants (the REST front's, the owner) may take it. The
-- advisory lock used before could be taken, and held, by any role that can connect: every revocation waited for it.
LOCK TABLE plystra.admin_grants IN SHARE ROW EXCLUSIVE MODE
