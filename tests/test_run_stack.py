"""``make run`` as a newcomer meets it: README's tables and hand-made order, the line saying
the stack is up, a terminal an idle stack leaves alone, and the supervisor that runs the
Procfile's processes (scripts/start-stack.sh, Procfile, diandian_common/supervise.py).
Killing one process of a whole stack is tests/test_faults_supervisor.py's."""
from __future__ import annotations

import io
import json
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from celery import Celery
from kombu import Connection
from supervisor.options import ServerOptions

from diandian_common import supervise
from diandian_common.celery_app import give_back_held_messages, queue_for
from diandian_common.metrics import KOMBU_UNACKED_KEY
from tests.stack import Stack

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
UP_LINE = "[stack] Diandian is up: "


def readme_tables() -> list[list[str]]:
    """Every run of consecutive lines starting with ``|`` (outside code blocks)."""
    tables, current, in_code = [], [], False
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if not in_code and line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables + ([current] if current else [])


def cells(row: str) -> int:
    return len(re.split(r"(?<!\\)\|", row.strip().strip("|")))


def test_every_readme_table_has_a_header_and_rows_of_its_width():
    """A blank line inside a table turns what follows into a paragraph of pipes."""
    tables = readme_tables()
    assert len(tables) >= 5
    for table in tables:
        assert len(table) >= 3, table
        assert re.fullmatch(r"\|(\s*:?-{3,}:?\s*\|)+", table[1]), f"no header separator under {table[0]!r}"
        width = cells(table[0])
        assert [row for row in table if cells(row) != width] == [], table[0]


def test_the_configuration_table_is_one_table():
    configuration = [t for t in readme_tables() if any("`GATEWAY_PORT`" in row for row in t)]
    assert len(configuration) == 1
    names = " ".join(configuration[0])
    for name in ("DOCKERD_STORAGE_DRIVER", "DIANDIAN_CACHE_DIR",   # below the blank line that split it
                 "DIANDIAN_LOG_DIR", "DIANDIAN_START_TIMEOUT"):
        assert f"`{name}`" in names


def readme_order_example() -> str:
    text = README.read_text()
    start = text.index("A full order through the gateway, by hand")
    return re.search(r"```sh\n(.*?)```", text[start:], re.DOTALL).group(1)


def test_the_order_example_needs_only_curl_and_python3():
    example = readme_order_example()
    words = set(re.findall(r"[\w-]+", example))
    assert not words & {"uuidgen", "jq", "http", "wget"}
    assert "localhost:8000" in example   # the default port; the test below swaps it


def test_the_procfile_workers_and_schedulers_log_to_files_without_banners():
    lines = (ROOT / "Procfile").read_text().splitlines()
    commands = dict(line.split(": ", 1) for line in lines if line.strip() and not line.startswith("#"))
    celery = {name: command for name, command in commands.items() if command.startswith("celery")}
    assert len(celery) == 7
    for name, command in celery.items():
        assert re.match(r"celery -A \w+\.tasks --quiet (worker|beat) ", command), command
        assert command.endswith(f"${{DIANDIAN_LOG_DIR:+--logfile $DIANDIAN_LOG_DIR/{name}.log}}"), command
        assert "--loglevel" not in command   # LOG_LEVEL decides; --loglevel would only mislead
    script = (ROOT / "scripts" / "start-stack.sh").read_text()
    assert "export DIANDIAN_LOG_DIR=${DIANDIAN_LOG_DIR-$VAR_DIR/log}" in script


def minimal_path(tmp_path: Path) -> str:
    """A PATH with only what the example may use: curl, python3 and coreutils' seq and sleep."""
    tools = {"curl": shutil.which("curl"), "python3": sys.executable,
             "seq": shutil.which("seq"), "sleep": shutil.which("sleep")}
    if tools["curl"] is None:
        pytest.skip("curl is not installed")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, target in tools.items():
        (bin_dir / name).symlink_to(target)
    return str(bin_dir)


@pytest.mark.integration
def test_the_readme_order_example_runs_as_pasted_and_ends_completed(stack, tmp_path):
    script = readme_order_example().replace("localhost:8000", f"localhost:{stack.port}")
    env = {"PATH": minimal_path(tmp_path), "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    done = subprocess.run([shutil.which("bash"), "--norc", "--noprofile", "-i"], input=script, env=env,
                          capture_output=True, text=True, timeout=120)
    out = done.stdout
    assert "command not found" not in done.stderr, done.stderr
    paid = json.loads(out.splitlines()[0])
    assert paid["status"] == "paid"
    order = json.loads(out[out.rindex("\n{\n") + 1:])   # the last thing printed: the order
    assert order["id"] == paid["id"] and order["status"] == "completed", out
    assert order["participant"]["display_name"] == "李雷" and order["quantity_kg"] == 13
    assert order["retirement"]["serial_ranges"] and order["certificate"]["pdf_url"]


