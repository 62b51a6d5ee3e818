#!/usr/bin/env bash
# README command 1: set everything up, then watch LIVE work on real ROS 2 processes.
#
#   bash scripts/demo.sh                    # synthetic world, ~1 minute, then a summary
#   bash scripts/demo.sh clip.mp4           # a video file (or camera:0 for a camera)
#   bash scripts/demo.sh --forever          # until Ctrl-C
#   bash scripts/demo.sh --short            # ~16 s of stream (what the test runs)
#
# live_node (embedded default model) and video_publisher run as separate processes over DDS;
# the demo prints each response with its stream time and asks a question through the `ask`
# service at ~20 s. Network rule: ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and our own
# ROS_DOMAIN_ID always; when this user may (root), everything runs inside a loopback-only
# network namespace (unshare -n, lo up) so no DDS packet can leave the machine.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

bash "$ROOT/scripts/setup.sh"
# shellcheck disable=SC1091
source "$ROOT/scripts/env.sh"

if [ "${LIVE_ROS_NO_NETNS:-0}" != 1 ] && unshare -n true 2>/dev/null; then
  echo '[demo] running in a loopback-only network namespace (unshare -n, lo up)'
  exec unshare -n bash -c 'ip link set lo up && exec python -m live_ros.ros.demo "$@"' \
    live-ros-demo "$@"
else
  echo '[demo] NOTE: no loopback-only network namespace (needs root / CAP_SYS_ADMIN, or'
  echo '[demo]       LIVE_ROS_NO_NETNS=1 was given); ROS discovery is still limited to this'
  echo '[demo]       machine by ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST'
  exec python -m live_ros.ros.demo "$@"
fi
