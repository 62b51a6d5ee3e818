"""Template sentences rewritten by a local causal LM into natural ones (the paper uses Llama-3).

Only the text changes: times and roles stay, so a weak LM cannot break the ground truth.
"""

from live_ros.data.format import Turn

REWRITE_PROMPT = ('Rewrite the following sentence from a conversation about a video so that it '
                  'sounds natural and keeps its meaning. Reply with the sentence only.\n'
                  'Sentence: {text}\nRewritten:')


def rewrite(dialogues, lm_path, max_new_tokens=40, roles=('user', 'assistant')):
    """Rewrite turn texts with a local causal LM (greedy); timing is never touched.

    An empty or multi-line rewrite keeps the original text, so a weak LM cannot break the
    dialogue's ground truth.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(lm_path)
    lm = AutoModelForCausalLM.from_pretrained(lm_path).eval()
    cache = {}
    for d in dialogues:
        new = []
        for t in d.turns:
            if t.role in roles and t.text not in cache:
                ids = tok(REWRITE_PROMPT.format(text=t.text), return_tensors='pt')
                with torch.no_grad():
                    out = lm.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                                      pad_token_id=tok.eos_token_id)
                text = tok.decode(out[0, ids['input_ids'].shape[1]:], skip_special_tokens=True)
                text = text.strip().split('\n')[0].strip()
                cache[t.text] = text if text else t.text
            new.append(Turn(t.role, t.time, cache.get(t.text, t.text)))
        d.turns = new
    return dialogues
