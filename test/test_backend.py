"""The fast engine keeps the eager path's results.

Static cache, compiled steps, merged LoRA, batched backlog, one host read per frame,
incremental text; tiny random models on the CPU.
"""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from live_ros.model.live_model import LiveModel
from live_ros.streaming import backend as backend_module
from live_ros.streaming.session import StreamingSession
from live_ros.streaming.text_stream import TextStream
import test_session
from live_ros.testing.tiny_models import build_tiny_live_model, save_tiny_llama, tiny_config

TOL = dict(atol=1e-5, rtol=1e-5)


tiny = test_session.tiny   # a steered tiny model: (model, silent frame, speaking frame)


def script(silent, speak):
    """Frames (speaking at 3 and 9), a question at 4.0 s: exercises every kind of feed."""
    frames = [(speak if i in (3, 9) else silent, 0.5 * i) for i in range(14)]
    return frames, [('What is going on?', 4.0)]


def run(session, frames, queries, batched=False):
    """Feed a script; return per-frame logits and the responses."""
    for text, t in queries:
        session.ask(text, t)
    logits = []
    if batched:
        returned = session.push_frames([f for f, _ in frames], [t for _, t in frames])
        assert returned == list(session.responses)   # every response, also of single frames
        return [session.last_logits.clone()], list(session.responses)
    for frame, t in frames:
        session.push_frame(frame, t)
        logits.append(session.last_logits.clone())
    return logits, list(session.responses)


def same_responses(a, b):
    """Check same words at the same frames (query ids as asked or not: ids keep counting)."""
    assert [(bool(r.query_id), r.frame_index, r.stream_time, r.token_ids) for r in a] == \
        [(bool(r.query_id), r.frame_index, r.stream_time, r.token_ids) for r in b]


@pytest.mark.parametrize('budget', [None, 160], ids=['no-rebuild', 'rebuilds'])
def test_fast_engine_equals_eager(tiny, budget, monkeypatch):
    model, silent, speak = tiny
    monkeypatch.setattr(backend_module, 'VIEW_BUCKET', 32)   # steps cross view buckets
    frames, queries = script(silent, speak)
    sessions = [StreamingSession(model, max_new_tokens=5, context_budget=budget, engine=engine)
                for engine in ('eager', 'fast')]
    (eager_logits, eager), (fast_logits, fast) = [run(s, frames, queries) for s in sessions]
    for a, b in zip(eager_logits, fast_logits):
        torch.testing.assert_close(a, b, **TOL)
    same_responses(eager, fast)
    assert any(r.query_id == 0 for r in fast) and any(r.query_id for r in fast)
    assert sessions[0].cache_tokens == sessions[1].cache_tokens
    if budget:
        assert sessions[1].rebuilds > 0 and sessions[1].rebuilds == sessions[0].rebuilds
    # reset() zeroes the same static cache: a second stream gives the same results
    sessions[1].reset()
    again_logits, again = run(sessions[1], frames, queries)
    same_responses(fast, again)
    torch.testing.assert_close(again_logits[-1], fast_logits[-1], **TOL)


def test_fast_engine_needs_a_bounded_context(tiny):
    model, _, _ = tiny
    with pytest.raises(ValueError, match='bounded context'):
        StreamingSession(model, engine='fast', context_mode='reference')
    with pytest.raises(ValueError, match='engine must be'):
        StreamingSession(model, engine='turbo')


def test_compiled_steps_equal_eager_and_never_recompile(tiny):
    """Frame and decode steps through torch.compile (a CPU backend here, CUDA graphs on a GPU)."""
    model, silent, speak = tiny
    frames, queries = script(silent, speak)
    torch._dynamo.reset()
    from torch._dynamo.utils import counters
    counters.clear()
    compiled = StreamingSession(model, max_new_tokens=5, engine='fast',
                                compile='backend:aot_eager')
    eager = StreamingSession(model, max_new_tokens=5, engine='eager')
    warm = frames[:5]   # silent frames, a speaking one and its response: every step shape
    run(compiled, warm, [])
    graphs = counters['stats']['unique_graphs']
    assert graphs >= 2, 'frame and decode steps should have been compiled'
    assert compiled.backend.compiled_lengths >= {1, model.tokens_per_frame + 1}
    compiled.reset()
    compiled_logits, compiled_out = run(compiled, frames, queries)
    assert counters['stats']['unique_graphs'] == graphs, 'a step recompiled after warm-up'
    eager_logits, eager_out = run(eager, frames, queries)
    for a, b in zip(eager_logits, compiled_logits):
        torch.testing.assert_close(a, b, **TOL)
    same_responses(eager_out, compiled_out)


