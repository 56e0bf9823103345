"""`python -m sandbox.stripe_emulator --port 12111 [--state-file F] [--webhook-url U --webhook-secret S]`."""

import argparse

from .serve import serve

# Stripe's own local tools use 12111; keep the habit so demos are predictable.
DEFAULT_PORT = 12111


def main(argv=None):
    """Parse arguments and serve."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.stripe_emulator", description=__doc__)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--state-file")
    parser.add_argument("--webhook-url")
    parser.add_argument("--webhook-secret", action="append", dest="webhook_secrets")
    args = parser.parse_args(argv)
    serve(args.port, args.host, args.state_file, args.webhook_url, args.webhook_secrets)


if __name__ == "__main__":
    main()
