"""``python -m payment_emulator [serve] --port N --state-dir DIR`` runs the emulator;
``python -m payment_emulator keys --out DIR --state-dir DIR --base-url URL`` makes a merchant
key set, registers it with the emulator of that state directory and writes its ``payment.env``."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

DEFAULT_STATE_DIR = os.environ.get("PAYMENT_EMULATOR_STATE_DIR") or "var/payment-emulator"


def serve(args) -> None:
    from werkzeug.serving import make_server

    from .app import create_app

    app = create_app(args.state_dir, merchants_file=args.merchants, public_url=args.public_url)
    server = make_server(args.host, args.port, app, threaded=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    emulator = app.extensions["payment_emulator"]
    print(f"[payment-emulator] WeChat Pay v3 and Alipay emulator on http://{args.host}:{server.port}/ "
          f"(controls: /_emulator/; state in {emulator.state_dir}; merchants from {emulator.merchants.path})",
          flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()


def make_keys(args) -> None:
    from .keys import merchant_key_set

    env = merchant_key_set(args.out, args.state_dir, args.base_url, merchants_file=args.merchants,
                           env_file=args.env_file)
    where = args.env_file or os.path.join(os.path.abspath(args.out), "payment.env")
    print(f"[payment-emulator] merchant WeChat Pay {env['WECHATPAY_MCHID']} / Alipay {env['ALIPAY_APP_ID']}: "
          f"environment in {where}", flush=True)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("serve", "keys", "-h", "--help"):
        argv.insert(0, "serve")
    parser = argparse.ArgumentParser(prog="python -m payment_emulator",
                                     description="Local WeChat Pay (API v3) and Alipay (RSA2) emulator: "
                                                 "no money moves.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="run the emulator (the default command)")
    run.add_argument("--port", type=int, default=int(os.environ.get("PAYMENT_EMULATOR_PORT") or 8008))
    run.add_argument("--host", default=os.environ.get("PAYMENT_EMULATOR_HOST") or "127.0.0.1")
    run.add_argument("--state-dir", default=DEFAULT_STATE_DIR,
                     help="keys, merchants and trades (kept across restarts)")
    run.add_argument("--merchants", default=None, help="merchants file (default: <state-dir>/merchants.json)")
    run.add_argument("--public-url", default=None,
                     help="base of the cashier links handed out (for phones on the venue's network)")
    run.set_defaults(handler=serve)
    key_set = commands.add_parser("keys", help="make a merchant key set for demos and tests")
    key_set.add_argument("--out", required=True, help="directory of the merchant's keys and payment.env")
    key_set.add_argument("--state-dir", default=DEFAULT_STATE_DIR, help="the emulator's state directory")
    key_set.add_argument("--base-url", default=None, help="the emulator's URL (default http://127.0.0.1:$PORT)")
    key_set.add_argument("--port", type=int, default=int(os.environ.get("PAYMENT_EMULATOR_PORT") or 8008))
    key_set.add_argument("--merchants", default=None,
                         help="merchants file (default: <state-dir>/merchants.json)")
    key_set.add_argument("--env-file", default=None,
                         help="where to write the environment (default: <out>/payment.env)")
    key_set.set_defaults(handler=make_keys)
    args = parser.parse_args(argv)
    if args.command == "keys" and not args.base_url:
        args.base_url = f"http://127.0.0.1:{args.port}"
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), format="[payment-emulator] %(message)s")
    args.handler(args)


if __name__ == "__main__":
    main()
