#!/usr/bin/env bash
# Real service images from Debian's packages, tagged with the names the Compose files of the
# tests use (no image can be pulled here). Built once per machine: an image whose tag exists is
# skipped (REBUILD=1 builds again). `.ci/run` calls this before the tests.
#
# The base is `debootstrap --variant=minbase bookworm` imported as benchctl-test/debian:bookworm;
# each image installs its Debian package in a build step (Debian's mirror is reachable there)
# and an entrypoint that honours the part of the official image's contract the tests rely on,
# from each official image's documentation (hub.docker.com/_/<name>, "Environment Variables"
# and "Initializing a fresh instance"):
#   postgres (PostgreSQL 15): POSTGRES_PASSWORD (required unless POSTGRES_HOST_AUTH_METHOD=trust),
#     POSTGRES_USER (default postgres), POSTGRES_DB (default the user), each also as *_FILE;
#     PGDATA=/var/lib/postgresql/data; /docker-entrypoint-initdb.d/*.sql and *.sh run once, on
#     an empty data directory; `postgres` listens on every address with password
#     authentication; runs as the postgres user (also under `user: postgres`); pg_isready.
#   mariadb (MariaDB 10.11): MYSQL_ROOT_PASSWORD / MARIADB_ROOT_PASSWORD, MYSQL_DATABASE,
#     MYSQL_USER and MYSQL_PASSWORD (and the MARIADB_ names), each also as *_FILE; datadir
#     /var/lib/mysql; /docker-entrypoint-initdb.d/*.sql and *.sh once; arguments starting with
#     `-` go to mysqld (as `command: --default-authentication-plugin=...` in the samples);
#     mysqladmin for the samples' health checks.
#   redis (Redis 7): `redis-server` in the foreground, listening on every address, no
#     protected mode (the official image's default configuration).
#   nginx (nginx 1.22): `nginx -g 'daemon off;'`, configuration in /etc/nginx/conf.d/*.conf,
#     envsubst (gettext-base) as the official image ships it.
#   python (Python 3.11): python3 as `python`/`python3`, pip (`pip install` from PyPI).
#   wordpress: WordPress 6.1 on Apache and PHP on port 80, WORDPRESS_DB_HOST, _USER, _PASSWORD,
#     _NAME (and *_FILE) written into its configuration at start.
set -euo pipefail

BASE=benchctl-test/debian:bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
have() { [ "${REBUILD:-}" != 1 ] && docker image inspect "$1" >/dev/null 2>&1; }

if ! have "$BASE"; then
  command -v debootstrap >/dev/null || as_root apt-get install -y -q debootstrap
  root=$(mktemp -d)
  echo "images: debootstrap bookworm into $root"
  as_root debootstrap --variant=minbase bookworm "$root" "$MIRROR" >/dev/null
  as_root tar -C "$root" -c . | docker import - "$BASE" >/dev/null
  as_root rm -rf "$root"
fi

# build TAG... : the Dockerfile and files of the context are in the directory "$ctx"
build() {
  local first=$1
  shift
  docker build -q -t "$first" "$ctx" >/dev/null
  for t in "$@"; do docker tag "$first" "$t"; done
  echo "images: built $first${*:+ (also $*)}"
}

# a context directory with a Dockerfile on the base (from standard input), and the `file_env`
# the entrypoints share: VAR from VAR_FILE's content when that is set, as the official images do
context() {
  ctx=$(mktemp -d)
  cat > "$ctx/Dockerfile"
  cat > "$ctx/file_env.sh" <<'EOF'
file_env() {
  eval "_v=\${$1:-}; _f=\${$1_FILE:-}"
  if [ -n "$_f" ]; then _v=$(cat "$_f"); fi
  export "$1=$_v"
}
EOF
}

# --- postgres ---------------------------------------------------------------------------------
if ! have postgres:15-bookworm; then
  context <<EOF
