"""The paper's naive baselines (Table 1a): per-frame dialogue and interleaved dialogue.

- per-frame dialogue: every frame is a turn the model must answer. After each frame comes
  ``Assistant:``; where the ground truth is silent the reply is empty (eos right after the
  prompt), so silence is a text reply the model learns, at the cost of a prompt and a reply
  per frame. Its frame decision is the first reply token: eos (silent) or text.
- interleaved dialogue: frames and turns interleaved exactly as LIVE's layout, but the loss is
  on the responses only (no streaming-EOS labels on frames), so nothing teaches it when to
  speak. In the teacher-forced metrics its frame decisions are read at the same positions as
  LIVE's; run live, it has to be prompted after every frame like per-frame.

Both are selected by ``data.format`` in a training config and scored by the same metrics.
``PromptedStream`` is the inference loop for both (used by live-eval's free-running check
and by the benchmark).
"""

import torch

from live_ros.data.collator import IGNORE, Example, stream_of, turn_span

SILENT = ''  # the per-frame silent reply: an empty response


def build_per_frame_example(template, dialogue, max_frames=None, system_prompt=None,
                            stream_weight=1.0):
    """Tokenize a dialogue in the per-frame layout, with labels on every reply."""
    events, n_frames = stream_of(dialogue, max_frames)
    enc = template.encoder()
    system = dialogue.system if dialogue.system is not None else system_prompt
    enc.system(template.system_prompt if system is None else system)
    eos = template.eos_token_id
    replies = []  # (content start, span, is_silent, frame index, event index)
    frame = -1
    for i, (kind, value) in enumerate(events):
        if kind == 'frame':
            enc.frame()
            frame = value
            nxt = events[i + 1] if i + 1 < len(events) else None
            if nxt is None or nxt[0] == 'frame':
                enc.assistant_prefix()
                content = len(enc.ids)
                enc.assistant_generated([eos])
                replies.append((content, enc.response_spans[-1], True, frame, i))
        elif value.role == 'user':
            enc.user(value.text)
        else:
            enc.assistant_prefix()
            content = len(enc.ids)
            enc.assistant_text(value.text)
            replies.append((content, enc.response_spans[-1], False, frame, i))
    enc.flush()
    ids = list(enc.ids)
    labels = [IGNORE] * len(ids)
    weights = [1.0] * len(ids)
    for content, (start, stop), silent, _, i in replies:
        for q in range(start - 1, stop - 1):
            labels[q] = ids[q + 1]
        if silent or events[i - 1][0] == 'frame':
            weights[content - 1] = stream_weight
    turns, pending = [], []
    for content, (start, stop), silent, frame, i in replies:
        if silent:
            pending.append((content - 1, frame, False))
            continue
        if i > 0 and events[i - 1][0] == 'frame':  # spoke on its own: this reply decided it
            pending.append((content - 1, frame, True))
        turns.append(turn_span(events, i, content, stop, frame, pending))
        pending = []
    return Example(ids, labels, weights, n_frames, turns, eos, 'per_frame')


class PromptedStream:
    """Inference loop of the baselines: prompt ``Assistant:`` after every frame and decode.

    An immediate eos is silence (kept in the context as the per-frame layout has it); any
    other reply is a response at that frame. Queries are answered after the frame they follow,
    as in the streaming session. One KV cache, greedy decoding; the template is the model's.
    """

    def __init__(self, model, max_new_tokens=None, system_prompt=None):
        from live_ros.streaming.session import cache_argument
        self.model = model
        self.max_new_tokens = int(max_new_tokens or model.cfg.max_new_tokens)
        self.system_prompt = model.cfg.system_prompt if system_prompt is None else system_prompt
        self._cache_arg = cache_argument(model.lm)
        self.reset()

    def reset(self):
        """Start a new stream."""
        self.cache = None
        self.enc = self.model.template.encoder()
        self.enc.system(self.system_prompt)
        self.queries = []
        self.frame_index = -1
        self.logits = None

    def ask(self, text, t):
        """Queue a question at stream time t (answered after the last frame at or before t)."""
        self.queries.append((float(t), text))
        self.queries.sort(key=lambda q: q[0])

    @torch.no_grad()
    def push_frame(self, frame, t):
        """Feed one frame (embeddings [T, D] or RGB image); return [(time, text, query)]."""
        if not isinstance(frame, torch.Tensor) or frame.dtype == torch.uint8:
            frame = self.model.encode_images([frame])[0]
        out = self._due(lambda qt: qt < t, t)
        self.enc.frame()
        self._feed(self.enc.take(), frame.to(self.model.device, self.model.dtype))
        self.frame_index += 1
        answered = self._due(lambda qt: qt <= t, t)
        out += answered
        if not answered:
            text = self._reply()
            if text:
                out.append((t, text, None))
        return out

    def _due(self, is_due, t):
        out = []
        while self.queries and is_due(self.queries[0][0]):
            _, q = self.queries.pop(0)
            self.enc.user(q)
            out.append((t, self._reply(), q))
        return out

    def _feed(self, ids, frame_embeds=None):
        from transformers import DynamicCache
        if not ids:
            return
        input_ids = torch.tensor([ids], device=self.model.device)
        embeds = self.model.embed(input_ids, frame_embeds)
        if self.cache is None:
            self.cache = DynamicCache(config=self.model.base_lm.config)
        out = self.model.lm(inputs_embeds=embeds, use_cache=True, logits_to_keep=1,
                            **{self._cache_arg: self.cache})
        self.logits = out.logits[0, -1].float()

    def _reply(self):
        self.enc.assistant_prefix()
        self._feed(self.enc.take())
        generated = []
        while True:
            scores = self.logits.clone()
            if self.model.frame_token_id < scores.shape[-1]:
                scores[self.model.frame_token_id] = -float('inf')
            token = int(scores.argmax())
            generated.append(token)
            if token in self.model.template.stop_token_ids or \
                    len(generated) >= self.max_new_tokens:
                break
            self._feed([token])
        self.enc.assistant_generated(generated)
        return self.model.tokenizer.decode(generated, skip_special_tokens=True).strip()
