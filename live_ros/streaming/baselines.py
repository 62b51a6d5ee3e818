"""The paper's baselines at inference (Table 1a): per-frame and interleaved dialogue.

Both formats differ from LIVE in training (data/collator.py): per-frame dialogue learns a reply
after every frame, an empty one where nothing happens; interleaved dialogue learns the
responses only, with no streaming-EOS labels. Run live, both have to be prompted after every
frame: ``Assistant:`` is fed and a reply decoded; an immediate eos is silence (it stays in the
context as the per-frame layout has it). That is ``PromptedSession``: a StreamingSession
whose after-frame hook replies instead of deciding, so cache, context bound, queries and
decoding are LIVE's own, and live-eval, live-bench and the GPU benchmark measure the same
thing.

``frame_decision=True`` is live-bench's stand-in for a per-frame model when only a LIVE model
is at hand: LIVE's streaming-EOS decision picks the reply (a response, or the empty silent
turn), so the cost is the per-frame layout's while the model stays in its own behaviour.
"""

import torch

from live_ros.streaming.session import StreamingSession, TURN_TEMPLATE_TOKENS

METHODS = ('live', 'per_frame', 'interleaved')


class PromptedSession(StreamingSession):
    """An assistant turn after every frame (the baselines); see the module docstring."""

    def __init__(self, model, frame_decision=False, **kwargs):
        super().__init__(model, **kwargs)
        self.frame_decision = frame_decision

    def after_frame(self, logits, t, start):
        """Reply after the frame; an empty reply is silence."""
        if self.frame_decision:
            speak, p_interval = self.decide(logits)
            if not speak:
                self.silent_turn()
                return
            self.respond(t, start, interval_prob=p_interval)
            return
        self.respond(t, start, empty_is_silence=True)

    def silent_turn(self) -> None:
        """Feed an empty assistant turn (``Assistant:`` + eos): the per-frame layout's silence.

        The eos stays pending and goes in with the next event, as after any response.
        """
        self._ensure_room(TURN_TEMPLATE_TOKENS)
        self.enc.assistant_prefix()
        self._feed(self.enc.take())
        self.enc.assistant_generated([self.model.eos_token_id])
        self.history.add_turn('assistant', '')

    @torch.no_grad()
    def push_frames(self, frames, times, tags=None, submitted=None):
        """Feed frames one by one: every frame is followed by its turn, nothing to batch."""
        tags = tags or [None] * len(frames)
        submitted = submitted or [None] * len(frames)
        out = []
        for frame, t, tag, start in zip(frames, times, tags, submitted):
            out += self.push_frame(frame, t, tag, start)
        return out


def make_session(method, model, **kwargs):
    """Return a fresh session of one method: 'live', 'per_frame' or 'interleaved'.

    ``frame_decision`` (per_frame only) selects live-bench's stand-in (module docstring).
    """
    if method == 'live':
        kwargs.pop('frame_decision', None)
        return StreamingSession(model, **kwargs)
    if method == 'per_frame':
        return PromptedSession(model, **kwargs)
    if method == 'interleaved':
        kwargs.pop('frame_decision', None)
        return PromptedSession(model, **kwargs)
    raise ValueError(f'unknown method {method!r}; expected one of {", ".join(METHODS)}')
