"""Streaming dialogue data: format, video reading, converters, synthetic world, collator."""
