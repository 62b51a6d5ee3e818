"""Streaming inference: session (continuous KV cache), context policy, threaded pipeline."""