@pytest.mark.parametrize('engine', ['eager', 'fast'])
def test_backlog_in_one_forward_equals_one_by_one(tiny, engine):
    model, silent, speak = tiny
    frames, queries = script(silent, speak)
    one = StreamingSession(model, max_new_tokens=5, engine=engine, record_frames=True)
    batch = StreamingSession(model, max_new_tokens=5, engine=engine, record_frames=True)
    one_logits, one_out = run(one, frames, queries)
    forwards = []
    real_feed = batch.backend.feed
    batch.backend.feed = lambda ids, *a, **k: forwards.append(len(ids)) or real_feed(ids, *a, **k)
    batch_logits, batch_out = run(batch, frames, queries, batched=True)
    same_responses(one_out, batch_out)
    torch.testing.assert_close(one_logits[-1], batch_logits[-1], **TOL)
    assert one.fed_ids == batch.fed_ids and one.cache_tokens == batch.cache_tokens
    torch.testing.assert_close(torch.cat(one.fed_frames), torch.cat(batch.fed_frames))
    frame_feeds = [n for n in forwards if n > model.tokens_per_frame + 3]
    assert frame_feeds and len(frame_feeds) < len(frames) - 4, forwards   # batches happened


class ScalarReads(TorchDispatchMode):
    """Count implicit device-to-host reads (.item(), int(t), bool(t): a sync on a GPU)."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += func is torch.ops.aten._local_scalar_dense.default
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize('engine', ['eager', 'fast'])
def test_one_host_read_per_silent_frame(tiny, engine, monkeypatch):
    model, silent, _ = tiny
    session = StreamingSession(model, engine=engine)
    session.push_frame(silent, 0.0)
    reads = []
    real = backend_module.to_host
    monkeypatch.setattr(backend_module, 'to_host', lambda t: reads.append(t.shape) or real(t))
    with ScalarReads() as scalars:
        for i in range(1, 4):
            assert session.push_frame(silent, 0.5 * i) == []
    assert len(reads) == 3 and scalars.count == 0, (reads, scalars.count)


@pytest.mark.parametrize('tied', [False, True], ids=['untied', 'tied-embeddings'])
def test_merged_lora_gives_the_same_logits(tmp_path, tied):
    """Merge with merge_and_unload; a tied head (SmolLM2) is untied so embeddings stay."""
    llm = save_tiny_llama(str(tmp_path / 'llm'), tie_word_embeddings=tied)
    cfg = tiny_config(tmp_path).replace(llm=llm)
    torch.manual_seed(0)
    model = LiveModel.from_config(cfg, device='cpu', dtype=torch.float32)
    with torch.no_grad():   # a trained adapter: LoRA B and the connector not at their init
        for name, param in model.lm.named_parameters():
            if 'lora_B' in name:
                param.normal_(0, 0.2)
    assert any('lm_head' in name and 'lora' in name for name, _ in model.lm.named_parameters())
    table = model.base_lm.get_input_embeddings().weight.detach().clone()
    ids = torch.tensor([model.template.encoder().t.tokenize('Hello there, what now?')])
    frame_ids = torch.tensor([[model.frame_token_id] * model.tokens_per_frame])
    ids = torch.cat([ids, frame_ids], 1)
    frames = torch.randn(model.tokens_per_frame, model.base_lm.config.hidden_size)
    with torch.no_grad():
        before = model(ids, frame_embeds=frames).logits
        connector = model.connector(torch.ones(1, model.vision.hidden_size))
        assert model.merge_lora()
        after = model(ids, frame_embeds=frames).logits
        torch.testing.assert_close(model.connector(torch.ones(1, model.vision.hidden_size)),
                                   connector)
    assert not any('lora' in name for name, _ in model.lm.named_parameters())
    torch.testing.assert_close(after, before, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(model.base_lm.get_input_embeddings().weight, table)
    assert not model.merge_lora()   # nothing left to merge


def test_fast_engine_merges_lora_at_load(tmp_path):
    model, _ = build_tiny_live_model(tmp_path, engine='fast')
    assert not hasattr(model.lm, 'peft_config')


def test_text_stream_equals_full_decode_at_every_token(tiny):
    model, _, _ = tiny
    tok = model.tokenizer
    text = 'Ünïcödé — a cup, 3 blocks… naïve café ✓ then "quotes" and  two  spaces.'
    ids = tok(text, add_special_tokens=False)['input_ids']
    stream = TextStream(tok)
    for n, token in enumerate(ids, 1):
        partial = stream.add(token)
        full = tok.decode(ids[:n], skip_special_tokens=True)
        assert full.startswith(partial), (partial, full)
        if not full.endswith('\ufffd'):
            assert partial == full
    assert stream.text == tok.decode(ids, skip_special_tokens=True)


@pytest.mark.parametrize('engine', ['eager', 'fast'])
def test_one_host_read_per_decoded_token_and_the_cache_stays_exact(tiny, engine):
    """Decoding runs one step ahead: the read-back of a token overlaps the next forward."""
    model, silent, speak = tiny
    session = StreamingSession(model, max_new_tokens=6, engine=engine, record_frames=True)
    session.push_frame(silent, 0.0)
    with ScalarReads() as scalars:
        (response,) = session.push_frame(speak, 0.5)
    assert scalars.count == len(response.token_ids)
    # the speculative step after the last token was taken back: cache == what was fed
    assert session.cache_tokens == len(session.fed_ids) == session.enc.fed
    ids = torch.tensor([session.fed_ids])
    with torch.no_grad():
        full = model(ids, frame_embeds=torch.cat(session.fed_frames)).logits[0, -1].float()
    torch.testing.assert_close(session.last_logits, full, atol=1e-4, rtol=1e-4)
