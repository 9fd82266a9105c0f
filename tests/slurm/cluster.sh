#!/usr/bin/env bash
# A real Slurm test cluster on this host, for schedsweep's tests:
#   start [--nodes N] [--no-accounting] | stop | status
#
# Installs Debian's packages if missing (slurmctld slurmd slurm-client munge slurmdbd mariadb-server),
# writes /etc/slurm/slurm.conf for this host: N nodes (default 2: node1..nodeN, one slurmd each on
# this host, so multi-node jobs run for real), each declaring the host's real CPUs and memory, one
# default partition; with accounting (default) through slurmdbd + mariadb so that sacct, and so
# submitit, can see every job, or without it (--no-accounting: sacct then fails, as on clusters that
# have no accounting). Starts munged -> mariadbd -> slurmdbd -> slurmctld -> slurmd(s) directly (no
# systemd), each waited for, and returns when every node is idle (and sacct answers, with
# accounting). Idempotent: running daemons are kept when the mode (nodes, accounting, MaxArraySize) is unchanged;
# a different mode restarts the cluster. `stop` ends only the daemons this script started (by their
# pid files under $STATE). Needs root. Environment: SCHEDSWEEP_SLURM_STATE (default
# /var/tmp/schedsweep-slurm), MAX_ARRAY_SIZE (default 4: low, so tests see arrays cut into chunks with few runs,
# each a job that starts a Python with torch), GPUS (default 4: fake GPUs per node, declared as gres on
# character devices cloned from /dev/null, so that --gpus-per-node jobs are accepted and get CUDA_VISIBLE_DEVICES).
set -euo pipefail

STATE=${SCHEDSWEEP_SLURM_STATE:-/var/tmp/schedsweep-slurm}
MAX_ARRAY_SIZE=${MAX_ARRAY_SIZE:-4}
GPUS=${GPUS:-4}
HOST=$(hostname -s)
LOG=$STATE/log
NODES=2
ACCOUNTING=1
PACKAGES=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)

say() { printf 'cluster.sh: %s\n' "$*" >&2; }

