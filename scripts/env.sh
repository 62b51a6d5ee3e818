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

# Ports some process on this machine holds for Fast DDS, one per line: UDP sockets, and
# shared-memory port files in /dev/shm (shared even across network namespaces, so they
# matter here too) that a live process holds a lock on (/proc/locks; a killed process
# leaves its files behind, unlocked).
_live_ros_ports_in_use() {
  local locked ino f port
  locked=" $(awk '{for (i = 1; i <= NF; i++) if ($i ~ /^[0-9a-f]+:[0-9a-f]+:[0-9]+$/) {
    split($i, a, ":"); print a[3]}}' /proc/locks 2> /dev/null | tr '\n' ' ') "
  while read -r ino f; do
    [ -n "$f" ] && [[ $locked == *" $ino "* ]] || continue
    port=${f##*_port}
    port=${port%%_*}
    [[ $port =~ ^[0-9]+$ ]] && echo "$port"
  done < <(stat -c '%i %n' /dev/shm/fastdds_port* /dev/shm/fastrtps_port* 2> /dev/null)
  if command -v ss > /dev/null 2>&1; then
    ss -Hlun 2> /dev/null | awk '{print $4}' | sed 's/.*://'
  fi
}

# A domain id for this run only: 1..101 (the range Fast DDS maps to valid ports everywhere),
# starting from one derived from this PID and skipping domains in use here (participants of
# domain d hold ports 7410+250d .. 7649+250d).
_live_ros_pick_domain_id() {
  local start=$(( $$ % 101 )) i d port used ports
  ports=$(_live_ros_ports_in_use)
  for ((i = 0; i < 101; i++)); do
    d=$(( (start + i) % 101 + 1 ))
    used=0
    for port in $ports; do
      if [[ $port =~ ^[0-9]+$ ]] && ((port >= 7410 + 250 * d && port < 7650 + 250 * d)); then
        used=1
        break
      fi
    done
    if [ "$used" = 0 ]; then
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
unset -f _live_ros_ports_in_use _live_ros_pick_domain_id
