"""The LIVE model: config, backbones, frame tokens, connector, chat/stream template."""