FROM $BASE
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      postgresql-15 postgresql-client-15 util-linux && rm -rf /var/lib/apt/lists/* \
 && rm -rf /var/lib/postgresql/15 /etc/postgresql \
 && mkdir -p /var/lib/postgresql/data /var/run/postgresql /docker-entrypoint-initdb.d \
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql && chmod 700 /var/lib/postgresql/data
ENV PATH=/usr/lib/postgresql/15/bin:\$PATH PGDATA=/var/lib/postgresql/data
COPY file_env.sh /usr/local/lib/
COPY docker-entrypoint.sh /usr/local/bin/
ENTRYPOINT ["docker-entrypoint.sh"]
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
EOF
  cat > "$ctx/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
# The official postgres image's contract (see tests/images.sh).
set -e
. /usr/local/lib/file_env.sh
if [ "${1#-}" != "$1" ]; then set -- postgres "$@"; fi
if [ "$1" != postgres ]; then exec "$@"; fi
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
file_env POSTGRES_PASSWORD
file_env POSTGRES_USER
file_env POSTGRES_DB
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "$POSTGRES_PASSWORD" ] && [ "${POSTGRES_HOST_AUTH_METHOD:-}" != trust ]; then
    echo "Error: Database is uninitialized and superuser password is not specified." >&2
    echo "       Set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE)." >&2
    exit 1
  fi
  pw=$(mktemp)
  printf '%s' "$POSTGRES_PASSWORD" > "$pw"
  initdb -D "$PGDATA" --username="$POSTGRES_USER" --pwfile="$pw" --auth-local=trust >/dev/null
  rm -f "$pw"
  echo "host all all all ${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" >> "$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  if [ "$POSTGRES_DB" != postgres ]; then
    psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres -q \
      -c "CREATE DATABASE \"$POSTGRES_DB\""
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh) echo "running $f"; . "$f" ;;
      *.sql) echo "running $f"; psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -q -f "$f" ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  echo "PostgreSQL init process complete; ready for start up."
fi
exec "$@" -c listen_addresses='*'
EOF
  chmod +x "$ctx/docker-entrypoint.sh"
  build postgres:15-bookworm postgres:latest postgres:alpine postgres:12-alpine postgres
fi

# --- mariadb ----------------------------------------------------------------------------------
if ! have mariadb:10.11-bookworm; then
  context <<EOF
FROM $BASE
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      mariadb-server mariadb-client util-linux && rm -rf /var/lib/apt/lists/* \
 && rm -rf /var/lib/mysql && mkdir -p /var/lib/mysql /run/mysqld /docker-entrypoint-initdb.d \
 && chown -R mysql:mysql /var/lib/mysql /run/mysqld \
 && printf '[mysqld]\nbind-address=0.0.0.0\nskip-name-resolve\n' > /etc/mysql/mariadb.conf.d/90-docker.cnf
COPY file_env.sh /usr/local/lib/
COPY docker-entrypoint.sh /usr/local/bin/
ENTRYPOINT ["docker-entrypoint.sh"]
EXPOSE 3306
CMD ["mariadbd"]
EOF
  cat > "$ctx/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
# The official mariadb image's contract (see tests/images.sh).
set -e
. /usr/local/lib/file_env.sh
if [ "${1#-}" != "$1" ]; then set -- mariadbd "$@"; fi
case "$1" in mariadbd|mysqld) ;; *) exec "$@" ;; esac
if [ "$(id -u)" = 0 ]; then
  mkdir -p /var/lib/mysql /run/mysqld
  chown -R mysql:mysql /var/lib/mysql /run/mysqld
  exec setpriv --reuid=mysql --regid=mysql --init-groups "$0" "$@"
fi
for name in ROOT_PASSWORD DATABASE USER PASSWORD; do
  file_env "MYSQL_$name"
  file_env "MARIADB_$name"
  eval "[ -n \"\$MARIADB_$name\" ] || MARIADB_$name=\$MYSQL_$name"
done
shift
# MySQL options MariaDB does not have (the samples pass MySQL 8's) are taken as `loose`
args=""
for a in "$@"; do
  case "$a" in --default-authentication-plugin=*) a="--loose-${a#--}" ;; esac
  args="$args $a"
done
if [ ! -d /var/lib/mysql/mysql ]; then
  if [ -z "$MARIADB_ROOT_PASSWORD" ] && [ -z "${MARIADB_ALLOW_EMPTY_ROOT_PASSWORD:-${MYSQL_ALLOW_EMPTY_PASSWORD:-}}" ]; then
    echo "error: database is uninitialized and password option is not specified" >&2
    echo "  You need to specify one of MARIADB_ROOT_PASSWORD, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD" >&2
    exit 1
  fi
  mariadb-install-db --datadir=/var/lib/mysql --auth-root-authentication-method=normal \
    --skip-test-db >/dev/null
  mariadbd --skip-networking --socket=/run/mysqld/init.sock &
  pid=$!
  for _ in $(seq 1 60); do
    mariadb --socket=/run/mysqld/init.sock -uroot -e 'SELECT 1' >/dev/null 2>&1 && break
    sleep 1
  done
  sql() { mariadb --socket=/run/mysqld/init.sock -uroot "$@"; }
  {
    echo "DELETE FROM mysql.user WHERE user='';"
    echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$MARIADB_ROOT_PASSWORD';"
    echo "CREATE USER 'root'@'%' IDENTIFIED BY '$MARIADB_ROOT_PASSWORD';"
    echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    if [ -n "$MARIADB_DATABASE" ]; then echo "CREATE DATABASE IF NOT EXISTS \`$MARIADB_DATABASE\`;"; fi
    if [ -n "$MARIADB_USER" ] && [ -n "$MARIADB_PASSWORD" ]; then
      echo "CREATE USER '$MARIADB_USER'@'%' IDENTIFIED BY '$MARIADB_PASSWORD';"
      if [ -n "$MARIADB_DATABASE" ]; then echo "GRANT ALL ON \`$MARIADB_DATABASE\`.* TO '$MARIADB_USER'@'%';"; fi
    fi
    echo "FLUSH PRIVILEGES;"
  } | sql
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh) echo "running $f"; . "$f" ;;
      *.sql) echo "running $f"; sql -p"$MARIADB_ROOT_PASSWORD" ${MARIADB_DATABASE:+"$MARIADB_DATABASE"} < "$f" ;;
    esac
  done
  kill "$pid"
  wait "$pid" || true
  echo "MariaDB init process done. Ready for start up."
fi
# shellcheck disable=SC2086
exec mariadbd $args
EOF
  chmod +x "$ctx/docker-entrypoint.sh"
  build mariadb:10.11-bookworm mariadb:10-focal mariadb:10.6.4-focal mariadb:10.5 mariadb:10.9 mariadb
fi

# --- redis ------------------------------------------------------------------------------------
if ! have redis:7-bookworm; then
  context <<EOF
FROM $BASE
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      redis-server && rm -rf /var/lib/apt/lists/* && mkdir -p /data && chown redis:redis /data
WORKDIR /data
EXPOSE 6379
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--dir", "/data"]
EOF
  build redis:7-bookworm redis:alpine redis redislabs/redismod
fi

# --- nginx ------------------------------------------------------------------------------------
if ! have nginx:1.22-bookworm; then
  context <<EOF
FROM $BASE
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      nginx-light gettext-base curl && rm -rf /var/lib/apt/lists/* \
 && rm -f /etc/nginx/sites-enabled/default && mkdir -p /etc/nginx/conf.d /usr/share/nginx/html \
 && echo 'nginx' > /usr/share/nginx/html/index.html \
 && ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
EOF
  build nginx:1.22-bookworm nginx nginx:latest nginx:alpine nginx:1.19.7-alpine nginx:1.13-alpine
fi

# --- python -----------------------------------------------------------------------------------
if ! have python:3.11-bookworm; then
  context <<EOF
FROM $BASE
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      python3 python3-pip python3-venv curl ca-certificates && rm -rf /var/lib/apt/lists/* \
 && ln -s /usr/bin/python3 /usr/local/bin/python && ln -s /usr/bin/pip3 /usr/local/bin/pip \
 && printf '[global]\nbreak-system-packages = true\n' > /etc/pip.conf
CMD ["python3"]
EOF
  build python:3.11-bookworm python:3.9.2-alpine python:3.10-alpine python
fi

# --- wordpress --------------------------------------------------------------------------------
if ! have wordpress:6.1-bookworm; then
  context <<EOF
FROM $BASE
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      wordpress apache2 libapache2-mod-php php-mysql curl && rm -rf /var/lib/apt/lists/* \
 && printf '<VirtualHost *:80>\n DocumentRoot /usr/share/wordpress\n <Directory /usr/share/wordpress>\n  AllowOverride All\n  Require all granted\n </Directory>\n</VirtualHost>\n' \
      > /etc/apache2/sites-available/000-default.conf \
 && ln -sf /dev/stdout /var/log/apache2/access.log && ln -sf /dev/stderr /var/log/apache2/error.log
COPY file_env.sh /usr/local/lib/
COPY docker-entrypoint.sh /usr/local/bin/
ENTRYPOINT ["docker-entrypoint.sh"]
EXPOSE 80
STOPSIGNAL SIGWINCH
CMD ["apache2ctl", "-D", "FOREGROUND"]
EOF
  cat > "$ctx/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
# The official wordpress image's contract (see tests/images.sh): its database from the
# environment, written where Debian's WordPress reads it for any host.
set -e
. /usr/local/lib/file_env.sh
for v in HOST USER PASSWORD NAME; do file_env "WORDPRESS_DB_$v"; done
cat > /etc/wordpress/config-default.php <<PHP
<?php
define('DB_NAME', '${WORDPRESS_DB_NAME:-wordpress}');
define('DB_USER', '${WORDPRESS_DB_USER:-example username}');
define('DB_PASSWORD', '${WORDPRESS_DB_PASSWORD:-example password}');
define('DB_HOST', '${WORDPRESS_DB_HOST:-mysql}');
define('WP_CONTENT_DIR', '/var/lib/wordpress/wp-content');
?>
PHP
. /etc/apache2/envvars
mkdir -p "$APACHE_RUN_DIR" "$APACHE_LOCK_DIR"
exec "$@"
EOF
  chmod +x "$ctx/docker-entrypoint.sh"
  build wordpress:6.1-bookworm wordpress:latest wordpress
fi
