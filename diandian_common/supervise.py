"""``make run``'s process supervisor: supervisord runs the Procfile's processes, restarts one
that dies instead of stopping the stack, and stops them in order on Ctrl-C.

``python -m diandian_common.supervise run NAME...`` (the last step of scripts/start-stack.sh)
writes ``$VAR_DIR/supervisor/supervisord.conf`` from the Procfile, the one list of processes,
and runs supervisord with it in the foreground:

- A process that exits is started again: at once if it had been up for :data:`START_SECONDS`,
  otherwise after 1 s, 2 s, 3 s … (supervisord's backoff), giving up after
  :data:`START_RETRIES` failed starts in a row. Each restart is said on the terminal:
  ``restarting orders-worker (terminated by SIGKILL) in 0 s``.
- Ctrl-C (SIGINT), SIGTERM or a closed terminal (SIGHUP) stops the gateway, the APIs, the
  workers (Celery's warm shutdown: running tasks finish, prefetched messages go back to their
  queue) and the schedulers together, and Redis only once they are all gone, so the messages
  they give back reach it. Each is given :data:`STOP_WAIT_SECONDS`, then killed with its children.
  Between the two, ``give-back`` puts whatever a worker still held (one killed when its warm
  shutdown outlasted the wait) back on its queue: nothing waits an hour for the next start.
- Each process's output reaches the terminal through ``listen`` (supervisord's event
  listener), one line at a time after the time and the process's name, as honcho printed it.
  supervisord's own log is ``$VAR_DIR/supervisor/supervisord.log``.
- The APIs and the workers count their metrics in ``$VAR_DIR/prometheus/<name>``
  (``PROMETHEUS_MULTIPROC_DIR``, emptied at each start), so a scrape answers the sum of all
  gunicorn workers or Celery children of that process instead of whichever one it reached.
"""
from __future__ import annotations

import argparse
import io
import os
import re
import shlex
import shutil
import signal
import sys
import time
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROCFILE = ROOT / "Procfile"

# A process that dies within START_SECONDS of starting failed to start: supervisord waits 1 s,
# then 2 s, … before the next attempt (a crash loop does not spin), and gives up after
# START_RETRIES such failures in a row (about half an hour of trying). Longer than a Celery
# worker's boot, so a worker that crashes while booting counts as a failed start.
START_SECONDS = 10
START_RETRIES = 60
# Celery's warm shutdown waits for running tasks (a certificate renders in seconds) and
# gunicorn for in-flight requests (--graceful-timeout); then the process group is killed.
STOP_WAIT_SECONDS = 30
# supervisord starts groups by ascending priority and stops them by descending priority,
# one group after the other: everything that talks to Redis first, Redis after them.
REDIS_PRIORITY = 100
GIVE_BACK_PRIORITY = 500    # stopped after the stack, before Redis
STACK_PRIORITY = 900
GIVE_BACK = "give-back"
STACK_GROUP = "stack"
LISTENER = "output"
SYSTEM_NAME = "supervisor"
# Lines the processes print between two reads of the listener wait in supervisord's buffer.
EVENT_BUFFER = 10000


def read_procfile(path: Path = PROCFILE) -> dict[str, str]:
    """name → command, as the Procfile writes them (``$VARS`` unexpanded)."""
    commands = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            commands[name.strip()] = command.strip()
    return commands


def counts_metrics(command: str) -> bool:
    """An API (gunicorn) or a Celery worker: several processes, one exposition."""
    words = command.split()
    return words[0] == "gunicorn" or (words[0] == "celery" and "worker" in words)


def _value(text: str) -> str:
    """``text`` as a supervisord option value: its ``%`` escaped (``%(name)s`` expands there),
    refusing what its parser would cut as an inline comment."""
    if re.search(r"\s[;#]", text):
        raise ValueError(f"supervisord would read a comment in {text!r}")
    return text.replace("%", "%%")


