r"""The chat/stream template: the one place that turns dialogue events into token ids.

Layout (VideoLLM-online v1+, docs/REFERENCE.md)::

    bos + system + '\\n'
    stream      '\\n[' + ','.join(['<v>' * T] * n) + ']'
    user        '\\nUser: ' + text            (']\\nUser: ' right after a stream)
    assistant   '\\nAssistant: ' + text + eos  (']\\nAssistant: ' right after a stream)

Tokenization rule, shared by the training collator and the streaming session: every maximal
run of template text between frame tokens, special ids (bos, eos, interval) and the response
content is tokenized as one piece. The session meets the same boundaries when it feeds the
stream incrementally (it only flushes text when frames come or generation starts), so both
see identical ids; the joint runs (e.g. ``system + '\\n\\n['``, ``']\\nUser: q\\nAssistant:'``)
are also what the reference model saw in training. The response content is tokenized as
``' ' + text`` on its own because at inference it is generated after ``'Assistant:'``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

USER = '\nUser: '
ASSISTANT = '\nAssistant:'
STREAM_OPEN = '\n['
STREAM_CLOSE = ']'


def add_frame_token(tokenizer: PreTrainedTokenizerBase, frame_token: str = '<v>') -> int:
    """Add the frame placeholder as an extra special token and return its id.

    Following the reference, the embedding table is not resized: the id is
    ``len(tokenizer) - 1`` and may lie outside the LLM's vocabulary (ids are clamped before the
    embedding lookup and the positions overwritten with frame embeddings).
    """
    if frame_token not in tokenizer.get_vocab():
        tokenizer.add_special_tokens({'additional_special_tokens': [frame_token]},
                                     replace_extra_special_tokens=False)
    return tokenizer.convert_tokens_to_ids(frame_token)


def single_token_id(tokenizer: PreTrainedTokenizerBase, text: str) -> int:
    """Return the id of a text that must tokenize to exactly one token (the interval token)."""
    ids = tokenizer(text, add_special_tokens=False)['input_ids']
    if len(ids) != 1:
        raise ValueError(f'{text!r} must be one token, got {ids}')
    return ids[0]


@dataclass
class Layout:
    """Token ids of a dialogue plus the positions the collator needs for labels.

    ``frame_last``: index of the last frame token of each frame; its label is the id that
    follows it (the interval token, or the first token of the response/query prefix).
    ``response_spans``: ``(start, stop)`` token ranges of each assistant turn, from
    ``Assistant`` to its eos inclusive; they are learned as targets (labels[p] = ids[p + 1]
    for p in ``range(start - 1, stop - 1)``).
    """

    input_ids: list = field(default_factory=list)
    frame_last: list = field(default_factory=list)
    response_spans: list = field(default_factory=list)
    frame_mask: list = field(default_factory=list)


END_TOKENS = ('<|eot_id|>', '<|end_of_text|>', '<|im_end|>', '<|endoftext|>')


class StreamTemplate:
    """Token-level template of one model: tokenizer plus frame/interval/bos/eos ids."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, frame_token_id: int,
                 interval_token_id: int, tokens_per_frame: int, system_prompt: str = ''):
        self.tokenizer = tokenizer
        self.frame_token_id = frame_token_id
        self.interval_token_id = interval_token_id
        self.tokens_per_frame = tokens_per_frame
        self.system_prompt = system_prompt
        self.bos_token_id = tokenizer.bos_token_id
        self.eos_token_id = tokenizer.eos_token_id
        if self.eos_token_id is None:
            raise ValueError('the tokenizer needs an eos token')
        # Decoding stops at eos and at every other end token the tokenizer has (Llama-3
        # ends a turn with <|eot_id|> but may emit <|end_of_text|>; the reference stops at both).
        vocab = tokenizer.get_vocab()
        self.stop_token_ids = frozenset(
            [self.eos_token_id] + [vocab[t] for t in END_TOKENS if t in vocab])

    @classmethod
    def from_tokenizer(cls, tokenizer: PreTrainedTokenizerBase, frame_token: str = '<v>',
                       interval_token: str = ',', tokens_per_frame: int = 10,
                       system_prompt: str = '') -> 'StreamTemplate':
        """Add the frame token to a tokenizer and build the template."""
        frame_id = add_frame_token(tokenizer, frame_token)
        interval_id = single_token_id(tokenizer, interval_token)
        return cls(tokenizer, frame_id, interval_id, tokens_per_frame, system_prompt)

    def tokenize(self, text: str) -> list[int]:
        """Tokenize one template text run.

        Special tokens are never added, nor parsed from the text: a user typing '<v>' or an
        eos string gets plain text, not a frame slot or an end of turn (bos, eos and frame
        tokens only come from the template as ids).
        """
        if not text:
            return []
        enc = self.tokenizer(text, add_special_tokens=False, split_special_tokens=True)
        return list(enc['input_ids'])

    def _tokenize_with_offsets(self, text: str) -> tuple[list[int], list]:
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True,
                             split_special_tokens=True)
        return list(enc['input_ids']), [tuple(o) for o in enc['offset_mapping']]

    @property
    def response_start_id(self) -> int:
        r"""Return the first token after a stream when the assistant speaks (']\n' on Llama-3)."""
        return self.tokenize(STREAM_CLOSE + ASSISTANT)[0]

    def encoder(self) -> 'DialogueEncoder':
        """Start an incremental DialogueEncoder, one per dialogue or streaming session."""
        return DialogueEncoder(self)

    def encode_dialogue(self, events: list[dict], system_prompt: str | None = None) -> Layout:
        """Encode a whole dialogue for training/evaluation.

        ``events``: dicts ``{'role': 'stream', 'num_frames': n}``, ``{'role': 'user',
        'content': q}``, ``{'role': 'assistant', 'content': a}``, optionally starting with
        ``{'role': 'system', 'content': s}`` (else ``system_prompt`` or the template's).
        """
        enc = self.encoder()
        events = list(events)
        if events and events[0].get('role') == 'system':
            enc.system(events.pop(0).get('content', ''))
        else:
            enc.system(self.system_prompt if system_prompt is None else system_prompt)
        for event in events:
            role = event['role']
            if role == 'stream':
                for _ in range(int(event['num_frames'])):
                    enc.frame()
            elif role == 'user':
                enc.user(event['content'])
            elif role == 'assistant':
                enc.assistant_prefix()
                enc.assistant_text(event['content'])
            else:
                raise ValueError(f'unknown role {role!r}')
        enc.flush()
        return enc.layout()


