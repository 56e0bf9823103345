"""Running the emulator in the foreground as a command."""

import signal
import threading

# Each stops the emulator and saves its state. Set here, not inherited: a shell starting a command in the
# background without job control has it ignore SIGINT, and Python then never raises KeyboardInterrupt.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def serve(port, host="127.0.0.1", state_file=None, webhook_url=None, webhook_secrets=None):
    """Serve until Ctrl-C (or SIGTERM, SIGHUP), printing one line with the URL; state is saved on the way
    out."""
    from .emulator import Emulator

    stop = threading.Event()
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda *_: stop.set())
    emu = Emulator(api_key=None, state_file=state_file).start(port=port, host=host)
    try:
        if webhook_url:
            emu.add_webhook_endpoint(webhook_url, list(webhook_secrets or []))
        print(f"Stripe emulator listening on {emu.url}", flush=True)
        stop.wait()
    finally:
        emu.stop()
