"""Launch live_node, and optionally video_publisher feeding it a video, a camera or the world.

    ros2 launch live_ros live.launch.py image_topic:=/camera/image_raw
    ros2 launch live_ros live.launch.py video_source:=synthetic:7 namespace:=robot
    ros2 launch live_ros live.launch.py model:=/models/my_live device:=cuda log_level:=debug
    ros2 launch live_ros live.launch.py cameras:='[front, rear]' namespace:=robot
        (one node, one model: reads /robot/front/image and /robot/rear/image)

Arguments: namespace, params_file (default: this package's config/live.yaml), image_topic
(remapped onto the node's ``image`` input; <image_topic>/compressed onto ``image/compressed``
for compressed: true; a node with ``cameras`` reads <namespace>/<camera>/image instead),
model, device, cameras and autostart (override the params file only when given,
so a ``model:`` in a user's YAML holds otherwise; ``autostart:=false`` leaves the lifecycle
node unconfigured for ``ros2 lifecycle set`` or a lifecycle manager), log_level, and
video_source / video_fps / video_loop / video_bag_topic: when video_source is set (a file,
camera:<index>, synthetic:<seed>, a rosbag2) video_publisher starts too and publishes on
image_topic. When live_node exits (Ctrl-C, a model that does not load, no CUDA) the whole
launch shuts down with it, and so it does, with the reason, when video_publisher exits.
"""

from typing import List

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

# Launch arguments that override the params file only when set, with their parameter type:
# their empty default means 'not given', and the params file (or the node's default) decides.
PARAMS_FILE_OVERRIDES = {'model': str, 'device': str, 'autostart': bool, 'cameras': List[str]}


def live_node_action(context, namespace, params_file, image_topic, log_level):
    """Build live_node once the arguments are known: only given overrides reach the node."""
    overrides = {}
    for name, value_type in PARAMS_FILE_OVERRIDES.items():
        if LaunchConfiguration(name).perform(context):
            # As a substitution, so launch_ros converts the text to the type ('false' -> bool).
            overrides[name] = ParameterValue(LaunchConfiguration(name), value_type=value_type)
    live_node = Node(
        package='live_ros',
        executable='live_node',
        name='live_node',
        namespace=namespace,
        output='screen',
        parameters=[params_file] + ([overrides] if overrides else []),
        # image_transport naming: the compressed stream of <topic> is <topic>/compressed.
        remappings=[('image', image_topic), ('image/compressed', [image_topic, '/compressed'])],
        ros_arguments=['--log-level', log_level],
        # The main node: video_publisher alone would stream to nobody.
        on_exit=Shutdown(reason='live_node exited'),
    )
    return [live_node]


def generate_launch_description():
    """Describe the node, its arguments and the optional video source."""
    namespace = LaunchConfiguration('namespace')
    params_file = LaunchConfiguration('params_file')
    image_topic = LaunchConfiguration('image_topic')
    log_level = LaunchConfiguration('log_level')
    video_source = LaunchConfiguration('video_source')
    video_fps = LaunchConfiguration('video_fps')
    video_loop = LaunchConfiguration('video_loop')
    video_bag_topic = LaunchConfiguration('video_bag_topic')

    arguments = [
        DeclareLaunchArgument(
            'namespace', default_value='', description='Namespace of the nodes.'),
        DeclareLaunchArgument(
            'params_file',
            default_value=PathJoinSubstitution(
                [FindPackageShare('live_ros'), 'config', 'live.yaml']),
            description='YAML file with the live_node parameters.'),
        DeclareLaunchArgument(
            'image_topic', default_value='image',
            description='Camera topic (sensor_msgs/Image) remapped onto the node input.'),
        DeclareLaunchArgument(
            'model', default_value='',
            description='Model directory or preset; empty = as in params_file (default: the '
                        'embedded default model).'),
        DeclareLaunchArgument(
            'device', default_value='',
            description='Torch device: auto, cpu, cuda, ...; empty = as in params_file '
                        '(default: auto).'),
        DeclareLaunchArgument(
            'cameras', default_value='',
            description="Camera names, one stream each on one model, as a YAML list: "
                        "cameras:='[front, rear]' reads front/image and answers on "
                        'front/response, front/ask, ...; empty = as in params_file (default: '
                        'one camera on image).'),
        DeclareLaunchArgument(
            'autostart', default_value='',
            description='true: configure and activate live_node (a lifecycle node) at once; '
                        'false: wait for ros2 lifecycle set; empty = as in params_file '
                        '(default: true).'),
        DeclareLaunchArgument(
            'log_level', default_value='info',
            description='Logging level: debug, info, warn, error or fatal.'),
        DeclareLaunchArgument(
            'video_source', default_value='',
            description='Also start video_publisher with this source: a video file, '
                        'camera:<index>, synthetic:<seed> or a rosbag2 (its only image '
                        'topic); empty = use a real camera.'),
        DeclareLaunchArgument(
            'video_fps', default_value='0.0',
            description='video_publisher rate in Hz; 0 = the source own rate.'),
        DeclareLaunchArgument(
            'video_loop', default_value='true',
            description='video_publisher starts the video again at its end.'),
        DeclareLaunchArgument(
            'video_bag_topic', default_value='',
            description='Image topic to play when video_source is a rosbag2 with several; '
                        'empty = its only one.'),
    ]

    live_node = OpaqueFunction(function=live_node_action, args=[
        namespace, params_file, image_topic, log_level])

    video_publisher = Node(
        package='live_ros',
        executable='video_publisher',
        name='video_publisher',
        namespace=namespace,
        output='screen',
        parameters=[{
            'source': ParameterValue(video_source, value_type=str),
            'fps': ParameterValue(video_fps, value_type=float),
            'loop': ParameterValue(video_loop, value_type=bool),
            'bag_topic': ParameterValue(video_bag_topic, value_type=str),
        }],
        remappings=[('image', image_topic)],
        ros_arguments=['--log-level', log_level],
        condition=IfCondition(PythonExpression(["'", video_source, "' != ''"])),
        # A source that fails or ends leaves live_node with nothing to watch: say so and stop.
        on_exit=Shutdown(reason='video_publisher exited (a bad source, or the end of a file '
                                'without video_loop)'),
    )

    return LaunchDescription(arguments + [live_node, video_publisher])
