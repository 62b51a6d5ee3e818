# Source me (bash): `source scripts/env.sh` after `bash scripts/setup.sh`.
#
# Gives this shell the project venv, the colcon overlay (install/setup.bash: PYTHONPATH,
# LD_LIBRARY_PATH, AMENT_PREFIX_PATH for live_ros) and the ROS network rule of this project:
# discovery stays on this machine (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST) and the domain id
# is one of our own (ROS_DOMAIN_ID, 1..101, derived from this shell's PID unless already set).
# Safe under `set -u`: colcon's setup scripts read unset variables, so nounset is lifted while
# they run and restored afterwards.

_live_ros_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_live_ros_venv=${LIVE_ROS_VENV:-$_live_ros_root/.venv}
case $- in *u*) _live_ros_nounset=1; set +u ;; *) _live_ros_nounset=0 ;; esac

if [ ! -f "$_live_ros_root/install/setup.bash" ]; then
  echo "live_ros: $_live_ros_root/install/setup.bash is missing: run bash scripts/setup.sh" >&2
else
  # shellcheck disable=SC1091
  source "$_live_ros_venv/bin/activate"
  # shellcheck disable=SC1091
  source "$_live_ros_root/install/setup.bash"
fi

export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
if [ -z "${ROS_DOMAIN_ID:-}" ]; then
  export ROS_DOMAIN_ID=$(( ($$ % 101) + 1 ))
fi

[ "$_live_ros_nounset" = 1 ] && set -u
unset _live_ros_root _live_ros_venv _live_ros_nounset
