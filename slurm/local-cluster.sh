#!/usr/bin/env bash
# A real single-node Slurm (munge + slurmctld + slurmd) on this machine, for trying the templates
# and for the tests. Needs root and Debian's slurm-wlm and munge packages.
#
#   slurm/local-cluster.sh start    writes /etc/slurm/slurm.conf (state under $STATE_DIR), starts the daemons
#   slurm/local-cluster.sh stop     stops only the daemons this script started (by their pid files)
#   slurm/local-cluster.sh status
#
# STATE_DIR (default /tmp/hpsweep-slurm) holds the spool, logs and pid files.
set -euo pipefail
STATE_DIR=${STATE_DIR:-/tmp/hpsweep-slurm}
CONF=/etc/slurm/slurm.conf
HOST=$(hostname -s)
CPUS=$(nproc)

need() { command -v "$1" >/dev/null || { echo "local-cluster: '$1' not found: apt-get install -y slurm-wlm munge" >&2; exit 1; }; }

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
  [ "$(id -u)" = 0 ] || { echo "local-cluster: must run as root (daemons, /etc/slurm)" >&2; exit 1; }
  need slurmctld; need slurmd; need munged
  mkdir -p "$STATE_DIR"/{ctld,d,log,munge} /run/munge /var/log/munge /var/lib/munge /etc/slurm
  chown munge:munge /run/munge /var/log/munge /var/lib/munge "$STATE_DIR/munge"
  [ -f /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
  if ! alive "$STATE_DIR/munge/munged.pid"; then
    if pgrep -x munged >/dev/null; then
      echo "local-cluster: using the munged that is already running (not ours: stop leaves it)"
    else
      su -s /bin/sh munge -c "/usr/sbin/munged --pid-file=$STATE_DIR/munge/munged.pid"
    fi
  fi
  cat > "$CONF" <<CONF
# written by hpsweep slurm/local-cluster.sh
ClusterName=hpsweep-local
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$STATE_DIR/ctld
SlurmdSpoolDir=$STATE_DIR/d
SlurmctldLogFile=$STATE_DIR/log/slurmctld.log
SlurmdLogFile=$STATE_DIR/log/slurmd.log
SlurmctldPidFile=$STATE_DIR/slurmctld.pid
SlurmdPidFile=$STATE_DIR/slurmd.pid
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobRequeue=1
KillWait=30
MinJobAge=3600
SchedulerParameters=defer_batch
NodeName=$HOST CPUs=$CPUS RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:8
CONF
  alive "$STATE_DIR/slurmctld.pid" || slurmctld -i
  alive "$STATE_DIR/slurmd.pid" || slurmd
  for _ in $(seq 60); do
    if sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then echo "local-cluster: up ($HOST, $CPUS CPUs)"; return 0; fi
    sleep 0.5
  done
  echo "local-cluster: the node did not become idle; see $STATE_DIR/log" >&2
  sinfo >&2 || true
  exit 1
}

stop() {
  for pidfile in "$STATE_DIR/slurmd.pid" "$STATE_DIR/slurmctld.pid" "$STATE_DIR/munge/munged.pid"; do
    if alive "$pidfile"; then kill "$(cat "$pidfile")" && echo "local-cluster: stopped $(basename "$pidfile" .pid)"; fi
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) sinfo; squeue ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
