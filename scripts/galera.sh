#!/usr/bin/env bash
# A MariaDB Galera cluster of N nodes on this machine, for tests and measurements (docs/scale-out.md).
#
#   scripts/galera.sh start [N]   start N nodes (default $GALERA_NODES or 3); idempotent: nodes that run
#                                 are left alone, missing ones join them; with none running, a new cluster
#                                 is bootstrapped from fresh datadirs (its data is scaffolding, never kept)
#   scripts/galera.sh stop        stop every node, last one first (so node 1 stays safe to bootstrap)
#   scripts/galera.sh kill I      kill -9 node I's mariadbd (the node-loss experiment)
#   scripts/galera.sh status      one line per node: port, pid, wsrep state, cluster size
#   scripts/galera.sh urls [N]    the nodes' client URLs, comma-separated (DJ_TEST_GALERA_URLS)
#
# Node I (1-based) listens on loopback: client port GALERA_PORT+I-1 (4306..), gcomm 4567+10(I-1), IST
# 4568+10(I-1), SST 4569+10(I-1). The nodes run as the `mysql` user (rsync SST drops root's rights to
# `nobody` and then cannot read the datadir), so everything lives under GALERA_DIR, owned by mysql.
set -euo pipefail

GALERA_DIR="${GALERA_DIR:-/var/tmp/dj-galera}"
GALERA_NODES="${GALERA_NODES:-3}"
GALERA_PORT="${GALERA_PORT:-4306}"
GALERA_GCOMM="${GALERA_GCOMM:-4567}"
GALERA_USER="${GALERA_USER:-mysql}"
PROVIDER="${GALERA_PROVIDER:-$(ls /usr/lib/galera/libgalera_smm.so /usr/lib/libgalera_smm.so 2>/dev/null | head -n 1)}"
MAX_NODES=9

die() { echo "galera: $*" >&2; exit 1; }
port() { echo $((GALERA_PORT + $1 - 1)); }
gcomm() { echo $((GALERA_GCOMM + 10 * ($1 - 1))); }
node_dir() { echo "$GALERA_DIR/node$1"; }
sql() { mariadb -h127.0.0.1 -P"$(port "$1")" -uroot --connect-timeout=2 -N -B -e "$2" 2>/dev/null; }

pid_of() {
  local file; file="$(node_dir "$1")/mariadbd.pid"
  [ -s "$file" ] && kill -0 "$(cat "$file")" 2>/dev/null && cat "$file"
}

running() { [ -n "$(pid_of "$1" || true)" ]; }

synced() { [ "$(sql "$1" "SHOW STATUS LIKE 'wsrep_local_state_comment'" | cut -f2)" = "Synced" ]; }

cluster_address() {
  local count=$1 list="" i
  for i in $(seq 1 "$count"); do list="$list${list:+,}127.0.0.1:$(gcomm "$i")"; done
  echo "gcomm://$list"
}

write_config() {  # node, node count
  local i=$1 dir; dir="$(node_dir "$1")"
  cat >"$dir/my.cnf" <<CNF
[mariadbd]
user=$GALERA_USER
datadir=$dir/data
socket=$dir/mariadbd.sock
pid-file=$dir/mariadbd.pid
log-error=$dir/error.log
bind-address=127.0.0.1
port=$(port "$i")
skip-name-resolve
innodb_buffer_pool_size=128M
# Galera's requirements: row events, InnoDB, interleaved auto-increment locks
binlog_format=ROW
default_storage_engine=InnoDB
innodb_autoinc_lock_mode=2
wsrep_on=ON
wsrep_provider=$PROVIDER
wsrep_cluster_name=dj-galera
wsrep_cluster_address=$(cluster_address "$2")
wsrep_node_name=node$i
wsrep_node_address=127.0.0.1:$(gcomm "$i")
wsrep_node_incoming_address=127.0.0.1:$(port "$i")
wsrep_provider_options="gmcast.listen_addr=tcp://127.0.0.1:$(gcomm "$i");ist.recv_addr=127.0.0.1:$(($(gcomm "$i") + 1));gcache.size=256M"
wsrep_sst_receive_address=127.0.0.1:$(($(gcomm "$i") + 2))
wsrep_sst_method=rsync
wsrep_slave_threads=2
CNF
}

