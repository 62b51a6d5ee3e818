"""The text of a response while it is decoded, one token at a time.

Re-decoding the whole response after every token costs O(n^2) over an answer; here each token
decodes only a short window. A byte-level BPE token can end inside a UTF-8 character, so text
is released only once the window no longer ends in a replacement character, and a window is
decoded with a few tokens of left context (decoders may drop a leading space on their own).
"""

REPLACEMENT = '\ufffd'


class TextStream:
    """Accumulate decoded text; ``add(token)`` returns the text so far (== full decode)."""

    def __init__(self, tokenizer, context=4):
        self.tokenizer = tokenizer
        self.context = context
        self.ids = []
        self.text = ''
        self._prefix = 0   # window start: left context for the decoder
        self._read = 0     # tokens whose text is in self.text

    def _decode(self, ids):
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def add(self, token):
        """Append one token id; return the whole text decoded so far."""
        self.ids.append(int(token))
        before = self._decode(self.ids[self._prefix:self._read])
        window = self._decode(self.ids[self._prefix:])
        if window.endswith(REPLACEMENT):
            return self.text   # an incomplete character: wait for the next token
        if window.startswith(before):
            self.text += window[len(before):]
        else:   # the decoder revised the context's text: decode everything once
            self.text = self._decode(self.ids)
        self._read = len(self.ids)
        self._prefix = max(0, self._read - self.context)
        return self.text