def supervisord_conf(commands: dict[str, str], names: list[str], state_dir: Path, metrics_dir: Path,
                     python: str = sys.executable) -> str:
    """supervisord's configuration for the processes ``names`` of ``commands``."""
    unknown = [name for name in names if name not in commands]
    if unknown:
        raise ValueError(f"not in the Procfile: {', '.join(unknown)}")
    width = max(len(name) for name in [*names, SYSTEM_NAME, GIVE_BACK])
    log = state_dir / "supervisord.log"
    sections = [f"""[supervisord]
nodaemon=true
silent=true
logfile={_value(str(log))}
logfile_maxbytes=5MB
logfile_backups=1
loglevel=info
pidfile={_value(str(state_dir / "supervisord.pid"))}
childlogdir={_value(str(state_dir))}
"""]
    for name in names:
        # bash expands the Procfile's $VARS, as any Procfile runner's shell does; exec leaves
        # one process, the one supervisord signals.
        command = shlex.join(["bash", "-c", f"exec {commands[name]}"])
        environment = ""
        if counts_metrics(commands[name]):
            environment = f'environment=PROMETHEUS_MULTIPROC_DIR="{_value(str(metrics_dir / name))}"\n'
        priority = REDIS_PRIORITY if name == "redis" else STACK_PRIORITY
        sections.append(f"""[program:{name}]
command={_value(command)}
directory={_value(str(ROOT))}
priority={priority}
autorestart=true
startsecs={START_SECONDS}
startretries={START_RETRIES}
stopsignal=TERM
stopwaitsecs={STOP_WAIT_SECONDS}
killasgroup=true
redirect_stderr=true
stdout_logfile=NONE
stdout_events_enabled=true
{environment}""")
    if "redis" in names and any(" worker " in f" {commands[name]} " for name in names):
        give_back = shlex.join([python, "-m", "diandian_common.supervise", GIVE_BACK])
        sections.append(f"""[program:{GIVE_BACK}]
command={_value(give_back)}
directory={_value(str(ROOT))}
priority={GIVE_BACK_PRIORITY}
autorestart=true
startsecs=0
stopsignal=TERM
stopwaitsecs={STOP_WAIT_SECONDS}
redirect_stderr=true
stdout_logfile=NONE
stdout_events_enabled=true
""")
    stack = [name for name in names if name != "redis"]
    if stack:
        sections.append(f"[group:{STACK_GROUP}]\nprograms={','.join(stack)}\npriority={STACK_PRIORITY}\n")
    listener = shlex.join([python, "-m", "diandian_common.supervise", "listen",
                           "--log", str(log), "--width", str(width)])
    # Priority -1 (the default of listeners): started first, stopped last, so it prints the
    # other processes' last lines.
    sections.append(f"""[eventlistener:{LISTENER}]
command={_value(listener)}
directory={_value(str(ROOT))}
events=PROCESS_STATE,PROCESS_LOG,SUPERVISOR_STATE_CHANGE
buffer_size={EVENT_BUFFER}
autorestart=true
stdout_logfile=NONE
stderr_logfile=/dev/stdout
stderr_logfile_maxbytes=0
""")
    return "\n".join(sections)


def run(names: list[str]) -> None:
    var_dir = Path(os.environ["VAR_DIR"]).resolve()
    state_dir, metrics_dir = var_dir / "supervisor", var_dir / "prometheus"
    state_dir.mkdir(parents=True, exist_ok=True)
    # Counts of an earlier run would be summed into this one's: every run starts from zero.
    shutil.rmtree(metrics_dir, ignore_errors=True)
    commands = read_procfile()
    for name in names:
        if name in commands and counts_metrics(commands[name]):
            (metrics_dir / name).mkdir(parents=True)
    # The listener reads why a process exited from this run's log (see ExitCauses).
    (state_dir / "supervisord.log").unlink(missing_ok=True)
    conf = state_dir / "supervisord.conf"
    conf.write_text(supervisord_conf(commands, names, state_dir, metrics_dir))
    serve(conf)


