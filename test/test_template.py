"""The stream template reproduces VideoLLM-online v1+ token by token (docs/REFERENCE.md)."""

import pytest

from live_ros.model.config import DEFAULT_SYSTEM_PROMPT, preset
from live_ros.model.template import StreamTemplate
from live_ros.testing.tiny_models import build_tokenizer

DIALOGUE = [
    {'role': 'stream', 'num_frames': 2},
    {'role': 'user', 'content': 'What am I doing?'},
    {'role': 'assistant', 'content': 'You are cutting a tomato.'},
    {'role': 'stream', 'num_frames': 3},
    {'role': 'assistant', 'content': 'You pick up the knife.'},
]


@pytest.fixture(scope='module')
def template():
    cfg = preset('videollm-online-8b-v1plus')
    tok = build_tokenizer()
    return StreamTemplate.from_tokenizer(tok, cfg.frame_token, cfg.interval_token,
                                         cfg.tokens_per_frame, cfg.system_prompt)


def reference_text(tok):
    """Write the prompt as the reference chat template writes it (one string)."""
    v = '<v>' * 10
    return (tok.bos_token + DEFAULT_SYSTEM_PROMPT + '\n'
            + '\n[' + ','.join([v] * 2) + ']'
            + '\nUser: What am I doing?'
            + '\nAssistant: You are cutting a tomato.' + tok.eos_token
            + '\n[' + ','.join([v] * 3) + ']'
            + '\nAssistant: You pick up the knife.' + tok.eos_token)


def test_8b_preset_matches_notes():
    cfg = preset('videollm-online-8b-v1plus')
    assert cfg.tokens_per_frame == 10 and cfg.pool == 3 and cfg.global_token == 'pooler'
    assert cfg.frame_size == 384 and cfg.image_mean == [0.5] * 3 and cfg.image_std == [0.5] * 3
    assert cfg.interval_token == ',' and cfg.frame_token == '<v>' and cfg.fps == 2.0
    assert cfg.response_threshold == 0.725 and cfg.max_new_tokens == 100
    assert (cfg.lora.r, cfg.lora.alpha, cfg.lora.dropout) == (128, 256, 0.05)
    assert cfg.lora.modules_to_save == ['connector']
    assert cfg.system_prompt == DEFAULT_SYSTEM_PROMPT


def test_frame_token_is_extra_special_token_after_vocab(template):
    tok = template.tokenizer
    assert template.frame_token_id == len(tok) - 1
    assert tok.convert_ids_to_tokens(template.frame_token_id) == '<v>'
    assert tok.decode([template.interval_token_id]) == ','
    # ']\n' is one token, as in Llama-3: it is the response start token.
    assert tok.decode([template.response_start_id]) == ']\n'


def test_dialogue_ids_token_by_token(template):
    tok = template.tokenizer
    layout = template.encode_dialogue(DIALOGUE)
    v, comma = [template.frame_token_id] * 10, template.interval_token_id

    def t(text):
        return tok(text, add_special_tokens=False)['input_ids']

    expected = ([tok.bos_token_id] + t(DEFAULT_SYSTEM_PROMPT + '\n\n[') + v + [comma] + v
                + t(']\nUser: What am I doing?\nAssistant:') + t(' You are cutting a tomato.')
                + [tok.eos_token_id] + t('\n[') + v + [comma] + v + [comma] + v
                + t(']\nAssistant:') + t(' You pick up the knife.') + [tok.eos_token_id])
    assert layout.input_ids == expected
    # Whole-string tokenization (how the reference tokenizes its training prompt) agrees.
    assert layout.input_ids == t(reference_text(tok))
    assert tok.decode(layout.input_ids) == reference_text(tok)


def test_label_positions(template):
    tok = template.tokenizer
    layout = template.encode_dialogue(DIALOGUE)
    ids = layout.input_ids
    assert len(layout.frame_last) == 5
    for p in layout.frame_last:
        assert ids[p] == template.frame_token_id and ids[p - 9] == template.frame_token_id
    following = [tok.decode([ids[p + 1]]) for p in layout.frame_last]
    # Frame 2 precedes the query, frame 5 the spontaneous response.
    assert following == [',', ']\n', ',', ',', ']\n']
    assert sum(layout.frame_mask) == 50
    assert len(layout.response_spans) == 2
    for start, stop in layout.response_spans:
        assert tok.decode(ids[start:stop]).startswith('Assistant:')
        assert ids[stop - 1] == tok.eos_token_id
    start, stop = layout.response_spans[1]
    assert tok.decode(ids[start:stop], skip_special_tokens=True) == \
        'Assistant: You pick up the knife.'


def test_incremental_encoder_emits_same_ids(template):
    enc = template.encoder()
    enc.system(DEFAULT_SYSTEM_PROMPT)
    fed = []
    for _ in range(2):
        enc.frame()
        fed += enc.take()
    enc.user('What am I doing?')
    enc.assistant_prefix()
    fed += enc.take()
    answer = template.tokenize(' You are cutting a tomato.') + [template.eos_token_id]
    fed += answer[:-1]  # fed one by one while decoding
    enc.assistant_generated(answer)
    for _ in range(3):
        enc.frame()
        fed += enc.take()
    enc.assistant_prefix()
    fed += enc.take()
    answer = template.tokenize(' You pick up the knife.') + [template.eos_token_id]
    fed += answer[:-1]
    enc.assistant_generated(answer)
    fed += enc.take()
    assert fed == template.encode_dialogue(DIALOGUE).input_ids


def test_interval_token_must_be_single_token():
    tok = build_tokenizer()
    with pytest.raises(ValueError):
        StreamTemplate.from_tokenizer(tok, '<v>', 'xyzzy-not-a-token', 10)


def test_special_token_strings_in_user_text_stay_text(template):
    tok = template.tokenizer
    enc = template.encoder()
    enc.system('hi')
    enc.frame()
    enc.user('what is <v> and ' + tok.eos_token + '?')
    enc.assistant_prefix()
    ids = enc.take()
    assert ids.count(template.frame_token_id) == template.tokens_per_frame
    assert template.eos_token_id not in ids
    assert tok.decode(ids).endswith(']\nUser: what is <v> and ' + tok.eos_token + '?\nAssistant:')


def test_decoding_stops_at_every_end_token_of_the_tokenizer():
    """Llama-3 has <|eot_id|> (eos) and <|end_of_text|>: both end a response, no eos added."""
    tok = build_tokenizer()
    tok.add_tokens(['<|end_of_text|>'], special_tokens=True)
    template = StreamTemplate.from_tokenizer(tok, tokens_per_frame=1, system_prompt='S')
    end = tok.convert_tokens_to_ids('<|end_of_text|>')
    assert template.stop_token_ids == {tok.eos_token_id, end}
    enc = template.encoder()
    enc.system('S')
    enc.frame()
    enc.assistant_prefix()
    word = template.tokenize(' hi')
    enc.assistant_generated(word + [end])
    assert enc.ids[-1] == end and enc.ids.count(tok.eos_token_id) == 0
    enc.assistant_prefix()
    enc.assistant_generated(word)  # stopped at the token limit: eos closes the turn
    assert enc.ids[-1] == tok.eos_token_id
