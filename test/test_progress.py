"""Progress bars show on a terminal only (CI logs and ros2 launch stay readable)."""

import fcntl
import io
import os
import pty
import struct
import termios

from live_ros.progress import progress


def test_bar_is_silent_off_a_terminal(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr('sys.stderr', err)
    assert list(progress(range(5), desc='work')) == list(range(5))
    assert err.getvalue() == ''


def test_bar_draws_on_a_terminal(monkeypatch):
    main, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack('HHHH', 24, 100, 0, 0))
    terminal = os.fdopen(secondary, 'w')
    monkeypatch.setattr('sys.stderr', terminal)
    try:
        assert list(progress(range(5), desc='work')) == list(range(5))
    finally:
        terminal.close()
    drawn = b''
    try:
        while chunk := os.read(main, 4096):   # everything drawn, up to the closed end
            drawn += chunk
    except OSError:   # Linux ptys end with EIO once the other side is closed
        pass
    finally:
        os.close(main)
    drawn = drawn.decode()
    assert 'work' in drawn and '5/5' in drawn
