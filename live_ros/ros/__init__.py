"""The thin ROS 2 layer of live_ros: the only code that imports rclpy or message packages.

live_node drives the streaming engine from camera images, video_publisher feeds it video, and
ask sends it questions from a terminal.
"""
