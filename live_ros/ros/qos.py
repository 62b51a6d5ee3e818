"""QoS profiles of live_ros's topics, for the node and its clients alike (no node code here)."""

from rclpy.qos import (
    DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data)

#: Responses are few and must not be lost: reliable, a generous history for slow consumers.
RESPONSE_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE)


def image_qos(reliability: str) -> QoSProfile:
    """Sensor-data QoS (best effort, keep last 5), or the same depth reliable."""
    return QoSProfile(
        history=qos_profile_sensor_data.history, depth=qos_profile_sensor_data.depth,
        reliability=(ReliabilityPolicy.RELIABLE if reliability == 'reliable'
                     else ReliabilityPolicy.BEST_EFFORT),
        durability=DurabilityPolicy.VOLATILE)
