"""LIVE (VideoLLM-online) streaming video LLM, with a thin ROS 2 layer in live_ros.ros.

Importing the package stays cheap (no torch, no rclpy) so ROS tools, CLIs and tests can import
submodules selectively. The colcon build adds the generated interfaces as live_ros.msg and
live_ros.srv next to these sources; `pip install .` ships everything except live_ros.ros.
"""

from pkgutil import extend_path

# Run from a source checkout (python -m pytest, python -m live_ros...), the checkout's
# live_ros/ shadows the colcon-installed one, which alone holds the generated msg/ and srv/.
# Searching every live_ros/ on sys.path keeps `from live_ros.msg import Response` working.
__path__ = extend_path(__path__, __name__)

__version__ = '0.1.0'