prepare_node() {  # node, node count, fresh (1: new datadir)
  local dir; dir="$(node_dir "$1")"
  if [ "$3" = 1 ]; then rm -rf "$dir"; fi
  mkdir -p "$dir/data"
  write_config "$1" "$2"
  chown -R "$GALERA_USER:" "$GALERA_DIR"
  if [ "$1" = 1 ] && [ ! -d "$dir/data/mysql" ]; then
    mariadb-install-db --defaults-file="$dir/my.cnf" --auth-root-authentication-method=normal \
      --skip-test-db >"$dir/install.log" 2>&1 || die "mariadb-install-db failed: see $dir/install.log"
  fi
}

launch() {  # node, extra mariadbd arguments...
  local i=$1 dir; dir="$(node_dir "$1")"; shift
  # setsid: the node outlives the shell (and make) that started it
  setsid mariadbd --defaults-file="$dir/my.cnf" "$@" </dev/null >>"$dir/stdout.log" 2>&1 &
  for _ in $(seq 1 120); do
    synced "$i" && return 0
    sleep 0.5
  done
  die "node $i not synced after 60 s: see $dir/error.log"
}

start() {
  local count=${1:-$GALERA_NODES} i any=""
  [ -n "$PROVIDER" ] || die "no libgalera_smm.so (apt-get install galera-4)"
  [[ "$count" =~ ^[1-9]$ ]] && [ "$count" -le "$MAX_NODES" ] || die "node count must be 1..$MAX_NODES, not $count"
  id "$GALERA_USER" >/dev/null 2>&1 || die "no user $GALERA_USER to run the nodes as"
  mkdir -p "$GALERA_DIR"
  for i in $(seq 1 "$MAX_NODES"); do running "$i" && any=1; done
  if [ -z "$any" ]; then
    for i in $(seq 1 "$MAX_NODES"); do rm -rf "$(node_dir "$i")"; done
    prepare_node 1 "$count" 1
    launch 1 --wsrep-new-cluster
    sql 1 "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION"
  fi
  for i in $(seq 1 "$count"); do
    running "$i" && continue
    prepare_node "$i" "$count" 0
    launch "$i"
  done
  status "$count"
}

stop() {
  local i pid
  for i in $(seq "$MAX_NODES" -1 1); do
    pid="$(pid_of "$i" || true)"
    [ -n "$pid" ] || continue
    kill "$pid"
    for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && die "node $i (pid $pid) still running after 60 s"
    echo "galera: node $i stopped"
  done
  return 0
}

kill_node() {
  local pid; pid="$(pid_of "$1" || true)"
  [ -n "$pid" ] || die "node $1 is not running"
  kill -9 "$pid"
}

status() {
  local count=${1:-$MAX_NODES} i
  for i in $(seq 1 "$count"); do
    if running "$i"; then
      echo "node $i: port $(port "$i") pid $(pid_of "$i") $(sql "$i" "SHOW STATUS WHERE Variable_name IN \
        ('wsrep_local_state_comment', 'wsrep_cluster_size')" | tr '\t\n' '= ')"
    elif [ "$count" != "$MAX_NODES" ]; then
      echo "node $i: port $(port "$i") down"
    fi
  done
}

urls() {
  local count=${1:-$GALERA_NODES} i list=""
  for i in $(seq 1 "$count"); do list="$list${list:+,}mysql+pymysql://root@127.0.0.1:$(port "$i")"; done
  echo "$list"
}

case "${1:-}" in
  start) start "${2:-}" ;;
  stop) stop ;;
  kill) kill_node "${2:?node number}" ;;
  status) status "${2:-}" ;;
  urls) urls "${2:-}" ;;
  *) die "usage: $0 start [N] | stop | kill I | status [N] | urls [N]" ;;
esac
