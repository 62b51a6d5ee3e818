"""One source grammar for video_publisher, live-infer, the demo and the dialogues."""

import pytest

from live_ros.data.sources import parse_source, Source, SourceError


def test_every_kind_parses_one_way(tmp_path):
    (tmp_path / 'frames').mkdir()
    bag = tmp_path / 'run.mcap'
    bag.write_bytes(b'')
    assert parse_source('synthetic:7') == Source('synthetic', 7)
    assert parse_source('camera:2') == Source('camera', 2) == parse_source('2')
    assert parse_source(f'bag:{tmp_path}/x') == Source('bag', f'{tmp_path}/x')
    assert parse_source(str(bag)) == Source('bag', str(bag))
    assert parse_source(str(tmp_path / 'frames')) == Source('folder', str(tmp_path / 'frames'))
    assert parse_source('clip.mp4') == Source('file', 'clip.mp4')
    assert parse_source('camera:0').is_live and not parse_source('clip.mp4').is_live


@pytest.mark.parametrize('spec, reason', [
    ('', 'no source given'),
    ('synthetic:train:120:16', 'names a data set'),
    ('synthetic:seven', 'integer'),
    ('camera:front', 'camera:<index>'),
])
def test_bad_specs_say_what_is_wrong(spec, reason):
    with pytest.raises(SourceError, match=reason):
        parse_source(spec)
