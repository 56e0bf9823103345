"""Running the emulator in the foreground as a command."""

import threading


def serve(port, host="127.0.0.1", state_file=None, webhook_url=None, webhook_secrets=None):
    """Serve until Ctrl-C, printing one line with the URL; state is saved on the way out."""
    from .emulator import Emulator

    emu = Emulator(api_key=None, state_file=state_file).start(port=port, host=host)
    if webhook_url:
        emu.add_webhook_endpoint(webhook_url, list(webhook_secrets or []))
    print(f"Stripe emulator listening on {emu.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
