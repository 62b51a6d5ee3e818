"""ResponseStreamer: where a session's words go, as it says them.

Like transformers' BaseStreamer, one object receives the output: ``on_token`` with the text
of a response so far while it is decoded, ``on_response`` with each finished Response. It is
installed once, when the session is built (or by the StreamPipeline that runs the session,
which then hands everything on to its own streamer), and never swapped behind the engine's
back. Both run on the thread that decodes: keep them short.
"""

from __future__ import annotations

from typing import Callable, Optional

from live_ros.streaming.response import Response

#: on_token(query_id, text so far, stream time); on_response(finished Response).
TokenCallback = Callable[[int, str, float], None]
ResponseCallback = Callable[[Response], None]


class ResponseStreamer:
    """Receives a session's output; the defaults ignore it."""

    def on_token(self, query_id: int, text: str, stream_time: float) -> None:
        """Get the whole text of the response being decoded, after each new token."""

    def on_response(self, response: Response) -> None:
        """Get a finished live_ros.streaming.session.Response."""


class CallbackStreamer(ResponseStreamer):
    """A streamer made of two plain functions (either may be None)."""

    def __init__(self, on_token: Optional[Callable[[int, str, float], None]] = None,
                 on_response: Optional[Callable[[object], None]] = None):
        self._on_token = on_token
        self._on_response = on_response

    def on_token(self, query_id: int, text: str, stream_time: float) -> None:
        """Call the token function, if any."""
        if self._on_token is not None:
            self._on_token(query_id, text, stream_time)

    def on_response(self, response: Response) -> None:
        """Call the response function, if any."""
        if self._on_response is not None:
            self._on_response(response)


def as_streamer(streamer: ResponseStreamer | None = None, on_token: TokenCallback | None = None,
                on_response: ResponseCallback | None = None) -> Optional[ResponseStreamer]:
    """One streamer from a streamer or two functions (not both); None when nothing is given."""
    if streamer is not None and (on_token is not None or on_response is not None):
        raise ValueError('give a streamer or on_token / on_response, not both')
    if streamer is not None:
        return streamer
    if on_token is None and on_response is None:
        return None
    return CallbackStreamer(on_token, on_response)
