-- Sets psql's :conninfo to a connection string for this database as this user over the server's own socket, for
-- dblink sessions (a second backend: a service's connection). Include with \ir helpers/conninfo.sql.
SELECT format('host=%s port=%s dbname=%s user=%s',
    split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_database(),
    current_user) AS conninfo \gset
