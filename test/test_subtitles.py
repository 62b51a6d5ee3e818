"""Teach it your robot: hand-written subtitles of a bag or a video -> dialogues -> training."""

import json
import os

import pytest

from live_ros.cli.convert import main as convert
from live_ros.cli.infer import main as infer
from live_ros.cli.train import load_config, train
from live_ros.data.format import load_dialogues
from live_ros.data.subtitles import (check_cues, Cue, cues_to_turns, NARRATION_ACK,
                                     read_subtitles, SubtitleError)
from live_ros.data.video import write_video
from live_ros.testing import tiny_models

from bag_helpers import camera_images, frame, write_bag

FINETUNE = os.path.join(os.path.dirname(__file__), '..', 'config', 'train', 'finetune.yaml')
SRT = """\
1
00:00:00,000 --> 00:00:00,400
Q: Tell me when the light changes.

2
00:00:00,600 --> 00:00:01,000
The light turns <i>red</i>.

3
00:00:01,200 --> 00:00:01,300
Q: What colour is it?

4
00:00:01,200 --> 00:00:01,400
A: It is red.
"""
VTT = """\
WEBVTT - made by hand

NOTE the same cues as the SRT, in WebVTT

intro
00:00.000 --> 00:00.400 align:start
Q: Tell me when the light changes.

00:00.600 --> 00:01.000
The light turns red.

00:01.200 --> 00:01.300
Q: What colour is it?

00:00:01.200 --> 00:00:01.400
A: It is red.
"""


def write(path, text):
    with open(path, 'w') as f:
        f.write(text)
    return str(path)


def test_srt_and_webvtt_read_the_same_cues(tmp_path):
    srt = read_subtitles(write(tmp_path / 'a.srt', SRT))
    vtt = read_subtitles(write(tmp_path / 'a.vtt', VTT))
    assert [(c.start, c.end, c.text) for c in srt] == [(c.start, c.end, c.text) for c in vtt]
    assert [c.kind for c in srt] == ['question', 'narration', 'question', 'answer']
    assert srt[1].text == 'The light turns red.' and srt[3].body == 'It is red.'
    assert [c.line for c in srt] == [2, 6, 10, 14]


def test_cues_become_turns_on_the_frame_grid(tmp_path):
    cues = read_subtitles(write(tmp_path / 'a.srt', SRT))
    turns = [(t.role, t.time, t.text) for t in cues_to_turns(cues, fps=2.0)]
    assert turns == [
        ('user', 0.0, 'Tell me when the light changes.'),   # the instruction cue at 0
        ('assistant', 0.0, NARRATION_ACK),
        ('assistant', 1.0, 'The light turns red.'),          # 0.6 s: seen at the 1.0 s frame
        ('user', 1.5, 'What colour is it?'),
        ('assistant', 1.5, 'It is red.'),
    ]
    # an answer written a little after its question is still given at once, as the session
    # answers
    late = [Cue(0.6, 0.8, 'Q: Where is it?', 2), Cue(1.7, 2.0, 'A: On the left.', 6)]
    assert [(t.role, t.time) for t in cues_to_turns(late, fps=2.0, instruction='')] == [
        ('user', 1.0), ('assistant', 1.0)]
    # no instruction cue: the narration request opens the stream; two narrations on one
    # frame are one response
    plain = [Cue(0.0, 0.1, 'A cup.', 2), Cue(0.2, 0.3, 'A plate.', 6)]
    turns = cues_to_turns(plain, fps=2.0, instruction='Narrate.')
    assert [(t.role, t.time, t.text) for t in turns] == [
        ('user', 0.0, 'Narrate.'), ('assistant', 0.0, 'A cup.'),
        ('assistant', 0.5, 'A plate.')]


@pytest.mark.parametrize('text, reason', [
    ('1\n00:00:01,000\nno arrow\n', 'a.srt:1: a cue needs a timing line'),
    ('1\n00:00:01 --> 00:00:02,000\nbad time\n', "a.srt:2: '00:00:01' is not a time"),
    ('1\n00:00:02,000 --> 00:00:01,000\nbackwards\n', 'a.srt:2: the cue ends before it starts'),
    ('1\n00:00:01,000 --> 00:00:02,000\n\n', 'a.srt:2: the cue has no text'),
    ('\n\n', 'a.srt: no cues'),
    ('1\n00:00:01,000 --> 00:00:02,000\nQ:\n', 'a.srt:2: Q: with nothing after it'),
    ('1\n00:00:01,000 --> 00:00:01,500\nOne.\n\n2\n00:00:01,200 --> 00:00:02,000\nTwo.\n',
     'a.srt:6: the cue starts at 1.200 s, while the cue at line 2 shows until 1.500 s'),
    ('1\n00:00:01,000 --> 00:00:01,500\nA: orphan\n', 'a.srt:2: an A: cue must follow a Q:'),
    ('1\n00:00:03,000 --> 00:00:03,500\nOne.\n\n2\n00:00:01,000 --> 00:00:01,500\nTwo.\n',
     'a.srt:6: the cue starts before the cue at line 2'),
])
def test_malformed_subtitles_are_refused_with_their_line(tmp_path, text, reason):
    path = write(tmp_path / 'a.srt', text)
    with pytest.raises(SubtitleError) as err:
        check_cues(read_subtitles(path), path)
    assert reason in str(err.value)


