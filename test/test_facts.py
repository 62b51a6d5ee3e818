"""Content metrics: the facts of a sentence, the demo's marks, content-aware matching."""

from live_ros.data.facts import WorldTruth, facts, same_facts
from live_ros.data.synthetic import (FPS, NARRATE, NARRATE_ACK, STOP_ACK, STOP_NARRATING,
                                     SyntheticWorld)
from live_ros.evaluation.free_running import match, stops_obeyed


def test_facts_of_the_worlds_sentences():
    assert facts('A red circle appears.') == {
        ('object', 'circle'), ('colour', 'red'), ('action', 'appear')}
    assert facts('Step 2 of 3: a red block is stacked. The tower is complete.') == {
        ('object', 'tower'), ('colour', 'red'), ('action', 'stack'), ('action', 'complete'),
        ('number', 2), ('number', 3)}
    assert facts('The square is at the top left.') == {
        ('object', 'square'), ('position', 'top left')}
    assert facts('No, there is no square.') == {
        ('reply', 'no'), ('number', 0), ('object', 'square')}
    assert facts('There are two shapes.') == {('object', 'shapes'), ('number', 2)}


def test_same_facts_ignores_wording_not_content():
    assert same_facts('A red circle appears.', 'A red circle has appeared.')
    assert same_facts('The circle turns green.', 'The circle has turned green.')
    assert not same_facts('A red circle appears.', 'A blue circle appears.')
    assert not same_facts('A red circle appears.', 'The red circle disappears.')
    assert not same_facts('The circle is at the top left.', 'The circle is at the top right.')
    assert not same_facts('There are two shapes.', 'There are three shapes.')
    assert not same_facts('Next, stack block 2 of 3.', 'Next, stack block 3 of 4.')


def test_world_truth_marks_narration_and_answers():
    world = SyntheticWorld(200007)
    events = world.events_until(120)
    e = events[0]
    truth = WorldTruth(world, window=2.0)
    t = e.frame / FPS
    assert truth.spontaneous(e.text, t) == (True, e.text)
    assert truth.spontaneous(e.text, t + 1.0)[0]          # within the window
    assert not truth.spontaneous(e.text, t + 10.0)[0]     # right words, wrong time
    wrong = e.text
    for a, b in (('red', 'blue'), ('blue', 'red'), ('green', 'yellow'), ('yellow', 'green')):
        if a in wrong:
            wrong = wrong.replace(a, b)
            break
    assert wrong != e.text
    right, true = truth.spontaneous(wrong, t)
    assert not right and true == e.text
    q = 'How many shapes are there?'
    answer = world.answer(q, t)
    assert truth.answer(q, answer, t) == (True, answer)
    assert not truth.answer(q, 'There are five shapes.', t)[0]
    assert truth.answer(NARRATE[0], NARRATE_ACK, 0.0) == (True, NARRATE_ACK)
    assert truth.answer(STOP_NARRATING[0], STOP_ACK, 3.0) == (True, STOP_ACK)


def test_world_answers_are_the_dialogue_answers():
    """question() draws through answer(): the data and the checker share one truth."""
    d = SyntheticWorld(5).dialogue(120.0, 'narration')
    world = SyntheticWorld(5)
    pairs = [(a, b) for a, b in zip(d.turns, d.turns[1:])
             if a.role == 'user' and b.role == 'assistant']
    assert len(pairs) >= 3
    for q, a in pairs:
        assert world.answer(q.text, q.time) == a.text


def test_content_matching_needs_the_facts():
    true = [(1.0, 'A red circle appears.'), (5.0, 'The square turns blue.')]
    pred = [{'time': 1.5, 'text': 'A red circle appears.'},
            {'time': 5.0, 'text': 'The square turns green.'}]
    t, p = [x for x, _ in true], [x['time'] for x in pred]
    assert match(t, p, 2.0) == [(0, 0), (1, 1)]
    assert match(t, p, 2.0, lambda i, j: same_facts(pred[j]['text'], true[i][1])) == [(0, 0)]


def test_stop_is_obeyed_only_when_nothing_untrue_follows():
    answers = [(10.0, STOP_ACK, STOP_NARRATING[0]), (40.0, 'There is one shape.',
                                                     'How many shapes are there?')]
    pred = [{'time': 11.0, 'text': 'A red circle appears.'},  # within the grace period
            {'time': 20.0, 'text': 'The circle turns blue.'}]
    assert stops_obeyed(answers, pred, true_preds=set()) == [False]
    assert stops_obeyed(answers, pred, true_preds={1}) == [True]
    assert stops_obeyed(answers, pred[:1], true_preds=set()) == [True]