def wait_for_line(path: Path, text: str, timeout: float = 90) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = path.read_text(errors="replace").splitlines()
        if any(text in line for line in lines):
            return lines
        time.sleep(0.3)
    raise AssertionError(f"{text!r} never appeared in {path}:\n" + "\n".join(lines[-40:]))


@pytest.mark.integration
def test_make_run_says_again_when_the_stack_is_up(stack):
    lines = wait_for_line(stack.log_path, UP_LINE)
    assert f"{UP_LINE}{stack.url}/" in "\n".join(lines)
    assert not [line for line in lines if "did not come up" in line]


@pytest.mark.integration
def test_an_idle_stack_leaves_the_terminal_alone_but_shows_errors(tmp_path, monkeypatch):
    """The workers and schedulers log to $DIANDIAN_LOG_DIR; what reaches the terminal while
    nobody uses the stack is nothing, unless something goes wrong."""
    log_dir = tmp_path / "log"   # make run's default: $VAR_DIR/log
    quiet = Stack(tmp_path, extra_env={"DIANDIAN_LOG_DIR": str(log_dir)})
    try:
        quiet.start()
        before = len(wait_for_line(quiet.log_path, UP_LINE))
        time.sleep(8)   # the orders outbox relay alone runs every second here
        idle = quiet.log_path.read_text(errors="replace").splitlines()[before:]
        assert idle == [], "\n".join(idle)
        worker_log = (log_dir / "orders-worker.log").read_text()
        assert "ready." in worker_log and "orders.relay_outbox[" in worker_log and "succeeded" in worker_log
        assert "Sending due task" in (log_dir / "orders-beat.log").read_text()

        # An error still reaches the terminal. (The root conftest's CELERY_BROKER_URL=memory://
        # would override the broker given to the app.)
        monkeypatch.setenv("CELERY_BROKER_URL", quiet.redis_url)
        publisher = Celery(broker=quiet.redis_url)
        publisher.send_task("orders.no_such_task", args=[{}], queue=queue_for("orders.no_such_task"))
        publisher.close()
        wait_for_line(quiet.log_path, "unregistered task of type 'orders.no_such_task'", timeout=30)
    finally:
        quiet.stop()


def realized(conf: str, tmp_path: Path) -> ServerOptions:
    """supervisord's own reading of ``conf`` (its option expansion and command parsing)."""
    path = tmp_path / "supervisord.conf"
    path.write_text(conf)
    options = ServerOptions()
    options.realize(args=["--configuration", str(path)])
    return options


def test_the_supervisor_runs_each_procfile_line_as_written_and_stops_redis_after_the_rest(tmp_path):
    commands = supervise.read_procfile()
    names = list(commands)
    options = realized(supervise.supervisord_conf(commands, names, tmp_path, tmp_path / "metrics"), tmp_path)
    groups = {group.name: group for group in options.process_group_configs}
    programs = {process.name: process for group in groups.values() for process in group.process_configs}
    assert set(programs) == {*names, supervise.GIVE_BACK, supervise.LISTENER}
    for name in names:   # "%h" of the Celery node names arrives as written
        assert shlex.split(programs[name].command) == ["bash", "-c", f"exec {commands[name]}"]
        assert programs[name].autorestart and programs[name].killasgroup
    # supervisord stops groups one after the other, highest priority first; its listener last.
    # Between the workers and Redis, give-back puts what a worker still held back on its queue.
    order = sorted(groups.values(), key=lambda group: group.priority, reverse=True)
    assert [{p.name for p in group.process_configs} for group in order] == [
        set(names) - {"redis"}, {supervise.GIVE_BACK}, {"redis"}, {supervise.LISTENER}]
    assert shlex.split(programs[supervise.GIVE_BACK].command)[-1] == supervise.GIVE_BACK
    metrics_dirs = {name: programs[name].environment.get("PROMETHEUS_MULTIPROC_DIR") for name in names}
    assert metrics_dirs["gateway"] == str(tmp_path / "metrics" / "gateway")
    assert metrics_dirs["orders-worker"] == str(tmp_path / "metrics" / "orders-worker")
    assert metrics_dirs["redis"] is None and metrics_dirs["orders-beat"] is None


def test_give_back_puts_every_held_message_back_on_its_queue(redis_url, monkeypatch):
    """What a worker killed mid-shutdown held (kombu's unacked set) is delivered again at once."""
    monkeypatch.setenv("CELERY_BROKER_URL", redis_url)   # the root conftest's memory:// otherwise
    broker = redis.Redis.from_url(redis_url)
    publisher = Celery(broker=redis_url)
    queue = queue_for("orders.relay_outbox")
    for _ in range(3):
        publisher.send_task("orders.relay_outbox", args=[{"v": 1}], queue=queue)
    publisher.close()
    # A consumer takes two and holds them, as a worker does until it is killed (a consumer that
    # closes its connection properly gives them back itself).
    with Connection(redis_url) as connection:
        consumer = connection.SimpleQueue(queue)
        held = [consumer.get(timeout=5) for _ in range(2)]
        assert len(held) == 2 and broker.hlen(KOMBU_UNACKED_KEY) == 2 and broker.llen(queue) == 1
        assert give_back_held_messages(redis_url) == 2
        assert broker.hlen(KOMBU_UNACKED_KEY) == 0 and broker.llen(queue) == 3
        assert give_back_held_messages(redis_url) == 0
    assert broker.llen(queue) == 3
    broker.close()


