"""LIVE (VideoLLM-online) streaming video LLM, with a thin ROS 2 layer in live_ros.ros.

Importing the package stays cheap (no torch, no rclpy) so ROS tools, CLIs and tests can import
submodules selectively. The colcon build adds the generated interfaces as live_ros.msg and
live_ros.srv next to these sources; `pip install .` ships everything except live_ros.ros.
"""

__version__ = '0.1.0'
