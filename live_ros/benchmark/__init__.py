"""The parts of live-bench (live_ros/bench.py): streams, memory probe, cost growth, plot."""
