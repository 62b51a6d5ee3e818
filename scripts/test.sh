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

# This run's own domain id: env.sh picks one that nothing on this machine uses right now
# (a ROS_DOMAIN_ID of the caller's shell is not reused); LIVE_ROS_TEST_DOMAIN_ID forces one.
unset ROS_DOMAIN_ID
if [ -n "${LIVE_ROS_TEST_DOMAIN_ID:-}" ]; then
  export ROS_DOMAIN_ID=$LIVE_ROS_TEST_DOMAIN_ID
fi
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
