"""Running the emulator in the foreground as a command."""

import threading

from sandbox.stopping import Stopped, stop_on_signals


def serve(port, host="127.0.0.1", state_file=None, webhook_url=None, webhook_secrets=None):
    """Serve until Ctrl-C, SIGTERM or SIGHUP (sandbox.stopping), printing one line with the URL; state is
    saved on the way out."""
    from .emulator import Emulator

    stop_on_signals()
    emu = Emulator(api_key=None, state_file=state_file).start(port=port, host=host)
    try:
        if webhook_url:
            emu.add_webhook_endpoint(webhook_url, list(webhook_secrets or []))
        print(f"Stripe emulator listening on {emu.url}", flush=True)
        threading.Event().wait()
    except Stopped:  # SIGINT included: stop_on_signals raises Stopped for Ctrl-C too
        pass
    finally:
        emu.stop()
