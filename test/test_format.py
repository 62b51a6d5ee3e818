"""The streaming dialogue format: round trips, path resolution, stream order, frames."""

import json
import os

import numpy as np
import pytest

from live_ros.data.format import Dialogue, load_dialogues, save_dialogues, stream_events, Turn
from live_ros.data.frames import dialogue_frames
from live_ros.data.synthetic import SyntheticWorld


def _dialogue():
    return Dialogue(video='clip.mp4', fps=2.0, duration=3.0, system='Be brief.',
                    turns=[Turn('user', -1.0, 'Narrate.'), Turn('user', 1.0, 'What now?'),
                           Turn('assistant', 1.0, 'A cup.'), Turn('assistant', 2.4, 'Done.')])


@pytest.mark.parametrize('name', ['d.json', 'd.jsonl'])
def test_round_trip_and_relative_paths(tmp_path, name):
    path = str(tmp_path / name)
    save_dialogues([_dialogue(), _dialogue()], path)
    back = load_dialogues(path)
    assert len(back) == 2
    assert back[0].video == os.path.join(str(tmp_path), 'clip.mp4')
    assert back[0].turns == _dialogue().turns and back[0].system == 'Be brief.'


def test_single_object_file_and_validation(tmp_path):
    path = tmp_path / 'one.json'
    path.write_text(json.dumps({'video': 'synthetic:4', 'turns': [
        {'role': 'assistant', 'time': 5, 'text': 'x'}]}))
    (d,) = load_dialogues(str(path))
    assert d.video == 'synthetic:4' and d.duration == 5.0 and d.fps == 2.0
    with pytest.raises(ValueError):
        Dialogue.from_dict({'video': 'a', 'turns': [{'role': 'robot', 'time': 0, 'text': ''}]})
    with pytest.raises(ValueError):
        Dialogue.from_dict({'turns': []})


def test_stream_events_place_turns_after_the_frames_they_have_seen():
    d = _dialogue()
    assert d.num_frames == 7 and d.frame_of(2.4) == 4 and d.frame_of(-1) == -1
    ev = [(k, x if k == 'frame' else x.text) for k, x in stream_events(d)]
    assert ev[:4] == [('turn', 'Narrate.'), ('frame', 0), ('frame', 1), ('frame', 2)]
    assert ev[4:6] == [('turn', 'What now?'), ('turn', 'A cup.')]
    assert ev[6:9] == [('frame', 3), ('frame', 4), ('turn', 'Done.')]
    assert ev[-1] == ('frame', 6)


def test_synthetic_source_renders_the_world():
    d = SyntheticWorld(9).dialogue(4.0)
    frames = dialogue_frames(d)
    assert len(frames) == d.num_frames == 9
    assert np.array_equal(frames[5], SyntheticWorld(9).render(2.5))
    d2 = Dialogue.from_dict(d.to_dict())
    d2.start = 1.0
    assert np.array_equal(dialogue_frames(d2)[0], frames[2])
