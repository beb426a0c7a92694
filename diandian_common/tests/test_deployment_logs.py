"""No personal data in the logs: a real Celery worker runs tasks whose payload names a guest,
and neither its received/succeeded/failed lines nor the task's events carry the name."""
from __future__ import annotations

import json
import time

from celery.contrib.testing.worker import start_worker

from diandian_common import logs
from diandian_common.celery_app import make_celery, publish
from diandian_common.tests.metrics_support import unique

GUEST = "韩梅梅 Han Meimei"
PARTICIPANT = "p_secret-participant-7f3a"


def test_task_lines_carry_no_arguments_or_results(fresh_root, tmp_path):
    service = unique("probe")
    logfile = tmp_path / "worker.log"   # every INFO line, as make run's workers write them
    logs.configure_logging(f"{service}-worker", logfile=logfile)
    app = make_celery(service, broker_url="memory://", broker_transport_options={"polling_interval": 0.05})
    argsreprs: dict[str, str] = {}

    @app.task(name=f"{service}.greet", bind=True)
    def greet(self, payload):
        argsreprs[payload["order_id"]] = self.request.argsrepr
        if payload.get("fail"):
            raise ValueError("refused")
        return {"greeting": f"你好 {payload['participant']['display_name']}", "id": payload["participant"]["id"]}

    payload = {"order_id": "ord_ok", "participant": {"id": PARTICIPANT, "display_name": GUEST}}
    with start_worker(app, pool="solo", perform_ping_check=False, loglevel="INFO", shutdown_timeout=30):
        publish(app, greet.name, payload)
        publish(app, greet.name, {**payload, "order_id": "ord_fail", "fail": True})
        deadline = time.monotonic() + 30
        while not ("succeeded" in logfile.read_text() and "raised" in logfile.read_text()):
            assert time.monotonic() < deadline, logfile.read_text()
            time.sleep(0.05)

    text = logfile.read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    messages = [line["message"] for line in lines if line["logger"].startswith("celery")]
    # The lines are there, with the task's name and id: only the payload and result are not.
    assert sum(" received" in m and greet.name in m for m in messages) == 2
    assert sum(" succeeded in " in m for m in messages) == 1
    assert sum(" raised " in m for m in messages) == 1
    for secret in (GUEST, "Han Meimei", PARTICIPANT, "你好"):
        assert secret not in text
    # The events Flower shows carry the payload's field names only.
    assert argsreprs == {"ord_ok": "[<payload: order_id, participant, v>]",
                         "ord_fail": "[<payload: fail, order_id, participant, v>]"}
