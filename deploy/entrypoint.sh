#!/bin/sh
# The image's entry point: run the command given ("varco serve", ...) with the database
# password read from a file, as the official images' *_FILE variables do, so it never sits in
# the environment of docker-compose.yml or `docker inspect`: PGPASSWORD_FILE names the file
# (a Docker secret), libpq takes PGPASSWORD and DATABASE_URL carries no password.
set -eu
if [ -n "${PGPASSWORD_FILE:-}" ]; then
    PGPASSWORD="$(cat "$PGPASSWORD_FILE")"
    export PGPASSWORD
    unset PGPASSWORD_FILE
fi
exec "$@"
