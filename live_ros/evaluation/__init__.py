"""Evaluation without ROS: teacher-forced metrics, free-running play, reports, COIN."""
