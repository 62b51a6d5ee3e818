#!/usr/bin/env bash
# The README's test command: set up (idempotent), then run the whole test suite.
#
#   bash scripts/test.sh [pytest args...]     e.g. bash scripts/test.sh -k interfaces -x
#
# ROS network rule: every ROS process the tests start gets ROS_AUTOMATIC_DISCOVERY_RANGE=
# LOCALHOST and this run's own ROS_DOMAIN_ID, and pytest runs inside a loopback-only network
# namespace (unshare -n, lo up) whenever this user may create one (root, as in CI), so no DDS
# packet can leave the machine. Without that right (or with LIVE_ROS_NO_NETNS=1) it says so
# and runs without the namespace. LIVE_ROS_TEST_DOMAIN_ID=N forces the domain id.
# Exit status: pytest's.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

bash "$ROOT/scripts/setup.sh"

# True when some process on this machine already uses ROS domain $1: Fast DDS participants
# of domain d hold ports 7410+250d .. 7649+250d, as UDP sockets and as shared-memory files in
# /dev/shm (those are shared even across network namespaces, so they matter here too).
domain_in_use() {
  local lo=$((7410 + 250 * $1)) hi=$((7650 + 250 * $1)) f port
  for f in /dev/shm/fastdds_port* /dev/shm/fastrtps_port*; do
    [ -e "$f" ] || continue
    port=${f##*_port}
    port=${port%%_*}
    if [[ $port =~ ^[0-9]+$ ]] && ((port >= lo && port < hi)); then
      return 0
    fi
  done
  if command -v ss > /dev/null 2>&1; then
    while read -r port; do
      if [[ $port =~ ^[0-9]+$ ]] && ((port >= lo && port < hi)); then
        return 0
      fi
    done < <(ss -Hlun 2>/dev/null | awk '{print $4}' | sed 's/.*://')
  fi
  return 1
}

# A domain id for this run only: 1..101 (the range Fast DDS maps to valid ports everywhere),
# starting from one derived from this PID and skipping domains already in use here.
pick_domain_id() {
  local start=$(( $$ % 101 )) i d
  for ((i = 0; i < 101; i++)); do
    d=$(( (start + i) % 101 + 1 ))
    if ! domain_in_use "$d"; then
      echo "$d"
      return
    fi
  done
  echo $((start + 1))
}

ROS_DOMAIN_ID=${LIVE_ROS_TEST_DOMAIN_ID:-$(pick_domain_id)}
export ROS_DOMAIN_ID
# shellcheck disable=SC1091
source "$ROOT/scripts/env.sh"

# Tests use both cores but no more (shared machines); callers may override.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

# pytest collects test/ unless the arguments name files or folders themselves.
targets=(test)
for arg in "$@"; do
  if [[ $arg != -* && -e $arg ]]; then
    targets=()
    break
  fi
done

echo "[test] ROS_DOMAIN_ID=$ROS_DOMAIN_ID ROS_AUTOMATIC_DISCOVERY_RANGE=$ROS_AUTOMATIC_DISCOVERY_RANGE"
if [ "${LIVE_ROS_NO_NETNS:-0}" != 1 ] && unshare -n true 2>/dev/null; then
  echo '[test] running pytest in a loopback-only network namespace (unshare -n, lo up)'
  export LIVE_ROS_NETNS=1
  # "$@" travels as positional parameters of the inner bash, never re-split.
  exec unshare -n bash -c 'ip link set lo up && exec python -m pytest "$@"' live-ros-test "${targets[@]}" "$@"
else
  if [ "${LIVE_ROS_NO_NETNS:-0}" = 1 ]; then
    echo '[test] NOTE: LIVE_ROS_NO_NETNS=1 given:'
  else
    echo '[test] NOTE: cannot create a network namespace here (needs root / CAP_SYS_ADMIN):'
  fi
  echo '[test]       running WITHOUT the loopback-only namespace; ROS discovery is still'
  echo '[test]       limited to localhost by ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST'
  export LIVE_ROS_NETNS=0
  exec python -m pytest "${targets[@]}" "$@"
fi