class DialogueEncoder:
    """Incremental template state machine.

    Calls append template pieces; ``take()`` returns the ids emitted since the last take (what
    the session feeds to the LLM). Text is held until a frame, special id or response needs
    it, so text runs are tokenized jointly (see module docstring).
    """

    def __init__(self, template: StreamTemplate):
        self.t = template
        self.ids = []
        self.frame_last = []
        self.response_spans = []
        self.role = None
        self._pending = ''
        self._assistant_at = None
        self._taken = 0
        self._open_response = None

    def copy(self) -> 'DialogueEncoder':
        """Return an independent copy to roll back to (a backlog batch that stops part way)."""
        other = copy.copy(self)
        other.ids, other.frame_last = list(self.ids), list(self.frame_last)
        other.response_spans = list(self.response_spans)
        return other

    # -- low level -------------------------------------------------------------------------
    def flush(self) -> None:
        """Tokenize the pending text run into ids."""
        if not self._pending:
            return
        start = len(self.ids)
        if self._assistant_at is None:
            self.ids.extend(self.t.tokenize(self._pending))
        else:
            ids, offsets = self.t._tokenize_with_offsets(self._pending)
            first = next((i for i, (_, end) in enumerate(offsets)
                          if end > self._assistant_at), len(ids))
            self._open_response = start + first
            self.ids.extend(ids)
        self._pending = ''
        self._assistant_at = None

    def _special(self, token_id: int) -> None:
        self.flush()
        self.ids.append(token_id)

    def take(self) -> list[int]:
        """Return the ids emitted since the previous call (pending text is not included)."""
        out = self.ids[self._taken:]
        self._taken = len(self.ids)
        return out

    @property
    def fed(self) -> int:
        """Number of ids already taken."""
        return self._taken

    @property
    def unfed(self) -> int:
        """Tokens not taken yet: ids emitted, plus at most one per byte of pending text."""
        return len(self.ids) - self._taken + len(self._pending.encode('utf-8'))

    # -- events ------------------------------------------------------------------------------
    def system(self, text: str) -> None:
        """Begin the dialogue: bos + system prompt + newline."""
        if self.t.bos_token_id is not None:
            self._special(self.t.bos_token_id)
        self._pending += text + '\n'
        self.role = 'system'

    def frame(self) -> None:
        """Append one frame's placeholders (opening the stream or after an interval token)."""
        if self.role == 'stream':
            self._special(self.t.interval_token_id)
        else:
            self._pending += STREAM_OPEN
            self.flush()
        self.ids.extend([self.t.frame_token_id] * self.t.tokens_per_frame)
        self.frame_last.append(len(self.ids) - 1)
        self.role = 'stream'

    def _close_stream(self):
        if self.role == 'stream':
            self._pending += STREAM_CLOSE

    def user(self, text: str) -> None:
        """Append a user turn (closing the stream first when one is open)."""
        self._close_stream()
        self._pending += USER + text
        self.role = 'user'

    def assistant_prefix(self) -> None:
        """Append the response prefix and flush it: the LLM generates right after it."""
        self._close_stream()
        self._assistant_at = len(self._pending) + 1  # the 'A' after the newline
        self._pending += ASSISTANT
        self.flush()
        self.role = 'assistant'

    def assistant_text(self, text: str) -> None:
        """Append a known response (training): ' ' + text tokenized on its own, then eos."""
        self.ids.extend(self.t.tokenize(' ' + text))
        self.ids.append(self.t.eos_token_id)
        self._end_response()

    def assistant_empty(self) -> None:
        """Append an empty reply, eos right after the prompt (the per-frame layout's silence)."""
        self.ids.append(self.t.eos_token_id)
        self._end_response()

    def assistant_generated(self, generated: list[int]) -> None:
        """Record generated ids; all but the last were fed while decoding.

        The last one (an end token, or the token at max_new_tokens) is left to be fed with the
        next event; an eos is added when decoding stopped at the token limit, so the template
        stays valid.
        """
        self.ids.extend(generated)
        self._taken = len(self.ids) - 1 if generated else len(self.ids)
        if not generated or generated[-1] not in self.t.stop_token_ids:
            self.ids.append(self.t.eos_token_id)
        self._end_response()

    def _end_response(self):
        if self._open_response is not None:
            self.response_spans.append((self._open_response, len(self.ids)))
        self._open_response = None
        self.role = 'assistant_done'

    def layout(self) -> Layout:
        """Snapshot of ids and label positions."""
        mask = [i == self.t.frame_token_id for i in self.ids]
        return Layout(list(self.ids), list(self.frame_last), list(self.response_spans), mask)
