#!/usr/bin/env bash
# A real one-node Slurm cluster on this host, for schedsweep's tests: start | stop | status.
#
# Installs Debian's packages if missing (slurmctld slurmd slurm-client munge slurmdbd mariadb-server),
# writes /etc/slurm/slurm.conf for this host (its real CPUs and memory, one default partition,
# accounting through slurmdbd + mariadb so that sacct, and so submitit, can see every job), then
# starts munged -> mariadbd -> slurmdbd -> slurmctld -> slurmd directly (no systemd), each waited
# for, and returns when the node is idle and sacct answers. Idempotent: running daemons are kept.
# `stop` ends only the daemons this script started (by their pid files under $STATE).
# Needs root. Environment: SCHEDSWEEP_SLURM_STATE (default /var/tmp/schedsweep-slurm),
# MAX_ARRAY_SIZE (default 16: low, so tests see arrays cut into chunks).
set -euo pipefail

STATE=${SCHEDSWEEP_SLURM_STATE:-/var/tmp/schedsweep-slurm}
MAX_ARRAY_SIZE=${MAX_ARRAY_SIZE:-16}
HOST=$(hostname -s)
LOG=$STATE/log
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
  cat >/etc/slurm/slurm.conf <<EOF
# Written by schedsweep's tests/slurm/cluster.sh: a one-node test cluster.
ClusterName=schedsweep
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
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
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG/jobcomp.txt
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
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
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
}

start_daemon() {  # start_daemon NAME PIDFILE COMMAND...
  local name=$1 pidfile=$2
  shift 2
  alive "$pidfile" && return
  "$@" >>"$LOG/$name.out" 2>&1
}

node_idle() { [[ $(sinfo -h -n "$HOST" -o %t 2>/dev/null) =~ ^(idle|mix|alloc) ]]; }

start() {
  local t0=$SECONDS
  [[ $(id -u) == 0 ]] || { say "needs root"; exit 1; }
  install_packages
  write_config
  start_munge
  start_mariadb
  start_daemon slurmdbd "$STATE/slurmdbd.pid" /usr/sbin/slurmdbd
  wait_for 30 slurmdbd bash -c 'exec 3<>/dev/tcp/127.0.0.1/6819'
  start_daemon slurmctld "$STATE/slurmctld.pid" /usr/sbin/slurmctld
  wait_for 30 slurmctld sh -c 'scontrol ping | grep -q UP'
  start_daemon slurmd "$STATE/slurmd.pid" /usr/sbin/slurmd
  wait_for 60 "node $HOST idle" node_idle
  wait_for 30 sacct sacct -n -X -S now
  say "up in $((SECONDS - t0)) s: $(sinfo -h -o '%P %D %c %m %t' | head -1); MaxArraySize=$MAX_ARRAY_SIZE"
}

stop() {
  local name pidfile
  for name in slurmd slurmctld slurmdbd mariadb munged; do
    pidfile=$STATE/$name.pid
    if alive "$pidfile"; then
      kill "$(cat "$pidfile")" 2>/dev/null || true
      for _ in $(seq 50); do alive "$pidfile" || break; sleep 0.2; done
      alive "$pidfile" && kill -9 "$(cat "$pidfile")" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
  say "stopped"
}

status() {
  local name rc=0
  for name in munged mariadb slurmdbd slurmctld slurmd; do
    if alive "$STATE/$name.pid"; then echo "$name: running (pid $(cat "$STATE/$name.pid"))"; else echo "$name: stopped"; rc=1; fi
  done
  ((rc == 0)) && sinfo -h -o '%P %D %c %m %t'
  return $rc
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