def serve(conf: Path) -> None:
    """supervisord with ``conf``, in this process, with one change: SIGHUP (the terminal was
    closed) stops the stack as Ctrl-C does. supervisord's own meaning, reload, would start
    every process again with nobody left to see it or to stop it."""
    from supervisor.options import ServerOptions
    from supervisor.supervisord import go

    class Options(ServerOptions):
        def setsignals(self):
            super().setsignals()
            signal.signal(signal.SIGHUP, self.hangup)

        def hangup(self, _sig, frame):
            self.signal_receiver.receive(signal.SIGTERM, frame)

    options = Options()
    options.realize(["--configuration", str(conf)])
    options.first, options.test = True, False   # what supervisord's main() sets before go()
    go(options)
    options.close_logger()


class ExitCauses:
    """Why a process exited or how it stopped, as supervisord logged it when it reaped it
    ("exited: orders-worker (terminated by SIGKILL; not expected)", "stopped: redis (exit
    status 0)"): its state-change events do not carry it."""

    REAPED = re.compile(r" (exited|stopped): (\S+) \((.*?)(?:; (?:not )?expected)?\)$")

    def __init__(self, log: Path):
        self.log, self.offset = log, 0
        # Each "exited:" line is one EXITED or BACKOFF event, in the same order; the listener
        # may be a few events behind the log.
        self.causes: dict[str, deque[str]] = {}
        self.stopped: dict[str, str] = {}   # in the order they stopped

    def read(self) -> None:
        try:
            with open(self.log, "rb") as lines:
                if os.fstat(lines.fileno()).st_size < self.offset:   # rotated
                    self.offset = 0
                lines.seek(self.offset)
                for line in lines:
                    if not line.endswith(b"\n"):
                        break
                    self.offset += len(line)
                    match = self.REAPED.search(line.decode(errors="replace").rstrip("\n"))
                    if match:
                        verb, name, cause = match.groups()
                        if verb == "stopped":
                            self.stopped[name] = cause
                        else:
                            self.causes.setdefault(name, deque()).append(cause)
        except OSError:
            pass

    def of(self, name: str) -> str:
        self.read()
        causes = self.causes.get(name)
        return causes.popleft() if causes else "cause not logged"


class Terminal:
    """What the listener prints: each process's lines after the time and its name."""

    def __init__(self, width: int, out=sys.stderr):
        self.width, self.out, self.partial = width, out, {}

    def line(self, name: str, text: str) -> None:
        self.out.write(f"{time.strftime('%H:%M:%S')} {name:<{self.width}} | {text}\n")

    def say(self, text: str) -> None:
        self.line(SYSTEM_NAME, text)
        self.out.flush()

    def output(self, name: str, data: str) -> None:
        *lines, self.partial[name] = (self.partial.get(name, "") + data).split("\n")
        for text in lines:
            self.line(name, text.rstrip("\r"))
        self.out.flush()

    def flush(self, name: str) -> None:
        rest = self.partial.pop(name, "")
        if rest:
            self.line(name, rest)
            self.out.flush()


def listen(log: Path, width: int) -> None:
    """supervisord's event listener: prints the processes' output, and says when a process
    exits and is restarted, is running again, is given up on, and when each one stops."""
    # supervisord counts an event's length in characters and sends it as UTF-8.
    events = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
    terminal = Terminal(width)
    said_stopped: set[str] = set()

    def stopped(*_):
        raise ListenerStopped

    signal.signal(signal.SIGTERM, stopped)
    try:
        _listen(events, terminal, ExitCauses(log), said_stopped)
    except ListenerStopped:
        pass
    # supervisord stops its listener once every other process has stopped, and does not send
    # it the events it still holds then (Redis's last ones): its log tells the rest, read
    # again from the start, whatever the signal interrupted.
    everything = ExitCauses(log)
    everything.read()
    for name, cause in everything.stopped.items():
        if name != LISTENER and name not in said_stopped:
            terminal.flush(name)
            terminal.say(f"{name} stopped ({cause})")
    terminal.say("every process has stopped")


