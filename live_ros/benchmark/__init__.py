"""The parts of live-bench (live_ros/cli/bench.py): streams, memory probe, cost growth, plot."""
