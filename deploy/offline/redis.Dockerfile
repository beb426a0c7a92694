# Redis from Debian's packages, standing in for the official `redis:7` image on machines
# without an image registry (deploy/compose.offline.yml). It behaves like the official image
# where the stack relies on it: `redis-server` as the command, data in /data (the volume),
# reachable from the other containers (protected mode off, as in the official image).
ARG BASE_IMAGE=diandian/debian:bookworm
FROM ${BASE_IMAGE}
RUN export DEBIAN_FRONTEND=noninteractive \
 && apt-get update \
 && apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data && chown redis:redis /data
COPY redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
WORKDIR /data
USER redis
EXPOSE 6379
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