class ListenerStopped(Exception):
    """supervisord asked its listener to stop (SIGTERM)."""


def _listen(events, terminal: Terminal, causes: ExitCauses, said_stopped: set[str]) -> None:
    """Handles supervisord's events until it stops the listener."""
    from supervisor import childutils

    restarted: set[str] = set()
    stopping = False
    while True:
        headers, payload = childutils.listener.wait(events, sys.stdout)
        event = headers["eventname"]
        if event == "SUPERVISOR_STATE_CHANGE_STOPPING":
            stopping = True
            terminal.say("stopping: the gateway, the APIs, the workers and the schedulers, then Redis "
                         "once what the workers held is back on its queue")
        elif event.startswith("PROCESS_LOG"):
            fields, data = childutils.eventdata(payload)
            terminal.output(fields["processname"], data)
        elif event.startswith("PROCESS_STATE_"):
            fields = childutils.get_headers(payload)
            name, state = fields["processname"], event.removeprefix("PROCESS_STATE_")
            if name == LISTENER:
                pass
            elif stopping and state in ("STOPPED", "FATAL"):   # FATAL: it was waiting to restart
                terminal.flush(name)
                causes.read()
                terminal.say(f"{name} stopped ({causes.stopped.get(name, 'it was not running')})")
                said_stopped.add(name)
            else:
                _report(terminal, causes, restarted, name, state, fields)
        childutils.listener.ok(sys.stdout)


def _report(terminal: Terminal, causes: ExitCauses, restarted: set[str], name: str, state: str,
            fields: dict[str, str]) -> None:
    """Says what a state change of ``name`` means while the stack runs."""
    if state in ("EXITED", "BACKOFF", "FATAL"):
        terminal.flush(name)
    if state == "EXITED":
        terminal.say(f"restarting {name} ({causes.of(name)}) in 0 s")
        restarted.add(name)
    elif state == "BACKOFF":
        tries = int(fields["tries"])
        cause = f"{causes.of(name)} within {START_SECONDS} s of starting"
        if tries <= START_RETRIES:
            terminal.say(f"restarting {name} ({cause}) in {tries} s (attempt {tries} of {START_RETRIES})")
            restarted.add(name)
        else:
            terminal.say(f"giving up on {name} ({cause})")
    elif state == "FATAL":
        terminal.say(f"ERROR: {name} failed to start {START_RETRIES} times in a row and stays down; "
                     "see its lines above, fix the cause and start the stack again")
    elif state == "RUNNING" and name in restarted:
        restarted.discard(name)
        terminal.say(f"{name} is running again (pid {fields['pid']})")
    elif state == "STOPPING":
        terminal.say(f"stopping {name} (pid {fields['pid']})")


def give_back_when_stopped() -> None:
    """The ``give-back`` program: idle until supervisord stops it, which it does once every
    worker has stopped and before Redis stops; then it puts the messages the workers still held
    back on their queues and says how many."""
    from .celery_app import give_back_held_messages

    stopping = []
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # stopped by supervisord's TERM, in its turn
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    while not stopping:
        signal.pause()
    try:
        given = give_back_held_messages()
    except Exception as exc:   # Redis already gone: say so, the messages wait for their timeout
        print(f"could not give back the messages the workers held: {exc}", flush=True)
        sys.exit(1)
    print(f"gave back {given} messages the workers still held" if given
          else "no message was held by a worker", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m diandian_common.supervise", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="start the Procfile's NAMEs under supervisord")
    run_parser.add_argument("names", nargs="+", metavar="NAME")
    listen_parser = commands.add_parser("listen", help="supervisord's event listener (see the config)")
    listen_parser.add_argument("--log", type=Path, required=True)
    listen_parser.add_argument("--width", type=int, required=True)
    commands.add_parser(GIVE_BACK, help="after the workers stopped, put the messages they held back on "
                                        "their queues (see the config)")
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args.names)
    elif args.command == GIVE_BACK:
        give_back_when_stopped()
    else:
        listen(args.log, args.width)


if __name__ == "__main__":
    main()