def test_wrong_files_are_refused(tmp_path):
    with pytest.raises(SubtitleError, match='must be .srt or .vtt'):
        read_subtitles(write(tmp_path / 'a.txt', SRT))
    with pytest.raises(SubtitleError, match='a.vtt:1: a WebVTT file starts with the line WEBVTT'):
        read_subtitles(write(tmp_path / 'a.vtt', SRT))


def test_convert_refuses_cues_past_the_end_and_a_bag_without_the_topic(tmp_path, capsys):
    clip = str(tmp_path / 'clip.avi')
    write_video(clip, [frame(i) for i in range(8)], 4.0)   # 2 s: frames to 1.5 s at 2 fps
    subs = write(tmp_path / 'clip.srt', '1\n00:00:01,700 --> 00:00:01,900\nLate.\n')
    with pytest.raises(SystemExit) as done:
        convert(['subtitles', clip, subs, str(tmp_path / 'o.json')])
    assert done.value.code == 2
    assert 'clip.srt:2: the cue starts at 1.700 s, past the end of the media' in \
        capsys.readouterr().err
    bag = write_bag(tmp_path / 'bag', camera_images())
    with pytest.raises(SystemExit):
        convert(['subtitles', bag, write(tmp_path / 'b.srt', SRT), str(tmp_path / 'o.json'),
                 '--topic', '/front/image'])
    assert "no image topic '/front/image' (image topics: /camera/image_raw)" in \
        capsys.readouterr().err
    assert not os.path.exists(tmp_path / 'o.json')


@pytest.fixture(scope='module')
def tiny_model(tmp_path_factory):
    root = tmp_path_factory.mktemp('teach')
    model, _ = tiny_models.build_tiny_live_model(root)
    return str(model.save_pretrained(root / 'model'))


def test_bag_and_srt_convert_train_and_load(tiny_model, tmp_path, capsys):
    """The README path on a tiny model: record, subtitle, convert with a split, fine-tune, run."""
    images = camera_images(n=20, rate=5.0)   # 3.8 s of a 5 Hz camera with stamp jitter
    images += [('/rear/image', 'sensor_msgs/msg/Image', s, r, frame(0))
               for _, _, s, r, _ in images[:3]]
    bag = write_bag(tmp_path / 'rec', images)
    subs = write(tmp_path / 'rec.srt', SRT + '\n5\n00:00:02,600 --> 00:00:03,000\n'
                 'The light turns green.\n')
    out = str(tmp_path / 'rec.json')
    assert convert(['subtitles', bag, subs, out, '--topic', '/camera/image_raw',
                    '--split-at', '2']) == 0
    train_part, test_part = (load_dialogues(str(tmp_path / f'rec.{p}.json'))[0]
                             for p in ('train', 'test'))
    with open(tmp_path / 'rec.train.json') as f:
        assert json.load(f)[0]['video'] == 'rec'   # relative: the folder can move
    assert train_part.video == bag and train_part.meta['topic'] == '/camera/image_raw'
    assert train_part.num_frames == 4 and test_part.start == 2.0 and test_part.num_frames == 3
    assert [t.text for t in test_part.turns] == [
        'Tell me when the light changes.', NARRATION_ACK, 'The light turns green.']
    assert test_part.turns[-1].time == 1.0   # 2.6 s in the bag, 0.6 s into the part: ceiled

    cfg = load_config(FINETUNE, [f'model.init={tiny_model}', f'data.train={out[:-5]}.train.json',
                                 f'data.eval={out[:-5]}.test.json', 'data.feature_cache=null',
                                 'data.context_windows=false', 'train.max_steps=2',
                                 'train.save_steps=2', f'train.output_dir={tmp_path / "run"}'])
    trainer, final = train(cfg)
    assert trainer.state.global_step == 2
    assert os.path.isfile(os.path.join(final, 'adapter', 'adapter_model.safetensors'))
    capsys.readouterr()
    assert infer([bag, '--topic', '/camera/image_raw', '--model', final, '--threshold', '1',
                  '--max-new-tokens', '2']) == 0
    assert '8 frames at 2 fps' in capsys.readouterr().err


def test_a_folder_of_pairs_converts_in_one_call(tmp_path):
    """X.srt beside X.avi, Y.vtt beside bag Y/: one dialogue each; a lone subtitle is refused."""
    folder = tmp_path / 'recordings'
    folder.mkdir()
    write_video(str(folder / 'kitchen.avi'), [frame(i) for i in range(8)], 2.0)
    write(folder / 'kitchen.srt', '1\n00:00:01,000 --> 00:00:01,500\nThe kettle boils.\n')
    write_bag(folder / 'lab', camera_images(n=20, rate=5.0))
    write(folder / 'lab.vtt', 'WEBVTT\n\n00:01.000 --> 00:01.500\nThe arm moves.\n')
    out = str(tmp_path / 'all.json')
    assert convert(['subtitles', str(folder), out]) == 0
    kitchen, lab = load_dialogues(out)
    assert kitchen.video.endswith('kitchen.avi') and lab.video.endswith('lab')
    assert [t.text for t in kitchen.turns][-1] == 'The kettle boils.'
    assert [t.text for t in lab.turns][-1] == 'The arm moves.'
    write(folder / 'orphan.srt', '1\n00:00:01,000 --> 00:00:01,500\nNothing.\n')
    with pytest.raises(SystemExit):
        convert(['subtitles', str(folder), out])
