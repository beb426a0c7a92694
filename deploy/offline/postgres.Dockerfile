# PostgreSQL 15 from Debian's packages, standing in for the official `postgres:16` image on
# machines without an image registry (deploy/compose.offline.yml). The entrypoint does what
# the official one does for this stack: on an empty data volume it initialises the cluster
# with POSTGRES_USER / POSTGRES_PASSWORD (password auth over TCP), creates POSTGRES_DB and
# runs /docker-entrypoint-initdb.d/*.sql and *.sh once; then it runs `postgres` with the
# given options.
ARG BASE_IMAGE=diandian/debian:bookworm
FROM ${BASE_IMAGE}
RUN export DEBIAN_FRONTEND=noninteractive \
 && apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 # The package's own cluster is not used: the entrypoint initialises one in the volume.
 && rm -rf /var/lib/postgresql/15 /etc/postgresql/15 \
 && mkdir -p /var/lib/postgresql/data /var/run/postgresql /docker-entrypoint-initdb.d \
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \
 && chmod 700 /var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
USER postgres
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
