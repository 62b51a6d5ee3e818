"""A ROS_DOMAIN_ID of our own: one that no process on this machine uses right now.

The project's ROS network rule gives every run (the demo, the tests, CI) its own domain, so two
runs on one machine never see each other's nodes. A Fast DDS participant of domain d holds
ports 7410 + 250 d .. 7649 + 250 d: as UDP sockets, and as shared-memory port files in /dev/shm
(shared even across network namespaces). A port file counts only while a live process holds a
lock on it (/proc/locks): a killed process leaves its files behind, unlocked.

Standard library only: scripts/env.sh runs this file as a script (``python domain_id.py
[seed]`` prints one) before anything of ours is importable.
"""

import os
import re
import sys
from pathlib import Path

# 1..101: the domain ids Fast DDS maps to valid ports everywhere.
DOMAIN_IDS = range(1, 102)


def _domain_ports(domain_id: int) -> range:
    low = 7410 + 250 * domain_id
    return range(low, low + 240)


def ports_in_use() -> set:
    """Ports held here for DDS: UDP sockets, and Fast DDS port files a process holds locked."""
    ports = set()
    for table in ('/proc/net/udp', '/proc/net/udp6'):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 1:
                ports.add(int(fields[1].rsplit(':', 1)[1], 16))
    try:
        locked = {int(m) for m in re.findall(r'\b[0-9a-f]+:[0-9a-f]+:(\d+)\b',
                                              Path('/proc/locks').read_text())}
    except OSError:
        locked = set()
    for path in Path('/dev/shm').glob('fast*_port*'):
        match = re.search(r'_port(\d+)', path.name)
        try:
            held = path.stat().st_ino in locked
        except OSError:   # gone meanwhile
            continue
        if match and held:
            ports.add(int(match.group(1)))
    return ports


def domain_in_use(domain_id: int, ports=None) -> bool:
    """Tell whether a process here already uses this domain."""
    span = _domain_ports(domain_id)
    return any(port in span for port in (ports_in_use() if ports is None else ports))


def pick_domain_id(seed=None) -> int:
    """Choose a free domain id, starting from one derived from ``seed`` (default: this PID)."""
    start = (os.getpid() if seed is None else seed) % len(DOMAIN_IDS)
    ports = ports_in_use()
    for i in range(len(DOMAIN_IDS)):
        domain_id = DOMAIN_IDS[(start + i) % len(DOMAIN_IDS)]
        if not domain_in_use(domain_id, ports):
            return domain_id
    return DOMAIN_IDS[start]   # all taken: still one of ours, as the bash rule did


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1 or (args and not args[0].isdigit()):
        print('usage: domain_id.py [seed]   prints a ROS_DOMAIN_ID no process here uses',
              file=sys.stderr)
        return 2
    print(pick_domain_id(int(args[0]) if args else None))
    return 0


if __name__ == '__main__':
    sys.exit(main())
