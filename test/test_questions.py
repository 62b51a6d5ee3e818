"""The question backlog: bounded by count and by the wait the answers ahead would cause."""

import pytest

from live_ros.streaming.questions import QueryBacklogFull, QuestionBacklog


class Clock:
    """A clock the test moves by hand (seconds)."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def answer(backlog, clock, seconds):
    """Hand the oldest question over and answer it in ``seconds``; return its id."""
    question = backlog.take()
    backlog.started(question.query_id)
    clock.now += seconds
    backlog.answered(question.query_id)
    backlog.spoke(seconds)   # the decoder step that answered ends
    return question.query_id


def test_at_most_max_queries_wait_and_ids_never_repeat():
    backlog = QuestionBacklog(max_queries=2)
    ids = [backlog.submit('What?', 0.0), backlog.submit('Where?', 0.0)]
    with pytest.raises(QueryBacklogFull,
                       match=r'2 questions of this client are waiting already \(at most 2\)'):
        backlog.submit('Who?', 0.0)
    backlog.answered(backlog.take().query_id)
    ids.append(backlog.submit('Who?', 0.0))
    assert ids == [1, 2, 3] and backlog.waiting == 2


def test_a_question_whose_answer_would_start_too_late_is_refused_at_once():
    """After an answer of 2 s on a live stream, the frames get 2 s, then each question 4 s."""
    clock = Clock()
    backlog = QuestionBacklog(max_queries=10, max_wait=7.5, clock=clock)
    backlog.submit('What?', 0.0)   # nothing measured yet: never refused for time ...
    with pytest.raises(QueryBacklogFull, match=r'an unknown time \(no answer measured yet\)'):
        backlog.submit('Why?', 0.0)   # ... unless one waits already
    answer(backlog, clock, 2.0)
    assert backlog.frames_turn_now()
    backlog.submit('A', 1.0)   # the frames' turn: 2 s
    backlog.submit('B', 1.0)   # 2 + 4 (A: its answer, then the frames' turn after it)
    with pytest.raises(QueryBacklogFull, match=r'busy: the answers ahead need about 10\.0 s '
                                               r'\(max_query_wait 7\.5 s\)'):
        backlog.submit('C', 1.0)   # 2 + 4 + 4
    clock.now += 2.0   # the frames' turn is over (its seconds, and frames came) ...
    assert backlog.frames_turn_now()
    backlog.heard()
    assert not backlog.frames_turn_now()   # ... A is being answered for 1 s
    backlog.take()
    backlog.started(2)
    clock.now += 1.0
    assert not backlog.frames_turn_now()
    backlog.submit('C', 2.0)   # 4 (A) - 1 (done) + 4 (B) = 7
    with pytest.raises(QueryBacklogFull, match='about 11.0 s'):
        backlog.submit('D', 2.0)
    assert backlog.waiting == 3


def test_offline_questions_wait_only_for_the_answers():
    clock = Clock()
    backlog = QuestionBacklog(max_queries=10, max_wait=5.0, frames_turn=False, clock=clock)
    backlog.submit('What?', 0.0)
    answer(backlog, clock, 2.0)
    assert not backlog.frames_turn_now()
    backlog.submit('A', 1.0)
    backlog.submit('B', 1.0)
    backlog.submit('C', 1.0)   # 2 + 2 + 2 = 6 > 5 for the next
    with pytest.raises(QueryBacklogFull, match='about 6.0 s'):
        backlog.submit('D', 1.0)


def test_answer_length_is_a_running_mean_and_a_reset_ends_the_frames_turn():
    clock = Clock()
    backlog = QuestionBacklog(max_wait=3.0, clock=clock)
    backlog.submit('What?', 0.0)
    answer(backlog, clock, 10.0)   # the frames' turn: at most half of max_wait, 1.5 s
    clock.now += 1.4
    assert backlog.frames_turn_now()
    backlog.drain()   # a reset ends it
    assert not backlog.frames_turn_now()
    backlog.submit('Now?', 0.0)
    answer(backlog, clock, 0.0)   # the mean: 0.7 * 10 + 0.3 * 0 = 7 s an answer
    backlog.drain()
    backlog.submit('A short one?', 0.0)
    with pytest.raises(QueryBacklogFull, match='about 8.5 s'):
        backlog.submit('And another?', 0.0)   # 7 s of answer and 1.5 s of frames ahead


def test_the_estimate_learns_how_late_answers_start():
    """Answers that start later than estimated (the model was speaking) raise the estimate."""
    clock = Clock()
    backlog = QuestionBacklog(max_wait=2.0, clock=clock)
    first = backlog.submit('What?', 0.0)   # estimate 0 s
    backlog.take()
    clock.now += 1.0   # its first words come 1 s after the question
    backlog.started(first)
    clock.now += 1.0
    backlog.answered(first)   # an answer of 1 s; the frames' turn: 1 s
    backlog.spoke(1.0)
    clock.now += 1.0
    second = backlog.submit('And now?', 0.0)   # 0 s + 0.3 s late (0.3 * 1 s)
    backlog.take()
    backlog.started(second)
    backlog.answered(second)   # at once: an answer of 0.7 s on average; late 0.3 -> 0.21 s
    clock.now += 2.0
    backlog.submit('And then?', 0.0)   # 0.21 s (nothing ahead, late 0.21 s)
    backlog.max_wait = 1.5
    with pytest.raises(QueryBacklogFull, match='about 1.6 s'):   # 2 x 0.7 + 0.21 s
        backlog.submit('Again?', 0.0)


def test_a_question_not_handed_over_in_time_is_given_up():
    clock = Clock()
    backlog = QuestionBacklog(max_wait=2.0, clock=clock)
    first = backlog.submit('What?', 0.0)
    clock.now += 1.8   # given up EXPIRY_SLACK_S before the bound, so the notice is out by then
    assert backlog.expired() == []
    clock.now += 0.1
    assert [q.query_id for q in backlog.expired()] == [first]
    assert backlog.take() is None and backlog.waiting == 1   # pending until delivered
    backlog.answered(first)
    assert backlog.waiting == 0
    # estimated 0 s, given up 1.9 s later: the estimate learns it (0.3 * 1.9 s late) ...
    backlog.max_wait = 0.5
    backlog.submit('Again?', 0.0)   # ... none waiting: never refused for time
    with pytest.raises(QueryBacklogFull, match='an unknown time'):
        backlog.submit('Again?', 0.0)
    assert backlog._late_s == pytest.approx(0.57)
    assert QuestionBacklog().expired() == []   # no bound: never


def test_questions_are_given_up_early_enough_for_first_words_in_time():
    """First words 0.5 s after hand-over: queued ones are given up 0.5 s earlier too."""
    clock = Clock()
    backlog = QuestionBacklog(max_wait=2.0, clock=clock)
    first = backlog.submit('What?', 0.0)
    backlog.take()
    clock.now += 0.5
    backlog.started(first)   # hand-over to first words: 0.5 s (the recent worst)
    backlog.answered(first)
    second = backlog.submit('And now?', 0.0)
    clock.now += 1.3
    assert backlog.expired() == []
    clock.now += 0.1   # 2 - 0.15 (slack) - 0.5 (first words) = 1.35 s
    assert [q.query_id for q in backlog.expired()] == [second]
    backlog.answered(second)   # its notice is out
    backlog.max_wait = 0.6   # first words need 0.65 s: questions get half of it, 0.3 s
    third = backlog.submit('And then?', 0.0)   # none waiting: never refused for time
    with pytest.raises(QueryBacklogFull, match='max_query_wait 0.6 s'):
        backlog.submit('And after?', 0.0)   # one waiting
    clock.now += 0.31
    assert [q.query_id for q in backlog.expired()] == [third]


def test_clients_take_turns_and_one_client_cannot_lock_the_others_out():
    backlog = QuestionBacklog(max_queries=2)
    flood = [backlog.submit(f'Flood {i}?', 0.0, 'flooder') for i in range(2)]
    with pytest.raises(QueryBacklogFull, match='2 questions of this client are waiting'):
        backlog.submit('Flood 2?', 0.0, 'flooder')
    operator = backlog.submit('What do you see?', 0.0, 'operator')   # none waiting: let in
    with pytest.raises(QueryBacklogFull, match=r'3 questions are waiting already \(at most 2'):
        backlog.submit('And now?', 0.0, 'operator')   # one waiting, the backlog full
    other = backlog.submit('Where is the cup?', 0.0)   # the anonymous client: none waiting
    with pytest.raises(QueryBacklogFull, match=r'4 questions of several clients .*at most 4'):
        backlog.submit('Hello?', 0.0, 'third')   # twice max_queries in all
    order = [backlog.take().query_id for _ in range(4)]
    assert order == [flood[0], operator, other, flood[1]]   # turns, oldest first


def test_a_clients_wait_counts_the_turns_before_it():
    """Ahead of a new client: one question of each other client, not the whole flood."""
    clock = Clock()
    backlog = QuestionBacklog(max_queries=10, max_wait=4.5, frames_turn=False, clock=clock)
    backlog.submit('What?', 0.0, 'flooder')
    answer(backlog, clock, 1.0)   # an answer: 1 s
    for i in range(5):
        backlog.submit(f'Flood {i}?', 0.0, 'flooder')   # 0, 1, 2, 3, 4 s ahead
    with pytest.raises(QueryBacklogFull, match='about 5.0 s'):
        backlog.submit('Flood 5?', 0.0, 'flooder')
    # the flooder had the last turn: the operator goes first, nothing ahead of it
    backlog.max_wait = 0.5
    backlog.submit('What do you see?', 0.0, 'operator')
    assert [backlog.take().client for _ in range(2)] == ['operator', 'flooder']
    with pytest.raises(QueryBacklogFull, match='about 2.0 s'):   # the two handed over, then
        backlog.submit('And now?', 0.0, 'operator')   # its turn (served before the flooder)


def test_after_the_models_own_words_and_a_frame_a_question_near_its_bound_goes_first():
    """The frames' turn holds answers back; a question the model talked over may go first.

    But only after one frame: two responses never run back to back.
    """
    clock = Clock()
    for own in (True, False):
        backlog = QuestionBacklog(max_wait=2.0, clock=clock)
        backlog.submit('What?', 0.0)
        backlog.spoke(1.0, own=own)   # the model spoke for 1 s (its own words, or an answer)
        assert backlog.frames_turn_now()
        clock.now += 1.6   # 2 - 0.15 (slack) - 0.3 (yield): 1.55 s asked, 0.6 s of the turn
        backlog.spoke(1.0, own=own)   # ... and again, no frame since
        assert backlog.frames_turn_now()   # near its bound, but no frame yet: the frames' turn
        backlog.heard()                    # one frame decoded, 1 s of the turn left
        assert backlog.frames_turn_now() is not own
