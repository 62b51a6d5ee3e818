"""The error-analysis tools: frame facts, pooled grids, the probe, the slot of a word."""

import torch

from live_ros.analysis.probe import fit_probe, frame_facts, pair, pooled
from live_ros.analysis.slots import slot_of
from live_ros.data.synthetic import FPS, SyntheticWorld


def test_frame_facts_follow_the_world():
    world = SyntheticWorld(3)
    event = world.events_until(40)[0]
    facts = frame_facts(world, event.frame)
    assert facts['change kind'] == event.kind and facts['change subject'] == event.subject
    state = world.state_at(event.frame / FPS)
    for shape, (colour, cell) in state.objects.items():
        assert facts[f'{shape} colour'] == colour and facts[f'{shape} cell'] == cell
    assert facts['tower height'] == str(len(state.tower))
    assert frame_facts(world, event.frame - 1)['change kind'] == 'none'


def test_pooled_grid_and_pairs():
    hidden = torch.arange(2 * 17 * 3, dtype=torch.float32).reshape(2, 17, 3)   # CLS + 4 x 4
    assert pooled(hidden, 0).shape == (2, 1, 3)
    two = pooled(hidden, 2)
    assert two.shape == (2, 5, 3)
    assert torch.equal(two[:, 0], hidden[:, 0])                 # the global token first
    assert torch.allclose(two[0, 1], hidden[0, [1, 2, 5, 6]].mean(0))   # top-left 2 x 2 cell
    x = torch.arange(4, dtype=torch.float32)[:, None]
    first = torch.tensor([True, False, True, False]).numpy()
    assert pair(x, first).tolist() == [[0.0, 1.0, 1.0], [2.0, 3.0, 1.0]]


def test_probe_reads_a_separable_fact_and_not_noise():
    gen = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (300,), generator=gen)
    x = torch.randn(300, 8, generator=gen) * 0.1
    x[:, 0] += y.float() * 3.0                                   # the fact is in dimension 0
    right = fit_probe(x[:200], y[:200], x[200:], 3) == y[200:]
    assert right.float().mean() > 0.95
    noise = torch.randn(300, 8, generator=gen)
    chance = fit_probe(noise[:200], y[:200], noise[200:], 3) == y[200:]
    assert chance.float().mean() < 0.6


def test_slot_of_a_word():
    assert [slot_of(w) for w in ('red', 'circle', 'blocks', 'disappears', 'three', '4', 'left',
                                 'the')] == ['colour', 'shape', 'shape', 'action', 'number',
                                             'number', 'position', 'other']