def test_the_listener_prints_whole_lines_after_the_process_name():
    out = io.StringIO()
    terminal = supervise.Terminal(width=13, out=out)
    terminal.output("orders-worker", "one\ntw")
    terminal.output("redis", "ready\n")
    terminal.output("orders-worker", "o\nthr")
    terminal.flush("orders-worker")
    lines = [line.split(" ", 1)[1] for line in out.getvalue().splitlines()]
    assert lines == ["orders-worker | one", "redis         | ready", "orders-worker | two",
                     "orders-worker | thr"]


def test_make_run_warns_when_it_runs_as_root():
    script = (ROOT / "scripts" / "start-stack.sh").read_text()
    check = script.index('if [ "$(id -u)" = 0 ]; then')
    assert "WARNING: running as root" in script[check:script.index("fi", check)]
    assert check < script.index("exec python -m diandian_common.supervise run")


# Stand-ins for make run's processes: "redis", one that takes a second to stop, one that
# exits at once.
STAND_INS = {
    "redis": "python3 -c 'import signal, time; signal.signal(signal.SIGTERM, lambda *_: exit(0)); "
             "print(\"up\", flush=True); time.sleep(600)'",
    "slow-worker": "python3 -c 'import signal, time; signal.signal(signal.SIGTERM, lambda *_: "
                   "(time.sleep(1), print(\"warm shutdown\", flush=True), exit(0))); time.sleep(600)'",
    "crashing": "bash -c 'echo boom; exit 3'",
}


def stand_in_conf(tmp_path: Path, commands: dict[str, str]) -> Path:
    state = tmp_path / "supervisor"
    state.mkdir()
    conf = state / "supervisord.conf"
    conf.write_text(supervise.supervisord_conf(commands, list(commands), state, tmp_path / "metrics"))
    return conf


def serve(conf: Path, output: Path) -> subprocess.Popen:
    """supervisord as ``python -m diandian_common.supervise run`` runs it, on ``conf``."""
    with open(output, "wb") as terminal:
        return subprocess.Popen(
            [sys.executable, "-c", "import sys; from pathlib import Path; "
             "from diandian_common.supervise import serve; serve(Path(sys.argv[1]))", str(conf)],
            cwd=ROOT, stdout=terminal, stderr=subprocess.STDOUT, start_new_session=True)


@pytest.mark.integration
def test_a_process_that_keeps_dying_is_restarted_with_a_backoff_and_ctrl_c_stops_redis_last(tmp_path):
    """The one that exits at once is restarted after 1 s, then 2 s; Ctrl-C stops the others,
    then "redis"."""
    commands = STAND_INS
    conf = stand_in_conf(tmp_path, commands)
    state = conf.parent
    output = tmp_path / "terminal.log"
    supervisord = serve(conf, output)
    try:
        backoff = "restarting crashing (exit status 3 within 10 s of starting) in {} s"
        wait_for_line(output, backoff.format(2), timeout=30)
        lines = output.read_text().splitlines()
        assert any(line.endswith("crashing    | boom") for line in lines), lines
        assert any(backoff.format(1) in line for line in lines)
        assert supervisord.poll() is None

        supervisord.send_signal(signal.SIGINT)
        supervisord.wait(timeout=60)
    finally:
        if supervisord.poll() is None:
            supervisord.kill()
    stopped = re.findall(r" stopped: (\S+) \(", (state / "supervisord.log").read_text())
    # (A shutdown gives up on "crashing" if it is waiting to restart: no "stopped:" then.)
    assert stopped[-2:] == ["redis", supervise.LISTENER] and "slow-worker" in stopped
    said = output.read_text()
    assert "redis stopped (exit status 0)" in said
    assert said.index("warm shutdown") < said.index("slow-worker stopped (exit status 0)") \
        < said.index("every process has stopped")


@pytest.mark.integration
def test_a_closed_terminal_stops_the_stack_as_ctrl_c_does(tmp_path):
    """SIGHUP, which supervisord alone takes as "reload", stops everything: nobody is left to
    see the stack or stop it."""
    conf = stand_in_conf(tmp_path, {"redis": STAND_INS["redis"], "slow-worker": STAND_INS["slow-worker"]})
    output = tmp_path / "terminal.log"
    supervisord = serve(conf, output)
    try:
        wait_for_line(output, "redis       | up", timeout=30)
        supervisord.send_signal(signal.SIGHUP)
        supervisord.wait(timeout=60)
    finally:
        if supervisord.poll() is None:
            supervisord.kill()
    log = (conf.parent / "supervisord.log").read_text()
    assert re.findall(r" stopped: (\S+) \(", log) == ["slow-worker", "redis", supervise.LISTENER]
    assert log.count("spawned: 'redis'") == 1
