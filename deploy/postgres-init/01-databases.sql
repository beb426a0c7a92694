-- One database per service (SPEC §2), created the first time the PostgreSQL volume is
-- initialised. Each service's DATABASE_URL in docker-compose.yml names its own database;
-- each service's migrations create its tables there.
CREATE DATABASE calculator;
CREATE DATABASE orders;
CREATE DATABASE certificates;
CREATE DATABASE ranking;
-- The gateway's own: operator API keys (hashes only).
CREATE DATABASE gateway;