alive() {  # alive PIDFILE: the process named in PIDFILE runs and is not a zombie
  local pid
  [[ -s $1 ]] || return 1
  pid=$(cat "$1")
  [[ -d /proc/$pid ]] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      say "timed out waiting for $what; logs in $LOG"
      tail -n 20 "$LOG"/*.log >&2 2>/dev/null || true
      exit 1
    fi
    sleep 0.2
  done
}

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return
  say "installing ${missing[*]}"
  apt-get update -qq
  # Debian's scripts would try to start services; there is no systemd here, so forbid it.
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

write_config() {
  local cpus mem_mb
  cpus=$(nproc)
  mem_mb=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024))  # leave 1 GiB to the host
  mkdir -p /etc/slurm "$STATE"/{ctld,spool,log}
  local accounting="AccountingStorageType=accounting_storage/none"
  if ((ACCOUNTING)); then
    accounting="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1"
  fi
  cat >/etc/slurm/slurm.conf <<EOF
# Written by schedsweep's tests/slurm/cluster.sh: a test cluster of $NODES node(s) on one host.
ClusterName=schedsweep
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool/%n
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd-%n.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=512
SlurmdParameters=config_overrides
# Start jobs at once and restart requeued ones promptly (Debian's defaults wait tens of seconds).
SchedulerParameters=batch_sched_delay=0,bf_interval=1,sched_interval=2
AuthInfo=cred_expire=5
KillWait=5
MaxArraySize=$MAX_ARRAY_SIZE
ReturnToService=2
GresTypes=gpu
$accounting
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG/jobcomp.txt
NodeName=node[1-$NODES] NodeHostname=$HOST NodeAddr=127.0.0.1 Port=17001-$((17000 + NODES)) CPUs=$cpus RealMemory=$mem_mb Gres=gpu:$GPUS State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  cat >/etc/slurm/slurmdbd.conf <<EOF
AuthType=auth/munge
DbdAddr=127.0.0.1
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
PidFile=$STATE/slurmdbd.pid
LogFile=$LOG/slurmdbd.log
EOF
  chmod 600 /etc/slurm/slurmdbd.conf
  # Fake GPUs: a count-only gpu makes the node INVAL, and a plain file does not set CUDA_VISIBLE_DEVICES.
  local g
  for g in $(seq 0 $((GPUS - 1))); do
    [[ -c /run/fake-gpu$g ]] || mknod -m 666 "/run/fake-gpu$g" c 1 3
  done
  echo "NodeName=node[1-$NODES] Name=gpu File=/run/fake-gpu[0-$((GPUS - 1))]" >/etc/slurm/gres.conf
  # srun and torch.distributed's MASTER_ADDR look node names up.
  local k
  for k in $(seq "$NODES"); do
    grep -qE "^127\.0\.0\.1[[:space:]]+node$k\$" /etc/hosts || echo "127.0.0.1 node$k" >>/etc/hosts
  done
}

start_munge() {
  alive /run/munge/munged.pid && return
  [[ -s /etc/munge/munge.key ]] || mungekey --create --keyfile=/etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge && chown munge:munge /run/munge
  runuser -u munge -- /usr/sbin/munged --force
  cp /run/munge/munged.pid "$STATE/munged.pid"
  wait_for 10 munge sh -c 'munge -n | unmunge'
}

start_mariadb() {
  alive "$STATE/mariadb.pid" && return
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  [[ -d /var/lib/mysql/mysql ]] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
  setsid /usr/sbin/mariadbd --user=mysql --datadir=/var/lib/mysql --socket=/run/mysqld/mysqld.sock \
    --pid-file=/run/mysqld/schedsweep.pid --bind-address=127.0.0.1 \
    >"$LOG/mariadb.log" 2>&1 </dev/null &
  wait_for 30 mariadb mariadb -e 'SELECT 1'
  cp /run/mysqld/schedsweep.pid "$STATE/mariadb.pid"  # mariadbd runs as mysql and cannot write $STATE
  mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
    ALTER USER 'slurm'@'localhost' IDENTIFIED BY 'slurm';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
}

start_daemon() {  # start_daemon NAME PIDFILE COMMAND...
  local name=$1 pidfile=$2
  shift 2
  alive "$pidfile" && return
  "$@" >>"$LOG/$name.out" 2>&1
}

nodes_idle() {  # every node answers and is idle (or busy): none down, drained or unknown
  local states
  states=$(sinfo -h -N -o %t 2>/dev/null) || return 1
  [[ $(grep -cE '^(idle|mix|alloc)' <<<"$states") == "$NODES" ]]
}

mode() { echo "nodes=$NODES accounting=$ACCOUNTING max_array_size=$MAX_ARRAY_SIZE gpus=$GPUS"; }

start() {
  local t0=$SECONDS k
  [[ $(id -u) == 0 ]] || { say "needs root"; exit 1; }
  if alive "$STATE/slurmctld.pid" && [[ $(cat "$STATE/mode" 2>/dev/null) != "$(mode)" ]]; then
    say "running as '$(cat "$STATE/mode" 2>/dev/null)'; restarting as '$(mode)'"
    stop_slurm
    rm -rf "$STATE/ctld"  # node names may have changed: start from an empty controller state
  fi
  install_packages
  write_config
  echo "$(mode)" >"$STATE/mode"
  start_munge
  if ((ACCOUNTING)); then
    start_mariadb
    start_daemon slurmdbd "$STATE/slurmdbd.pid" /usr/sbin/slurmdbd
    wait_for 30 slurmdbd bash -c 'exec 3<>/dev/tcp/127.0.0.1/6819'
  fi
  start_daemon slurmctld "$STATE/slurmctld.pid" /usr/sbin/slurmctld
  wait_for 30 slurmctld sh -c 'scontrol ping | grep -q UP'
  for k in $(seq "$NODES"); do
    start_daemon "slurmd-node$k" "$STATE/slurmd-node$k.pid" /usr/sbin/slurmd -N "node$k"
  done
  wait_for 60 "$NODES node(s) idle" nodes_idle
  if ((ACCOUNTING)); then wait_for 30 sacct sacct -n -X -S now; fi
  say "up in $((SECONDS - t0)) s: $(sinfo -h -o '%P %D %c %m %t' | head -1); $(mode); MaxArraySize=$MAX_ARRAY_SIZE"
}

slurm_daemons() {  # the pid-file names of the Slurm daemons this script may have started
  local f
  for f in "$STATE"/slurmd-*.pid; do [[ -e $f ]] && basename "$f" .pid; done
  echo slurmctld slurmdbd
}

stop_slurm() {
  local name
  for name in $(slurm_daemons); do stop_daemon "$name"; done
}

stop_daemon() {
  local pidfile=$STATE/$1.pid
  if alive "$pidfile"; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
    for _ in $(seq 50); do alive "$pidfile" || break; sleep 0.2; done
    alive "$pidfile" && kill -9 "$(cat "$pidfile")" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

stop() {
  local name
  for name in $(slurm_daemons) mariadb munged; do
    stop_daemon "$name"
  done
  rm -f "$STATE/mode"
  say "stopped"
}

status() {
  local name rc=0
  echo "mode: $(cat "$STATE/mode" 2>/dev/null || echo none)"
  for name in munged $( ((ACCOUNTING)) && echo mariadb slurmdbd) slurmctld $(cd "$STATE" 2>/dev/null && ls slurmd-*.pid 2>/dev/null | sed 's/\.pid$//'); do
    if alive "$STATE/$name.pid"; then echo "$name: running (pid $(cat "$STATE/$name.pid"))"; else echo "$name: stopped"; rc=1; fi
  done
  ((rc == 0)) && sinfo -h -o '%P %D %c %m %t'
  return $rc
}

case ${1:-} in
  start)
    shift
    while (($#)); do
      case $1 in
        --nodes) NODES=${2:?--nodes needs a number}; shift 2 ;;
        --nodes=*) NODES=${1#--nodes=}; shift ;;
        --no-accounting) ACCOUNTING=0; shift ;;
        *) echo "usage: $0 start [--nodes N] [--no-accounting]" >&2; exit 2 ;;
      esac
    done
    [[ $NODES =~ ^[1-9][0-9]?$ ]] || { echo "--nodes must be 1..99, got '$NODES'" >&2; exit 2; }
    start ;;
  stop) stop ;;
  status) [[ $(cat "$STATE/mode" 2>/dev/null) == *accounting=0* ]] && ACCOUNTING=0; status ;;
  *) echo "usage: $0 start [--nodes N] [--no-accounting] | stop | status" >&2; exit 2 ;;
esac
