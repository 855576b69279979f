#!/usr/bin/env bash
# Start PostgreSQL, Redis and RabbitMQ on loopback if they are down (commands from shared/SERVICES.md),
# then wait until each answers. Starting one that already runs is skipped.
set -uo pipefail

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start() {
  local name=$1 port=$2; shift 2
  if up "$port"; then echo "$name: up"; return 0; fi
  echo "$name: down, starting it"
  "$@" || echo "$name: start command failed ($?)"
  for _ in $(seq 1 60); do
    if up "$port"; then echo "$name: up"; return 0; fi
    sleep 1
  done
  echo "$name: still down after 60 s" >&2
  return 1
}

status=0
start postgresql 5432 bash -c 'pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start' || status=1
start redis 6379 redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
  --dir /var/lib/redis --logfile /var/log/redis/ci.log || status=1
start rabbitmq 5672 rabbitmq-server -detached || status=1
# The management API (FLEET_RABBITMQ_MANAGEMENT_URL: queue depths and head message ages); enabling
# an enabled plugin changes nothing.
if up 5672 && ! up 15672; then
  echo "rabbitmq management: enabling it"
  rabbitmq-plugins enable rabbitmq_management >/dev/null || status=1
  for _ in $(seq 1 60); do up 15672 && break; sleep 1; done
  up 15672 && echo "rabbitmq management: up" || { echo "rabbitmq management: still down" >&2; status=1; }
fi
exit $status
