"""The offline stack for development and tests: Stripe emulator, SMTP capture, embedded services, demo."""
