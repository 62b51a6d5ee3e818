# Source me (bash): `source scripts/env.sh` after `bash scripts/setup.sh`.
#
# Gives this shell the project venv, the colcon overlay (install/setup.bash: PYTHONPATH,
# LD_LIBRARY_PATH, AMENT_PREFIX_PATH for live_ros) and the ROS network rule of this project:
# discovery stays on this machine (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST) and the domain id
# is one of our own (ROS_DOMAIN_ID, 1..101: unless already set, one that no process on this
# machine uses now, starting from this shell's PID).
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
  # The venv's pip ROS wheels are the underlay (rosidl, std_msgs, ...): colcon build and the
  # ament index need it on the prefix paths, below the overlay.
  for _live_ros_var in AMENT_PREFIX_PATH CMAKE_PREFIX_PATH; do
    case ":${!_live_ros_var:-}:" in *":$_live_ros_venv:"*) ;; *)  # once, when sourced twice
      export "$_live_ros_var=$_live_ros_venv${!_live_ros_var:+:${!_live_ros_var}}" ;; esac
  done
  # shellcheck disable=SC1091
  source "$_live_ros_root/install/setup.bash"
fi

# A domain id for this run only, one that no process on this machine uses now (1..101,
# starting from one derived from this shell's PID): live_ros/ros/domain_id.py, the same rule
# the tests and the demo import (standard library only, so it runs before the build).
_live_ros_python=$(command -v python3 || command -v python)

export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
if [ -z "${ROS_DOMAIN_ID:-}" ]; then
  ROS_DOMAIN_ID=$("$_live_ros_python" -I "$_live_ros_root/live_ros/ros/domain_id.py" "$$" \
    2> /dev/null) || ROS_DOMAIN_ID=$(( $$ % 101 + 1 ))   # no Python yet: ours, unchecked
  export ROS_DOMAIN_ID
fi

[ "$_live_ros_nounset" = 1 ] && set -u
unset _live_ros_root _live_ros_venv _live_ros_nounset _live_ros_var _live_ros_python
