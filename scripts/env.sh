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

# True when some process on this machine already uses ROS domain $1: Fast DDS participants
# of domain d hold ports 7410+250d .. 7649+250d, as UDP sockets and as shared-memory files in
# /dev/shm (those are shared even across network namespaces, so they matter here too).
_live_ros_domain_in_use() {
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
_live_ros_pick_domain_id() {
  local start=$(( $$ % 101 )) i d
  for ((i = 0; i < 101; i++)); do
    d=$(( (start + i) % 101 + 1 ))
    if ! _live_ros_domain_in_use "$d"; then
      echo "$d"
      return
    fi
  done
  echo $((start + 1))
}

export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
if [ -z "${ROS_DOMAIN_ID:-}" ]; then
  ROS_DOMAIN_ID=$(_live_ros_pick_domain_id)
  export ROS_DOMAIN_ID
fi

[ "$_live_ros_nounset" = 1 ] && set -u
unset _live_ros_root _live_ros_venv _live_ros_nounset _live_ros_var
unset -f _live_ros_domain_in_use _live_ros_pick_domain_id
