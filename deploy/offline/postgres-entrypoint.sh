#!/bin/bash
# The official postgres image's first-run behaviour, for Debian's PostgreSQL (see
# postgres.Dockerfile). Runs as the postgres user.
set -euo pipefail

if [ "${1:-}" != postgres ]; then
    exec "$@"
fi
shift

: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "POSTGRES_PASSWORD must be set" >&2
    exit 1
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pwfile="$(mktemp)"
    printf '%s' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust \
        --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 -D "$PGDATA" >/dev/null
    rm -f "$pwfile"
    # Other containers connect over the network, with the password.
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"

    # A temporary server on the Unix socket only, so nobody connects before init is done
    # (the compose healthcheck asks over TCP).
    pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -k /var/run/postgresql" start >/dev/null
    psql=(psql -v ON_ERROR_STOP=1 --no-psqlrc -h /var/run/postgresql -U "$POSTGRES_USER")
    if [ "$POSTGRES_DB" != postgres ]; then
        "${psql[@]}" -d postgres -c "CREATE DATABASE \"$POSTGRES_DB\"" >/dev/null
    fi
    for init in /docker-entrypoint-initdb.d/*; do
        case "$init" in
            *.sql) echo "[postgres-init] $init"; "${psql[@]}" -d "$POSTGRES_DB" -f "$init" >/dev/null ;;
            *.sh)  echo "[postgres-init] $init"; . "$init" ;;
            *)     if [ -e "$init" ]; then echo "[postgres-init] ignoring $init"; fi ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi

exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
